-- procrastinate's per-job functions plan with sequential scans disabled, so that the foreign-key
-- checks they fire (procrastinate_events.job_id -> procrastinate_jobs, and its ON DELETE CASCADE)
-- read the tables by index however small they looked when the check was planned.
--
-- Why: PostgreSQL keeps a connection's plan of a foreign-key check (and a function's plans) until
-- something invalidates it, new statistics for one. Once the workers drain the queue, autovacuum
-- can leave procrastinate_jobs at 0 pages (when it may truncate the file), and a check planned then
-- scans the table; during a burst of pushes the table grows and every job's event row scans all of
-- it, until autoanalyze replaces the plan (typically within autovacuum_naptime, a minute by
-- default, if an autovacuum worker is free). Measured with throwaway scripts on the local
-- PostgreSQL 15 (2026-12-06), batches of 16 jobs on one connection for 2 s right after `DELETE` +
-- `VACUUM`: 274-276 µs per job (about 7,300 jobs) against 42 with this setting (about 48,000 jobs;
-- 39 with the foreign key dropped). The cost per job grows with the burst.
--
-- The setting applies while each function runs, to the statements inside it and to the triggers and
-- foreign-key checks those fire; without it the functions' own lookups by id were sequential scans
-- too. 0402's fetch keeps a remainder: planned while the queue was small, its check for a running
-- job of the lock reads every 'todo' job through an index (a review measured 3.7 ms per job behind
-- 20,000 queued jobs, 9.1 without this migration, 1.0-1.1 once replanned); that lasts until the
-- plan is replaced as above. Replanning it on every call (plan_cache_mode = force_custom_plan) made
-- that case 1.3 ms but every fetch slower (bench/job_fetch.py: 678-859 against 868-1,280 jobs/s),
-- so it was not kept. The functions are procrastinate 3.10.0's and 0402's, otherwise unchanged;
-- a later pin that recreates them drops the setting
-- (service/jobs.py says what to check). tests/db/test_job_insert_triggers.py checks that a burst
-- after a drain, and its jobs' fetch and finish, scan neither table. A connection whose first check
-- ran outside these functions (procrastinate's cancel, an admin's UPDATE) keeps that plan: the
-- service's connections write jobs only through them, apart from procrastinate's own worker
-- registration at a worker's start and stop.

ALTER FUNCTION procrastinate_defer_jobs_v1(procrastinate_job_to_defer_v1[]) SET enable_seqscan = off;
-- 0402's: marking a job 'doing' writes its 'started' event row (a foreign-key check on the jobs)
ALTER FUNCTION procrastinate_fetch_job_v2(character varying[], bigint) SET enable_seqscan = off;
ALTER FUNCTION procrastinate_finish_job_v1(bigint, procrastinate_job_status, boolean) SET enable_seqscan = off;
ALTER FUNCTION procrastinate_retry_job_v2(bigint, timestamp with time zone, integer, character varying, character varying)
    SET enable_seqscan = off;
