"""Cluster agents, their tokens and their CI/user access authorizations (sql/agents.sql)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from service.db.queries import sql
from service.db.rows import Conn, row

_FIND_TOKEN = sql("find_active_agent_token")
_TOUCH_TOKEN = sql("touch_agent_token")
_AGENT_CONTEXT = sql("find_agent_context")
_PROJECT_BY_ID = sql("find_kas_project_by_id")
_PROJECT_BY_PATH = sql("find_kas_project_by_full_path")
_LOCK_AGENT = sql("lock_agent_for_configuration")
_EXISTING = sql("existing_users_and_projects")
# A fixed choice between named queries: entity -> statement (the access kind is a parameter)
_REPLACE_AUTHORIZATIONS = {
    "projects": sql("replace_agent_project_authorizations"),
    "groups": sql("replace_agent_group_authorizations"),
}


@dataclass(frozen=True)
class AgentTokenRow:
    id: int
    agent_id: int
    last_used_at: datetime | None


@dataclass(frozen=True)
class AgentContextRow:
    agent_id: int
    agent_name: str
    project_id: int
    project_full_path: str
    repository_storage: str
    legacy_disk_path: str | None
    default_branch: str
    created_by_user_id: int | None
    creator_admin: bool
    creator_active: bool
    creator_access_level: int


@dataclass(frozen=True)
class KasProjectRow:
    id: int
    is_agent_project: bool | None
    full_path: str
    visibility_level: int
    repository_access_level: int
    repository_storage: str
    legacy_disk_path: str | None
    default_branch: str


@dataclass(frozen=True)
class LockedAgentRow:
    id: int
    root_namespace_id: int


async def find_active_token(conn: Conn, digest: str) -> AgentTokenRow | None:
    return row(AgentTokenRow, await conn.fetchrow(_FIND_TOKEN, digest))


async def touch_token(conn: Conn, token_id: int, min_age_seconds: float) -> None:
    await conn.execute(_TOUCH_TOKEN, token_id, min_age_seconds)


async def find_agent_context(conn: Conn, agent_id: int) -> AgentContextRow | None:
    return row(AgentContextRow, await conn.fetchrow(_AGENT_CONTEXT, agent_id))


async def find_project_by_id(conn: Conn, project_id: int, agent_id: int) -> KasProjectRow | None:
    return row(KasProjectRow, await conn.fetchrow(_PROJECT_BY_ID, project_id, agent_id))


async def find_project_by_full_path(conn: Conn, full_path: str, agent_id: int) -> KasProjectRow | None:
    return row(KasProjectRow, await conn.fetchrow(_PROJECT_BY_PATH, full_path, agent_id))


async def lock_agent(conn: Conn, agent_id: int) -> LockedAgentRow | None:
    """Call inside a transaction: the row stays locked until it ends."""
    return row(LockedAgentRow, await conn.fetchrow(_LOCK_AGENT, agent_id))


async def replace_authorizations(
    conn: Conn, kind: str, entity: str, agent_id: int, root_namespace_id: int, entries: list[dict[str, Any]]
) -> None:
    """entries: [{"path": full path, "config": {...}}]; kind ci_access|user_access, entity projects|groups."""
    await conn.execute(
        _REPLACE_AUTHORIZATIONS[entity], agent_id, root_namespace_id, orjson.dumps(entries).decode(), kind
    )


async def existing_users_and_projects(
    conn: Conn, user_ids: list[int], project_ids: list[int]
) -> tuple[set[int], set[int]]:
    record = await conn.fetchrow(_EXISTING, user_ids, project_ids)
    return set(record["user_ids"]), set(record["project_ids"])
