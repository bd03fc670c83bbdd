-- procrastinate's per-job functions plan with sequential scans disabled, so that the foreign-key
-- checks they fire (procrastinate_events.job_id -> procrastinate_jobs, and its ON DELETE CASCADE)
-- read the tables by index however small they looked when the check was planned.
--
-- Why: PostgreSQL plans a foreign-key check once per connection and keeps the plan until the table's
-- statistics change. Once the workers drain the queue, autovacuum leaves procrastinate_jobs at 0
-- pages, and a check planned then scans the table; during a burst of pushes the table grows and
-- every job's event row scans all of it, until autoanalyze replaces the plan (within
-- autovacuum_naptime, a minute by default). Measured with throwaway scripts on the local PostgreSQL
-- 15 (2026-12-06), batches of 16 jobs on one connection right after `DELETE` + `VACUUM`: 274-276 µs
-- per job against 42 with this setting (and 39 with the foreign key dropped).
--
-- The setting applies while each function runs, to the statements inside it and to the triggers and
-- foreign-key checks those fire; the functions' own statements are index lookups by id or lock
-- (0402's fetch among them: it probes indexes by design). The functions are procrastinate 3.10.0's
-- and 0402's, otherwise unchanged; a later pin that recreates them drops the setting
-- (service/jobs.py says what to check). tests/db/test_job_insert_triggers.py checks that a burst
-- after a drain, and its jobs' fetch and finish, read both tables by index.

ALTER FUNCTION procrastinate_defer_jobs_v1(procrastinate_job_to_defer_v1[]) SET enable_seqscan = off;
-- 0402's: marking a job 'doing' writes its 'started' event row (a foreign-key check on the jobs)
ALTER FUNCTION procrastinate_fetch_job_v2(character varying[], bigint) SET enable_seqscan = off;
ALTER FUNCTION procrastinate_finish_job_v1(bigint, procrastinate_job_status, boolean) SET enable_seqscan = off;
ALTER FUNCTION procrastinate_retry_job_v2(bigint, timestamp with time zone, integer, character varying, character varying)
    SET enable_seqscan = off;
