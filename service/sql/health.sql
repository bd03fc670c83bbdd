-- name: is_writable_primary$
-- Readiness: true on a primary that takes writes, false on a standby (a demoted primary, or a
-- replica a failover has not promoted yet).
SELECT NOT pg_is_in_recovery();
