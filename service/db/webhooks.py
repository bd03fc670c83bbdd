"""Project and system hooks, their deliveries and delivery log (GitLab's web_hooks, web_hook_logs)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from service.db.queries import many, one, returning, statement, value
from service.db.rows import Conn, row, rows

_LIST = many("list_web_hooks")
_FIND = one("find_web_hook")
_INSERT = returning("insert_web_hook")
_UPDATE = statement("update_web_hook")
_DELETE = returning("delete_web_hook")
_LOGS = many("web_hook_logs")
_DELIVERY = one("delivery_for_sending")
_FINISH = statement("finish_delivery")
_INSERT_LOG = statement("insert_web_hook_log")
_SET_FAILURES = statement("set_web_hook_failures")
_ALLOW_LOCAL = value("allow_local_requests")
_PLAIN_URLS = many("plain_hook_urls")
_SEAL_URL = statement("seal_hook_url")
_LOGGED_CREDENTIALS = many("logged_urls_with_credentials")
_MASK_LOGGED = statement("mask_logged_url")

PROJECT_HOOK = "ProjectHook"
SYSTEM_HOOK = "SystemHook"
# the attributes an API call may set, in the order of insert_web_hook's $3..$13 (update: $2..$12)
HOOK_ATTRIBUTES = (
    "url",
    "name",
    "description",
    "token",
    "push_events",
    "tag_push_events",
    "merge_requests_events",
    "repository_update_events",
    "push_events_branch_filter",
    "branch_filter_strategy",
    "enable_ssl_verification",
)


@dataclass(frozen=True)
class HookRow:
    id: int
    type: str
    project_id: int | None
    url: str
    name: str | None
    description: str | None
    token: str | None
    push_events: bool
    tag_push_events: bool
    merge_requests_events: bool
    repository_update_events: bool
    push_events_branch_filter: str | None
    branch_filter_strategy: str
    enable_ssl_verification: bool
    recent_failures: int
    disabled_until: datetime | None
    created_at: datetime
    updated_at: datetime
    total: int


async def list_hooks(
    conn: Conn, hook_type: str, project_id: int | None, *, limit: int, offset: int
) -> tuple[list[HookRow], int]:
    found = rows(HookRow, await conn.fetch(_LIST, project_id, hook_type, limit, offset))
    return found, found[0].total if found else 0


async def find_hook(conn: Conn, hook_type: str, project_id: int | None, hook_id: int) -> HookRow | None:
    return row(HookRow, await conn.fetchrow(_FIND, project_id, hook_type, hook_id))


async def insert_hook(conn: Conn, hook_type: str, project_id: int | None, values: dict[str, Any]) -> int:
    defaults = {
        "push_events": True,
        "tag_push_events": False,
        "merge_requests_events": False,
        "repository_update_events": False,
        "branch_filter_strategy": "wildcard",
        "enable_ssl_verification": True,
    }
    merged = {**defaults, **{k: v for k, v in values.items() if v is not None}}
    hook_id: int = await conn.fetchval(_INSERT, hook_type, project_id, *(merged.get(name) for name in HOOK_ATTRIBUTES))
    return hook_id


async def update_hook(conn: Conn, hook_type: str, hook_id: int, values: dict[str, Any]) -> None:
    clear_token = "token" in values and not values["token"]
    await conn.execute(
        _UPDATE,
        hook_id,
        *(values.get(name) if not (name == "token" and clear_token) else None for name in HOOK_ATTRIBUTES),
        hook_type,
        clear_token,
    )


async def delete_hook(conn: Conn, hook_type: str, hook_id: int) -> bool:
    return await conn.fetchval(_DELETE, hook_id, hook_type) is not None


@dataclass(frozen=True)
class HookLogRow:
    id: int
    web_hook_id: int
    trigger: str
    url: str
    request_headers: str
    request_data: str
    response_headers: str
    response_body: str
    response_status: str
    execution_duration: float
    internal_error_message: str | None
    created_at: datetime
    total: int


async def hook_logs(conn: Conn, hook_id: int, *, limit: int, offset: int) -> tuple[list[HookLogRow], int]:
    found = rows(HookLogRow, await conn.fetch(_LOGS, hook_id, limit, offset))
    return found, found[0].total if found else 0


@dataclass(frozen=True)
class DeliveryRow:
    id: int
    state: str
    event_header: str
    trigger: str
    payload: str
    event_uuid: str
    attempts: int
    hook_id: int
    hook_type: str
    url: str
    token: str | None
    enable_ssl_verification: bool
    recent_failures: int
    disabled_until: datetime | None
    allow_local_requests: bool


async def delivery_for_sending(conn: Conn, delivery_id: int) -> DeliveryRow | None:
    """None once the delivery is gone (its hook was deleted)."""
    return row(DeliveryRow, await conn.fetchrow(_DELIVERY, delivery_id))


async def finish_delivery(conn: Conn, delivery_id: int, state: str) -> None:
    await conn.execute(_FINISH, delivery_id, state)


@dataclass(frozen=True)
class Attempt:
    hook_id: int
    trigger: str
    url: str
    request_headers: dict[str, str]
    request_data: Any
    response_headers: dict[str, str]
    response_body: str
    response_status: str
    execution_duration: float
    internal_error_message: str | None


async def log_attempt(conn: Conn, attempt: Attempt) -> None:
    await conn.execute(
        _INSERT_LOG,
        attempt.hook_id,
        attempt.trigger,
        attempt.url,
        orjson.dumps(attempt.request_headers).decode(),
        orjson.dumps(attempt.request_data).decode(),
        orjson.dumps(attempt.response_headers).decode(),
        attempt.response_body,
        attempt.response_status,
        attempt.execution_duration,
        attempt.internal_error_message,
    )


async def set_failures(conn: Conn, hook_id: int, recent_failures: int, disabled_until: datetime | None) -> None:
    await conn.execute(_SET_FAILURES, hook_id, recent_failures, disabled_until)


async def allow_local_requests(conn: Conn, hook_type: str) -> bool:
    return bool(await conn.fetchval(_ALLOW_LOCAL, hook_type))


async def plain_hook_urls(conn: Conn) -> list[tuple[int, str]]:
    return [(r["id"], r["url"]) for r in await conn.fetch(_PLAIN_URLS)]


async def seal_hook_url(conn: Conn, hook_id: int, plain: str, sealed: str) -> None:
    await conn.execute(_SEAL_URL, hook_id, plain, sealed)


async def logged_urls_with_credentials(conn: Conn) -> list[tuple[int, str]]:
    return [(r["id"], r["url"]) for r in await conn.fetch(_LOGGED_CREDENTIALS)]


async def mask_logged_url(conn: Conn, log_id: int, masked: str) -> None:
    await conn.execute(_MASK_LOGGED, log_id, masked)
