-- The embedded (trial) PostgreSQL's own settings, applied by `psql -f` on every start
-- (service/embedded.py, _skip_wal_zero_fill, says why). ALTER SYSTEM cannot run in a transaction:
-- psql runs each statement on its own.
ALTER SYSTEM SET wal_init_zero = off;
SELECT pg_reload_conf();
