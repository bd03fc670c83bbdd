-- procrastinate_fetch_job_v2, the function procrastinate 3.10.0's worker calls for its next job, with
-- the same answer and an index path instead of a scan of the whole backlog (procrastinate issue
-- #1242, open upstream).
--
-- Why: the library's version rejects each candidate with a NOT EXISTS over the jobs of its lock.
-- Every PostReceive job has a lock (its repository), so once a backlog built up (the workers were
-- down, or one repository was pushed to faster than its jobs run) a fetch read the backlog, and
-- right after a burst, while the planner's statistics still describe an empty queue, it read it once
-- per candidate. `bench/job_fetch.py` (2026-12-05, PostgreSQL 15): with 100,000 jobs of one
-- repository the library drained 28-29 jobs/s (statistics current) and 2 jobs/s or none within
-- 10 s per job (statistics of the empty queue); this version 930-1,130 jobs/s in every case, and
-- a fetch while the repository's job runs takes 0.4-0.8 ms against 70 ms to over 10 s. Spread
-- over 1,000 repositories: 310-330 against 940-1,220 jobs/s. With 1,000 queued jobs both drain
-- 900-1,350 jobs/s. The added index costs the job insert nothing measurable
-- (`bench/job_insert.py`: 32-38 µs per job in batches of 64, with and without it).
--
-- The answer is unchanged, the library's rule (schema.sql of 3.10.0): the first job, by priority
-- (highest first) then id, that is 'todo', in one of the wanted queues, due (scheduled_at), and
-- either has no lock, or holds its lock's head (no other 'todo' job of the lock comes before it,
-- whatever its queue or schedule) while no job of the lock is 'doing'. Concurrent fetchers skip
-- each other's candidates (FOR UPDATE SKIP LOCKED) as before. tests/db/test_job_fetch.py compares
-- this function with the library's, answer by answer, over random queues.
--
-- How:
--   1. the front: the first 32 due jobs of the wanted queues, in fetch order (the library's
--      priority index), each checked by two index probes (its lock's head; a 'doing' job of the
--      lock). With many repositories this finds a job at once.
--   2. only if none of those can run (a few repositories' backlogs fill the front): the head of
--      every lock, found by a skip scan of procrastinate_jobs_todo_lock_order (one index probe per
--      lock with 'todo' jobs, not per job), plus the first jobs without a lock.
--
-- A later procrastinate version that redefines procrastinate_fetch_job_v2 in its own migration
-- replaces this one: port this file's approach onto it when the pin moves (service/jobs.py).

CREATE INDEX procrastinate_jobs_todo_lock_order ON procrastinate_jobs (lock, priority DESC, id)
    WHERE status = 'todo';

-- The first of these 'todo' jobs that no concurrent fetcher holds, now 'doing' for p_worker_id.
-- Taken one id at a time, in the given order: an equality on the primary key, which no planner
-- estimate turns into a scan of the queue (`id = ANY (...)` was planned as one, on stale statistics).
CREATE FUNCTION take_first_free_job(candidate_ids bigint[], p_worker_id bigint)
    RETURNS procrastinate_jobs
    LANGUAGE plpgsql
AS $$
DECLARE
    found_jobs procrastinate_jobs;
    candidate_id bigint;
BEGIN
    FOREACH candidate_id IN ARRAY candidate_ids LOOP
        UPDATE procrastinate_jobs
            SET status = 'doing', worker_id = p_worker_id
            WHERE procrastinate_jobs.id = (
                SELECT jobs.id FROM procrastinate_jobs AS jobs
                    WHERE jobs.id = candidate_id AND jobs.status = 'todo'
                    FOR UPDATE OF jobs SKIP LOCKED
            )
            RETURNING procrastinate_jobs.* INTO found_jobs;
        IF found_jobs.id IS NOT NULL THEN
            RETURN found_jobs;
        END IF;
    END LOOP;
    RETURN found_jobs;
END;
$$;

CREATE OR REPLACE FUNCTION procrastinate_fetch_job_v2(
    target_queue_names character varying[],
    p_worker_id bigint
)
    RETURNS procrastinate_jobs
    LANGUAGE plpgsql
    -- Right after a burst the planner's statistics still describe an empty queue, and it planned
    -- the head probe as a scan of every 'todo' job (another partial index, then a sort). Every
    -- probe here has an index that yields its order: without sorts, that index is the only plan.
    -- A sort that remains (phase 2's few candidates) then carries the planner's penalty cost,
    -- which would start JIT compilation (160 ms a call, measured): these are index probes, no JIT.
    SET enable_sort = off
    SET jit = off
AS $$
DECLARE
    found_jobs procrastinate_jobs;
    candidate_ids bigint[];
BEGIN
    -- 1. the front of the queue
    WITH front AS (
        SELECT jobs.id, jobs.lock, jobs.priority
            FROM procrastinate_jobs AS jobs
            WHERE jobs.status = 'todo'
                AND (target_queue_names IS NULL OR jobs.queue_name = ANY( target_queue_names ))
                AND (jobs.scheduled_at IS NULL OR jobs.scheduled_at <= now())
            ORDER BY jobs.priority DESC, jobs.id ASC
            LIMIT 32
    )
    SELECT array_agg(front.id ORDER BY front.priority DESC, front.id ASC) INTO candidate_ids
        FROM front
        WHERE front.lock IS NULL
            OR (
                NOT EXISTS (
                    SELECT 1 FROM procrastinate_jobs AS doing
                        WHERE doing.lock = front.lock AND doing.status = 'doing'
                )
                AND front.id = (
                    SELECT head.id FROM procrastinate_jobs AS head
                        WHERE head.lock = front.lock AND head.status = 'todo'
                        ORDER BY head.priority DESC, head.id ASC
                        LIMIT 1
                )
            );

    IF candidate_ids IS NOT NULL THEN
        found_jobs := take_first_free_job(candidate_ids, p_worker_id);
        IF found_jobs.id IS NOT NULL THEN
            RETURN found_jobs;
        END IF;
    END IF;

    -- 2. every lock's head, and the first jobs without a lock
    WITH RECURSIVE locks(lock) AS (
        (
            SELECT jobs.lock FROM procrastinate_jobs AS jobs
                WHERE jobs.status = 'todo' AND jobs.lock IS NOT NULL
                ORDER BY jobs.lock
                LIMIT 1
        )
        UNION ALL
        SELECT (
            SELECT jobs.lock FROM procrastinate_jobs AS jobs
                WHERE jobs.status = 'todo' AND jobs.lock > locks.lock
                ORDER BY jobs.lock
                LIMIT 1
        )
        FROM locks
        WHERE locks.lock IS NOT NULL
    ),
    heads AS (
        SELECT head.id, head.priority
            FROM locks
            CROSS JOIN LATERAL (
                SELECT jobs.id, jobs.priority, jobs.queue_name, jobs.scheduled_at FROM procrastinate_jobs AS jobs
                    WHERE jobs.lock = locks.lock AND jobs.status = 'todo'
                    ORDER BY jobs.priority DESC, jobs.id ASC
                    LIMIT 1
            ) AS head
            WHERE locks.lock IS NOT NULL
                AND (target_queue_names IS NULL OR head.queue_name = ANY( target_queue_names ))
                AND (head.scheduled_at IS NULL OR head.scheduled_at <= now())
                AND NOT EXISTS (
                    SELECT 1 FROM procrastinate_jobs AS doing
                        WHERE doing.lock = locks.lock AND doing.status = 'doing'
                )
    ),
    unlocked AS (
        SELECT jobs.id, jobs.priority
            FROM procrastinate_jobs AS jobs
            WHERE jobs.status = 'todo' AND jobs.lock IS NULL
                AND (target_queue_names IS NULL OR jobs.queue_name = ANY( target_queue_names ))
                AND (jobs.scheduled_at IS NULL OR jobs.scheduled_at <= now())
            -- the lock (NULL here) first: only procrastinate_jobs_todo_lock_order yields this order,
            -- not the priority index, which would walk every locked job to find the unlocked ones
            ORDER BY jobs.lock, jobs.priority DESC, jobs.id ASC
            LIMIT 256
    ),
    first_ones AS (
        SELECT runnable.id, runnable.priority
            FROM (SELECT * FROM heads UNION ALL SELECT * FROM unlocked) AS runnable
            ORDER BY runnable.priority DESC, runnable.id ASC
            LIMIT 256
    )
    SELECT array_agg(first_ones.id ORDER BY first_ones.priority DESC, first_ones.id ASC) INTO candidate_ids
        FROM first_ones;

    IF candidate_ids IS NOT NULL THEN
        found_jobs := take_first_free_job(candidate_ids, p_worker_id);
    END IF;
    RETURN found_jobs;
END;
$$;
