"""Data access: typed async functions over the named queries in sql/*.sql. Each takes `conn` first."""
