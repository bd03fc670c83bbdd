-- name: lock_migrations!
-- Serialise concurrent migration runs until this transaction ends. A transaction-level lock, so it
-- also holds through PgBouncer's transaction pooling, where a session lock would mean nothing.
-- $1 the lock id shared by every migrating process
SELECT pg_advisory_xact_lock($1);

-- name: create_schema_migrations!
-- The record of applied migrations (created by the first run).
CREATE TABLE IF NOT EXISTS schema_migrations (
    version text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- name: applied_migrations
-- The versions already applied.
SELECT version FROM schema_migrations;

-- name: record_migration!
-- $1 the version (file stem) just applied
INSERT INTO schema_migrations (version) VALUES ($1);
