"""Migrations 0403 and 0404 on procrastinate's queue tables.

0403: the insert triggers, once per statement, with the effects of the library's per-job ones: a
'deferred' event row per job, and a "job inserted" NOTIFY for each queue that got jobs (what wakes
procrastinate's worker). 0404: after the workers drained the queue and it was vacuumed, the
per-job functions' foreign-key checks scan neither table."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg

from service.db.push_jobs import JobRequest, enqueue_deliveries, enqueue_post_receive_jobs
from tests.conftest import Backends

QUEUE_CHANNEL = "procrastinate_queue_v1#"
ANY_QUEUE_CHANNEL = "procrastinate_any_queue_v1"


class Notifications:
    """A second connection LISTENing on the channels procrastinate's worker listens on."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, conn: Any, pid: int, channel: str, payload: str) -> None:
        self.received.append((channel, json.loads(payload)))

    async def listen(self, conn: asyncpg.Connection, channels: list[str]) -> None:
        for channel in channels:
            await conn.add_listener(channel, self)

    async def settled(self, count: int) -> list[tuple[str, dict[str, Any]]]:
        async with asyncio.timeout(5):
            while len(self.received) < count:
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)  # and no more than that
        return self.received


async def test_one_statement_of_jobs_writes_an_event_per_job_and_notifies_once_per_queue(backends: Backends, db):
    notifications = Notifications()
    listener = await asyncpg.connect(backends.database_url)
    try:
        await notifications.listen(
            listener, [f"{QUEUE_CHANNEL}post_receive", f"{QUEUE_CHANNEL}web_hooks", ANY_QUEUE_CHANNEL]
        )
        pushes = [JobRequest(json.dumps({"push": n}).encode(), f"project-{n % 3}") for n in range(17)]
        async with db.transaction():  # the jobs of two queues in one transaction, as a PostReceive job does
            await enqueue_post_receive_jobs(db, pushes)
            await enqueue_deliveries(db, [101, 102])
        jobs = await db.fetch("SELECT id, queue_name FROM procrastinate_jobs ORDER BY id")
        events = await db.fetch("SELECT job_id, type::text, at FROM procrastinate_events ORDER BY id")
        transaction_time = await db.fetchval("SELECT min(at) = max(at) FROM procrastinate_events")
        received = await notifications.settled(4)
    finally:
        await listener.close()

    assert [job["queue_name"] for job in jobs] == ["post_receive"] * 17 + ["web_hooks"] * 2
    assert [(event["job_id"], event["type"]) for event in events] == [(job["id"], "deferred") for job in jobs]
    assert transaction_time  # the inserting transaction's now(), as the per-job trigger's default
    last_push, last_delivery = jobs[16]["id"], jobs[18]["id"]
    assert sorted(received, key=lambda item: (item[0], item[1]["job_id"])) == [
        (ANY_QUEUE_CHANNEL, {"type": "job_inserted", "job_id": last_push}),
        (ANY_QUEUE_CHANNEL, {"type": "job_inserted", "job_id": last_delivery}),
        (f"{QUEUE_CHANNEL}post_receive", {"type": "job_inserted", "job_id": last_push}),
        (f"{QUEUE_CHANNEL}web_hooks", {"type": "job_inserted", "job_id": last_delivery}),
    ]


async def test_jobs_not_inserted_as_todo_get_no_event_and_no_notification(backends: Backends, db):
    notifications = Notifications()
    listener = await asyncpg.connect(backends.database_url)
    try:
        await notifications.listen(listener, [ANY_QUEUE_CHANNEL])
        await db.execute(
            "INSERT INTO procrastinate_jobs (queue_name, task_name, lock, status) VALUES "
            "('post_receive', 'post_receive', 'project-1', 'doing'), ('post_receive', 'post_receive', NULL, 'failed')"
        )
        todo = await db.fetchval(
            "INSERT INTO procrastinate_jobs (queue_name, task_name) VALUES ('web_hooks', 'deliver_web_hook') RETURNING id"
        )
        received = await notifications.settled(1)
        events = await db.fetch("SELECT job_id, type::text FROM procrastinate_events ORDER BY id")
    finally:
        await listener.close()
    assert [(event["job_id"], event["type"]) for event in events] == [(todo, "deferred")]
    assert received == [(ANY_QUEUE_CHANNEL, {"type": "job_inserted", "job_id": todo})]


async def drained_and_vacuumed(db: asyncpg.Connection) -> None:
    """Jobs queued, run and deleted by the workers, then the tables vacuumed (as autovacuum would)
    down to 0 pages: the state in which PostgreSQL plans a scan."""
    await enqueue_post_receive_jobs(db, [JobRequest(b'{"push": 1}', "project-1")] * 16)
    await db.execute("DELETE FROM procrastinate_jobs")
    await db.execute("VACUUM procrastinate_jobs, procrastinate_events")
    assert await db.fetchval("SELECT relpages FROM pg_class WHERE relname = 'procrastinate_jobs'") == 0


async def test_a_burst_after_the_queue_was_drained_and_vacuumed_reads_the_jobs_by_index(backends: Backends, db):
    """Migration 0404: the foreign-key check of each job's event row, planned while the drained table
    looked empty, must not scan the table as it grows (one scan per job made a burst quadratic)."""
    pushes = [JobRequest(b'{"push": 1}', "project-1")] * 16
    await drained_and_vacuumed(db)
    # A fresh connection: its foreign-key checks are planned now, and pg_stat_xact_user_tables also
    # counts a connection's earlier transactions whose statistics it has not reported yet.
    burst = await asyncpg.connect(backends.database_url)
    try:
        async with burst.transaction():
            for _ in range(20):
                await enqueue_post_receive_jobs(burst, pushes)
            scans = await burst.fetchrow(
                "SELECT seq_scan, idx_scan FROM pg_stat_xact_user_tables WHERE relname = 'procrastinate_jobs'"
            )
    finally:
        await burst.close()
    assert scans["seq_scan"] == 0 and scans["idx_scan"] >= 320, dict(scans)


async def test_a_worker_after_a_drain_fetches_finishes_and_deletes_jobs_by_index(backends: Backends, db):
    """The worker's side of 0404: fetching a job marks it 'doing' and finishing it deletes it; each
    writes or removes event rows, whose foreign-key checks read procrastinate_jobs and
    procrastinate_events."""
    await drained_and_vacuumed(db)
    await enqueue_post_receive_jobs(db, [JobRequest(b'{"push": 1}', f"project-{n}") for n in range(200)])
    # what procrastinate's worker calls, in turn, on a fresh connection (see the test above)
    worker = await asyncpg.connect(backends.database_url)
    try:
        async with worker.transaction():
            while (job_id := await worker.fetchval("SELECT (procrastinate_fetch_job_v2(NULL, NULL)).id")) is not None:
                await worker.execute("SELECT procrastinate_finish_job_v1($1, 'succeeded', true)", job_id)
            scans = {
                record["relname"]: record["seq_scan"]
                for record in await worker.fetch(
                    "SELECT relname, seq_scan FROM pg_stat_xact_user_tables "
                    "WHERE relname IN ('procrastinate_jobs', 'procrastinate_events')"
                )
            }
    finally:
        await worker.close()
    assert await db.fetchval("SELECT count(*) FROM procrastinate_jobs") == 0
    assert await db.fetchval("SELECT count(*) FROM procrastinate_events") == 0  # deleted with their jobs
    assert scans == {"procrastinate_jobs": 0, "procrastinate_events": 0}
