-- procrastinate's two AFTER INSERT triggers on procrastinate_jobs, run once per statement instead
-- of once per job: the same event rows, and the same wake-up for the workers.
--
-- Why: post_receive queues its jobs in batches (one INSERT for the pushes that arrived while the
-- previous one ran, service/db/batch.py), and procrastinate 3.10.0 fires two PL/pgSQL functions
-- per inserted job: one writes the job's 'deferred' event row, one sends two NOTIFYs.
-- bench/job_insert.py (2026-12-06, local PostgreSQL 15, wall time per job on one connection, two
-- runs): 26-30 against 36-39 µs in batches of 64, 42-49 against 53-57 in batches of 16. Per statement,
-- PostgreSQL's CPU per post_receive call went from 37 to 30 µs and the call's rate from 0.30 to
-- 0.34 of the bare handler's (bench/cpu_split.py --only post_receive, the same hour).
--
-- The same effect, as procrastinate's worker and admin read it:
--   - events: one 'deferred' row per job inserted as 'todo', with the same defaults (the
--     transaction's now()), in job id order among themselves. procrastinate's per-row trigger for
--     scheduled jobs (kept) now writes its 'scheduled' rows before the statement's 'deferred' ones
--     rather than interleaved; each job's own events keep their order, and nothing reads the order
--     of event ids across jobs;
--   - notifications: procrastinate's worker only wakes up on a 'job_inserted' notification
--     (procrastinate/worker.py, _handle_notification: it does not read the job id), so each queue
--     that got jobs is notified once per statement, on its own channel and on the any-queue
--     channel, with the payload the per-row trigger sends (`{"type": "job_inserted", "job_id"}`,
--     the queue's last job). PostgreSQL delivers notifications only at commit anyway.
-- A statement that inserts no 'todo' job (an INSERT ... ON CONFLICT DO NOTHING that met its
-- conflict, a job inserted as 'doing') writes and sends nothing.
-- The triggers that react to updates (status and abort events) and the one for scheduled jobs
-- are procrastinate's own, unchanged. tests/db/test_job_insert_triggers.py checks both effects.

DROP TRIGGER procrastinate_trigger_status_events_insert_v1 ON procrastinate_jobs;
DROP TRIGGER procrastinate_jobs_notify_queue_job_inserted_v1 ON procrastinate_jobs;

CREATE FUNCTION procrastinate_jobs_inserted_per_statement_v1()
    RETURNS trigger
    LANGUAGE plpgsql
AS $$
DECLARE
    queue record;
BEGIN
    INSERT INTO procrastinate_events (job_id, type)
    SELECT id, 'deferred'::procrastinate_job_event_type
    FROM inserted
    WHERE status = 'todo'
    ORDER BY id;
    FOR queue IN
        SELECT queue_name, json_build_object('type', 'job_inserted', 'job_id', max(id))::text AS payload
        FROM inserted
        WHERE status = 'todo'
        GROUP BY queue_name
    LOOP
        PERFORM pg_notify('procrastinate_queue_v1#' || queue.queue_name, queue.payload);
        PERFORM pg_notify('procrastinate_any_queue_v1', queue.payload);
    END LOOP;
    RETURN NULL;
END;
$$;

CREATE TRIGGER procrastinate_jobs_inserted_per_statement_v1
    AFTER INSERT ON procrastinate_jobs
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION procrastinate_jobs_inserted_per_statement_v1();
