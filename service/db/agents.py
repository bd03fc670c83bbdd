"""Cluster agents, their tokens and their CI/user access authorizations (sql/agents.sql)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from collections.abc import Sequence
from typing import Any

import orjson

from service.db.queries import many, one, returning, statement, value
from service.db.rows import Conn, Paged, paged, row

_FIND_TOKENS = many("find_active_agent_tokens")
_TOUCH_TOKEN = statement("touch_agent_token")
_AGENT_CONTEXTS = many("find_agent_contexts")
_PROJECT_BY_ID = one("find_kas_project_by_id")
_PROJECT_BY_PATH = one("find_kas_project_by_full_path")
_LOCK_AGENT = one("lock_agent_for_configuration")
_EXISTING = one("existing_users_and_projects")
_LIST_AGENTS = many("list_agents")
_FIND_AGENT = one("find_agent")
_INSERT_AGENT = returning("insert_agent")
_DELETE_AGENT = returning("delete_agent")
_LIST_AGENT_TOKENS = many("list_agent_tokens")
_FIND_AGENT_TOKEN = one("find_agent_token")
_COUNT_AGENT_TOKENS = value("count_active_agent_tokens")
_INSERT_AGENT_TOKEN = returning("insert_agent_token")
_REVOKE_AGENT_TOKEN = returning("revoke_agent_token")
_LOCK_TOKEN_CREATION = statement("lock_agent_token_creation")

AGENT_TOKEN_LOCK = 0x61677474  # advisory lock space: agent token creation

# A fixed choice between named queries: entity -> statement (the access kind is a parameter)
_REPLACE_AUTHORIZATIONS = {
    "projects": statement("replace_agent_project_authorizations"),
    "groups": statement("replace_agent_group_authorizations"),
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


async def find_active_tokens(conn: Conn, digests: Sequence[str]) -> list[AgentTokenRow | None]:
    """One answer per token digest, in order (batched lookups, see service/db/batch.py)."""
    records = await conn.fetch(_FIND_TOKENS, list(digests))
    return [row(AgentTokenRow, record) if record["id"] is not None else None for record in records]


async def touch_token(conn: Conn, token_id: int, min_age_seconds: float) -> None:
    await conn.execute(_TOUCH_TOKEN, token_id, min_age_seconds)


async def find_agent_contexts(conn: Conn, agent_ids: Sequence[int]) -> list[AgentContextRow | None]:
    """One answer per agent id, in order (batched lookups, see service/db/batch.py)."""
    records = await conn.fetch(_AGENT_CONTEXTS, list(agent_ids))
    return [row(AgentContextRow, record) if record["agent_id"] is not None else None for record in records]


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
    assert record is not None  # an aggregate always yields its one row
    return set(record["user_ids"]), set(record["project_ids"])


@dataclass(frozen=True)
class AgentRow:
    id: int
    name: str
    project_id: int
    created_by_user_id: int | None
    created_at: datetime


@dataclass(frozen=True)
class AgentTokenDetails:
    """An agent token as the admin API shows it (never its digest)."""

    id: int
    agent_id: int
    name: str
    description: str
    status: str
    created_by_user_id: int | None
    created_at: datetime
    last_used_at: datetime | None


async def list_agents(conn: Conn, project_id: int, *, limit: int, offset: int) -> Paged[AgentRow]:
    return paged(AgentRow, await conn.fetch(_LIST_AGENTS, project_id, limit, offset))


async def find_agent(conn: Conn, project_id: int, agent_id: int) -> AgentRow | None:
    return row(AgentRow, await conn.fetchrow(_FIND_AGENT, project_id, agent_id))


async def insert_agent(conn: Conn, project_id: int, name: str, created_by: int | None) -> AgentRow | None:
    """None when the project already has an agent with this name."""
    return row(AgentRow, await conn.fetchrow(_INSERT_AGENT, project_id, name, created_by))


async def delete_agent(conn: Conn, project_id: int, agent_id: int) -> bool:
    return await conn.fetchval(_DELETE_AGENT, project_id, agent_id) is not None


async def list_agent_tokens(conn: Conn, agent_id: int, *, limit: int, offset: int) -> Paged[AgentTokenDetails]:
    return paged(AgentTokenDetails, await conn.fetch(_LIST_AGENT_TOKENS, agent_id, limit, offset))


async def find_agent_token(conn: Conn, agent_id: int, token_id: int) -> AgentTokenDetails | None:
    return row(AgentTokenDetails, await conn.fetchrow(_FIND_AGENT_TOKEN, agent_id, token_id))


async def lock_agent_token_creation(conn: Conn, agent_id: int) -> None:
    """Call inside a transaction: token creation for this agent waits for it to end."""
    await conn.execute(_LOCK_TOKEN_CREATION, AGENT_TOKEN_LOCK, agent_id)


async def count_active_agent_tokens(conn: Conn, agent_id: int) -> int:
    count: int = await conn.fetchval(_COUNT_AGENT_TOKENS, agent_id)
    return count


async def insert_agent_token(
    conn: Conn, agent_id: int, *, digest: str, name: str, description: str, created_by: int | None
) -> AgentTokenDetails:
    created = row(
        AgentTokenDetails,
        await conn.fetchrow(_INSERT_AGENT_TOKEN, agent_id, digest, name, description, created_by),
    )
    assert created is not None
    return created


async def revoke_agent_token(conn: Conn, agent_id: int, token_id: int) -> bool:
    return await conn.fetchval(_REVOKE_AGENT_TOKEN, agent_id, token_id) is not None
