"""The job fetch of migration 0402 answers as procrastinate's own, and stays safe under concurrency.

procrastinate's rule for the next job (its schema.sql): by priority, highest first, then id; 'todo',
in a wanted queue, due; and either without a lock, or first among its lock's 'todo' jobs (whatever
their queue or schedule) while no job of the lock is 'doing'. These tests put the library's
function (tests/db/library_fetch.py) beside ours and ask both, state after state.
"""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from tests.conftest import Backends
from tests.db.library_fetch import LIBRARY_FETCH, library_fetch_function_sql

QUEUE_CHOICES: list[list[str] | None] = [None, ["post_receive", "web_hooks"], ["web_hooks"], ["other"]]


async def insert_job(
    conn: asyncpg.Connection,
    lock: str | None,
    queue: str = "post_receive",
    priority: int = 0,
    status: str = "todo",
    scheduled_in: timedelta | None = None,
) -> int:
    return int(
        await conn.fetchval(
            """
            INSERT INTO procrastinate_jobs (queue_name, task_name, priority, lock, status, scheduled_at)
            VALUES ($1, 'post_receive', $2, $3, $4::procrastinate_job_status, now() + $5::interval)
            RETURNING id
            """,
            queue,
            priority,
            lock,
            status,
            scheduled_in,
        )
    )


async def random_queue(conn: asyncpg.Connection, rng: random.Random) -> None:
    """A few repositories with long backlogs in front (so the first 32 jobs can all be blocked),
    jobs without a lock, other queues, priorities, retries due now or later, a running job or not."""
    locks = [f"project-{n}" for n in range(1, rng.randint(2, 6))]
    running: set[str] = set()
    for _ in range(rng.randint(20, 140)):
        lock = rng.choice([*locks, locks[0], locks[0], None])
        status = "todo"
        if lock is not None and lock not in running and rng.random() < 0.15:
            status = "doing"
            running.add(lock)
        elif rng.random() < 0.05:
            status = rng.choice(["succeeded", "failed"])
        await insert_job(
            conn,
            lock,
            queue=rng.choice(["post_receive", "post_receive", "web_hooks", "other"]),
            priority=rng.choice([0, 0, 0, 1, -1]),
            status=status,
            scheduled_in=rng.choice([None, None, None, timedelta(hours=-1), timedelta(hours=1)]),
        )


async def fetched(conn: asyncpg.Connection, function: str, queues: list[str] | None) -> Any:
    return await conn.fetchval(f"SELECT ({function}($1::varchar[], NULL)).id", queues)


@pytest.mark.parametrize("seed", range(12))
async def test_each_fetch_picks_the_job_procrastinates_own_function_picks(db, seed):
    await db.execute(library_fetch_function_sql())
    rng = random.Random(seed)
    await random_queue(db, rng)
    answers = 0
    for _ in range(60):
        queues = rng.choice(QUEUE_CHOICES)
        async with db.transaction():
            library = await fetched(db, LIBRARY_FETCH, queues)
            # the same state for ours: the library's choice undone
            await db.execute("UPDATE procrastinate_jobs SET status = 'todo', worker_id = NULL WHERE id = $1", library)
            ours = await fetched(db, "procrastinate_fetch_job_v2", queues)
        assert ours == library, f"seed {seed}, queues {queues}"
        answers += ours is not None
        doing = await db.fetch("SELECT id FROM procrastinate_jobs WHERE status = 'doing'")
        if doing and rng.random() < 0.6:  # a running job ends, freeing its lock
            await db.execute("DELETE FROM procrastinate_jobs WHERE id = $1", rng.choice(doing)["id"])
    assert answers > 0  # the scenario let some jobs run: the comparison was not of empty answers


async def test_a_repository_behind_a_long_backlog_is_found(db):
    """The front of the queue is one busy repository's backlog: the next runnable job is behind it."""
    await insert_job(db, "project-1", status="doing")
    for _ in range(100):
        await insert_job(db, "project-1")
    behind = await insert_job(db, "project-2")
    await insert_job(db, "project-2")
    assert await fetched(db, "procrastinate_fetch_job_v2", ["post_receive"]) == behind
    assert await fetched(db, "procrastinate_fetch_job_v2", ["post_receive"]) is None  # both locks busy


async def test_concurrent_fetchers_run_each_job_once_in_each_repositorys_order(backends: Backends, db):
    locks = ["project-1", "project-2", "project-3", None]
    for n in range(240):
        await insert_job(db, locks[n % 7 % 4] if n < 200 else "project-1")
    started: list[tuple[str | None, int]] = []

    async def fetcher() -> None:
        conn = await asyncpg.connect(backends.database_url)
        try:
            while True:
                job = await conn.fetchrow("SELECT id, lock FROM procrastinate_fetch_job_v2(NULL, NULL)")
                assert job is not None  # the function returns one row, all NULL when nothing is free
                if job["id"] is None:
                    if not await conn.fetchval("SELECT count(*) FROM procrastinate_jobs"):
                        return
                    await asyncio.sleep(0.001)  # every remaining repository is busy
                    continue
                started.append((job["lock"], job["id"]))
                await asyncio.sleep(0)
                await conn.execute("SELECT procrastinate_finish_job_v1($1, 'succeeded', true)", job["id"])
        finally:
            await conn.close()

    await asyncio.wait_for(asyncio.gather(*(fetcher() for _ in range(4))), 60)
    assert len(started) == 240 and len({job_id for _lock, job_id in started}) == 240
    for lock in locks[:3]:
        ids = [job_id for job_lock, job_id in started if job_lock == lock]
        assert ids == sorted(ids), lock  # a repository's jobs start in push order
