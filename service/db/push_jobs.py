"""Queries of the PostReceive job: enqueueing it, its context, events, timestamps and deliveries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

import orjson

from service.db.queries import many, one, statement, value
from service.db.rows import Conn, row, rows

_ENQUEUE = value("enqueue_post_receive_jobs")
_ENQUEUE_DELIVERIES = value("enqueue_web_hook_deliveries")
_CONTEXT = one("push_job_context")
_INSERT_EVENTS = statement("insert_push_events")
_TOUCH = statement("touch_pushed_project")
_HOOKS = many("hooks_for_push")
_INSERT_DELIVERIES = many("insert_web_hook_deliveries")
_DEAD_JOBS = many("dead_jobs")
_COUNT_DEAD_JOBS = value("count_dead_jobs")
_RETRY_DEAD_JOB = one("retry_dead_job")


class JobRequest(NamedTuple):
    """One post_receive call's job: its JSON arguments and the repository it serialises on."""

    args: bytes
    gl_repository: str


async def enqueue_post_receive_jobs(conn: Conn, requests: Sequence[JobRequest]) -> list[bool]:
    """One INSERT for the jobs of concurrent post_receive calls (a BatchLoader's fetch_many).

    A write in a batch is safe here: the statement inserts every job or none, and a failure (the
    database is down) fails each caller, which answers 503 and is retried by Gitaly. A value
    PostgreSQL refuses (a NUL byte in the JSON) makes the loader insert each job alone, so that
    only its own push is answered 400 (service/db/batch.py).

    The jobs go as one JSON array of [lock, arguments] pairs, their arguments' JSON spliced in as
    it is: asyncpg checks every element of an array parameter against the collections ABCs, two
    Python calls each, where one text parameter costs none. PostgreSQL caps a jsonb array at 256 MB:
    a batch past it (several pushes of change lists near the 32 MiB body limit at once) is refused
    as a whole and the loader sends it again in halves, so it costs one statement more.
    """
    await conn.fetchval(
        _ENQUEUE,
        (b"[%b]" % b",".join(b"[%b,%b]" % (orjson.dumps(r.gl_repository), r.args) for r in requests)).decode(),
    )
    return [True] * len(requests)


async def enqueue_deliveries(conn: Conn, delivery_ids: Sequence[int]) -> None:
    if delivery_ids:
        await conn.fetchval(_ENQUEUE_DELIVERIES, list(delivery_ids))


@dataclass(frozen=True)
class PushJobContext:
    project_id: int | None
    project_name: str | None
    project_description: str | None
    full_path: str | None
    namespace_name: str | None
    visibility_level: int | None
    default_branch: str | None
    repository_storage: str | None
    legacy_disk_path: str | None
    protected_branches: list[str]  # names or wildcard patterns
    protected_tags: list[str]
    user_id: int | None
    user_name: str | None
    user_username: str | None


async def push_job_context(
    conn: Conn, project_id: int | None, user_id: int | None, key_id: int | None, username: str | None
) -> PushJobContext:
    found = row(PushJobContext, await conn.fetchrow(_CONTEXT, project_id, user_id, key_id, username))
    assert found is not None  # the query always answers one row
    return found


@dataclass(frozen=True)
class PushEventRow:
    push_action: str
    ref_type: str
    ref: str | None
    commit_from: str | None
    commit_to: str | None
    commit_count: int
    commit_title: str | None
    idempotency_key: str
    ref_count: int | None = None  # a bulk event (more than 3 refs of one kind): their number


async def insert_push_events(conn: Conn, project_id: int, author_id: int, events: Sequence[PushEventRow]) -> None:
    await conn.execute(
        _INSERT_EVENTS,
        project_id,
        author_id,
        [e.push_action for e in events],
        [e.ref_type for e in events],
        [e.ref for e in events],
        [e.commit_from for e in events],
        [e.commit_to for e in events],
        [e.commit_count for e in events],
        [e.commit_title for e in events],
        [e.idempotency_key for e in events],
        [e.ref_count for e in events],
    )


async def touch_pushed_project(conn: Conn, project_id: int, repository_updated: bool) -> None:
    await conn.execute(_TOUCH, project_id, repository_updated)


@dataclass(frozen=True)
class PushHook:
    id: int
    type: str
    url: str
    push_events: bool
    tag_push_events: bool
    push_events_branch_filter: str | None
    branch_filter_strategy: str


async def hooks_for_push(conn: Conn, project_id: int) -> list[PushHook]:
    return rows(PushHook, await conn.fetch(_HOOKS, project_id))


@dataclass(frozen=True)
class NewDelivery:
    hook_id: int
    delivery_key: str
    event_header: str
    trigger: str
    payload: dict[str, object]
    event_uuid: str


async def insert_deliveries(conn: Conn, deliveries: Sequence[NewDelivery]) -> list[int]:
    """The ids of the deliveries that did not exist yet."""
    if not deliveries:
        return []
    records = await conn.fetch(
        _INSERT_DELIVERIES,
        [d.hook_id for d in deliveries],
        [d.delivery_key for d in deliveries],
        [d.event_header for d in deliveries],
        [d.trigger for d in deliveries],
        [orjson.dumps(d.payload).decode() for d in deliveries],
        [d.event_uuid for d in deliveries],
    )
    return [record["id"] for record in records]


@dataclass(frozen=True)
class DeadJob:
    id: int
    queue_name: str
    task_name: str
    status: str
    args: str
    attempts: int
    failed_at: datetime | None


async def dead_jobs(conn: Conn, *, limit: int, offset: int) -> tuple[list[DeadJob], int]:
    return rows(DeadJob, await conn.fetch(_DEAD_JOBS, limit, offset)), await conn.fetchval(_COUNT_DEAD_JOBS)


async def retry_dead_job(conn: Conn, job_id: int) -> bool:
    return await conn.fetchrow(_RETRY_DEAD_JOB, job_id) is not None
