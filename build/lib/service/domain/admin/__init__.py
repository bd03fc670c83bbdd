"""Domain logic of the GitLab-v4-compatible admin API: validation, paths, entities, pagination.

Functions here take a `conn` and plain values, and raise the exceptions of `errors.py`; the routes
in service/routes/admin turn those into GitLab's JSON answers.
"""
