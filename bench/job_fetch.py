"""How fast the job worker takes its next PostReceive job out of a backlog: procrastinate's own fetch
function against migration 0402's.

The question it answers: can the worker drain a backlog? Every PostReceive job carries a lock (its
repository: a repository's jobs run one at a time, in push order). After the workers were down for a
while, or when one repository is pushed to faster than its jobs run, the queue holds many jobs, and
procrastinate's fetch (issue #1242 upstream) looks at the whole backlog on every call. Rerun it when
procrastinate's pin or migration 0402 changes:

    .venv/bin/python bench/job_fetch.py [--admin-url postgresql://postgres@127.0.0.1:5432/postgres] [--sizes 1000,10000,100000]

Method. A scratch database is created on the server behind `--admin-url` (dropped afterwards) and
migrated as the service migrates; the library's function is created beside ours from the installed
package's schema.sql (tests/db/library_fetch.py). For each backlog shape (all jobs on one repository;
spread over 1,000 repositories) and size, the jobs are queued with the service's own statement, the
planner's statistics either those of the empty queue (as right after a burst, before autovacuum's
ANALYZE) or current, then, for each function, on one connection:
  - drain: fetch a job and finish it (procrastinate_finish_job_v1, deleting it as the worker does),
    repeatedly for `--seconds`: jobs per second of one worker slot that chains its next job at once;
  - busy: the fetch a second slot makes while the first slot's job runs (that repository is busy):
    the median of 5 calls, in ms.
Every statement has a `--timeout` (statement_timeout); a call that hits it is shown as ">timeout".
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import asyncpg
import orjson

from scratch_database import migrated_scratch_database  # also puts the checkout on sys.path
from service.db.push_jobs import JobRequest, enqueue_post_receive_jobs
from tests.db.library_fetch import LIBRARY_FETCH, library_fetch_function_sql

FUNCTIONS = (("procrastinate 3.10.0", LIBRARY_FETCH), ("migration 0402", "procrastinate_fetch_job_v2"))
SHAPES = (("one repository", 1), ("1,000 repositories", 1000))
# the planner's statistics: taken on the empty queue (as right after a burst, until autovacuum's
# ANALYZE; autovacuum is off for the table in the scratch database so that it cannot run mid-way),
# or taken after the backlog was queued
STATISTICS = (("stale", False), ("current", True))
QUEUES = ["post_receive", "web_hooks"]


async def queue_backlog(conn: asyncpg.Connection, size: int, repositories: int, analyzed: bool) -> None:
    await conn.execute("DELETE FROM procrastinate_jobs")
    await conn.execute("VACUUM ANALYZE procrastinate_jobs")  # the planner's view: an empty queue
    args = orjson.dumps({"gl_repository": "project-1", "identifier": "user-1", "changes": "", "push_options": []})
    for start in range(0, size, 1000):
        batch = [JobRequest(args, f"project-{n % repositories}") for n in range(start, min(size, start + 1000))]
        await enqueue_post_receive_jobs(conn, batch)
    if analyzed:
        await conn.execute("VACUUM ANALYZE procrastinate_jobs")


async def fetch(conn: asyncpg.Connection, function: str) -> int | None:
    job_id = await conn.fetchval(f"SELECT ({function}($1::varchar[], NULL)).id", QUEUES)
    return int(job_id) if job_id is not None else None


async def drain_rate(conn: asyncpg.Connection, function: str, seconds: float) -> float:
    done = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        job_id = await fetch(conn, function)
        if job_id is None:
            break
        await conn.execute("SELECT procrastinate_finish_job_v1($1, 'succeeded', true)", job_id)
        done += 1
    return done / (time.perf_counter() - started)


async def busy_fetch_ms(conn: asyncpg.Connection, function: str) -> float:
    """One job of the first repository runs; the median time of another slot's fetch."""
    running = await fetch(conn, function)
    times = []
    for _ in range(5):
        transaction = conn.transaction()  # rolled back: every call sees the same queue
        await transaction.start()
        try:
            started = time.perf_counter()
            await fetch(conn, function)
            times.append((time.perf_counter() - started) * 1000)
        finally:
            await transaction.rollback()
    if running is not None:
        await conn.execute("UPDATE procrastinate_jobs SET status = 'todo', worker_id = NULL WHERE id = $1", running)
    return statistics.median(times)


async def measure(admin_url: str, sizes: list[int], seconds: float, timeout: float) -> None:
    async with migrated_scratch_database(admin_url, "gia_job_fetch") as conn:
        await conn.execute(library_fetch_function_sql())
        await conn.execute("ALTER TABLE procrastinate_jobs SET (autovacuum_enabled = false)")
        await conn.execute(f"SET statement_timeout = {int(timeout * 1000)}")
        print(f"{'backlog':>32s}  {'statistics':10s} {'function':22s} {'drain jobs/s':>13s} {'busy fetch ms':>14s}")
        for shape, repositories in SHAPES:
            for size in sizes:
                for statistics_label, analyzed in STATISTICS:
                    for label, function in FUNCTIONS:
                        await queue_backlog(conn, size, repositories, analyzed)
                        try:
                            busy = f"{await busy_fetch_ms(conn, function):14,.1f}"
                        except asyncpg.QueryCanceledError:
                            busy = f"{'>' + format(timeout, 'g') + ' s':>14s}"
                        try:
                            drain = f"{await drain_rate(conn, function, seconds):13,.0f}"
                        except asyncpg.QueryCanceledError:
                            drain = f"{'>' + format(timeout, 'g') + ' s/job':>13s}"
                        print(
                            f"{f'{size:,} jobs, {shape}':>32s}  {statistics_label:10s} {label:22s} {drain} {busy}",
                            flush=True,
                        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args()
    asyncio.run(measure(args.admin_url, [int(s) for s in args.sizes.split(",")], args.seconds, args.timeout))


if __name__ == "__main__":
    main()
