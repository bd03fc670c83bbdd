"""What PostgreSQL spends on each queued PostReceive job, and on which part of procrastinate's queue.

The question it answers: why post_receive stays furthest from its speed target. Each call queues one
PostReceive job (service/sql/push_jobs.sql: procrastinate_defer_jobs_v1 over a batch of concurrent
calls), and on the benchmark's two cores PostgreSQL's CPU for that insert is taken from the worker
being measured. Rerun it when procrastinate's schema or the job insert changes:

    .venv/bin/python bench/job_insert.py [--admin-url postgresql://postgres@127.0.0.1:5432/postgres] [--seconds 3]

Method. A scratch database is created on the server behind `--admin-url` (dropped afterwards) and
migrated as the service migrates; the job insert is the service's own (enqueue_post_receive_jobs).
For batches of 1, 16 and 64 jobs it runs back to back for `--seconds` and prints the wall time per
statement and per job (client and server together, on one connection: the server's share dominates),
from empty tables each time: first with the insert triggers as migrated (migration 0403: the
'deferred' event rows and the "job inserted" NOTIFYs once per statement), then with procrastinate's
own per-job triggers in their place, then without the trigger that writes an event row per job, then also without the one that
sends two NOTIFYs per job. The triggers are swapped in the scratch database only, to show what each
costs; the service keeps the effect of both (procrastinate's worker and its admin rely on it).
"""

from __future__ import annotations

import argparse
import asyncio
import time

import orjson

from scratch_database import migrated_scratch_database  # also puts the checkout on sys.path
from service.db.push_jobs import JobRequest, enqueue_post_receive_jobs

# Each variant's statements, run after the previous variant's
PER_JOB_TRIGGERS = """
ALTER TABLE procrastinate_jobs DISABLE TRIGGER procrastinate_jobs_inserted_per_statement_v1;
CREATE TRIGGER procrastinate_trigger_status_events_insert_v1
    AFTER INSERT ON procrastinate_jobs FOR EACH ROW WHEN ((new.status = 'todo'::procrastinate_job_status))
    EXECUTE PROCEDURE procrastinate_trigger_function_status_events_insert_v1();
CREATE TRIGGER procrastinate_jobs_notify_queue_job_inserted_v1
    AFTER INSERT ON procrastinate_jobs FOR EACH ROW WHEN ((new.status = 'todo'::procrastinate_job_status))
    EXECUTE PROCEDURE procrastinate_notify_queue_job_inserted_v1();
"""
VARIANTS = (
    ("insert triggers per statement (0403)", None),
    ("procrastinate's per-job triggers", PER_JOB_TRIGGERS),
    (
        "without the event row per job",
        "DROP TRIGGER procrastinate_trigger_status_events_insert_v1 ON procrastinate_jobs",
    ),
    (
        "without it and the two NOTIFYs per job",
        "DROP TRIGGER procrastinate_jobs_notify_queue_job_inserted_v1 ON procrastinate_jobs",
    ),
)
BATCHES = (1, 16, 64)


async def measure(admin_url: str, seconds: float) -> None:
    async with migrated_scratch_database(admin_url, "gia_job_insert") as conn:
        args = orjson.dumps(
            {
                "gl_repository": "project-1",
                "identifier": "user-1",
                "changes": "a" * 40 + " " + "b" * 40 + " refs/heads/main\n",
                "push_options": [],
                "correlation_id": "0123456789abcdef",
            }
        )
        print(f"{'variant':42s} {'batch':>5s} {'µs/statement':>13s} {'µs/job':>8s}")
        for label, change in VARIANTS:
            if change is not None:
                await conn.execute(change)
            for size in BATCHES:
                # each measurement starts from empty tables: the variants run in turn, and a later
                # one must not pay for the rows (and index pages) of the earlier ones
                await conn.execute("TRUNCATE procrastinate_events, procrastinate_periodic_defers, procrastinate_jobs")
                batch = [JobRequest(args, "project-1")] * size
                statements = 0
                started = time.perf_counter()
                while time.perf_counter() - started < seconds:
                    await enqueue_post_receive_jobs(conn, batch)
                    statements += 1
                elapsed = time.perf_counter() - started
                print(
                    f"{label:42s} {size:5d} {elapsed / statements * 1e6:13,.0f} "
                    f"{elapsed / (statements * size) * 1e6:8,.0f}"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    asyncio.run(measure(args.admin_url, args.seconds))


if __name__ == "__main__":
    main()
