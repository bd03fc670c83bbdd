"""Projects and what hangs off them, for the admin API (sql/admin_projects.sql)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from service.db.admin_pages import Paged, paged
from service.db.keys import KeyRow
from service.db.queries import sql
from service.db.rows import Conn, row, rows

_FIND = sql("admin_find_project")
_FIND_ID_BY_PATH = sql("admin_find_project_id_by_path")
_LIST = sql("admin_list_projects")
_TAKEN = sql("admin_project_name_or_path_taken")
_INSERT = sql("admin_insert_project")
_UPDATE = sql("admin_update_project")
_DELETE = sql("admin_delete_project")
_LIST_DEPLOY_KEYS = sql("admin_list_deploy_keys")
_FIND_DEPLOY_KEY = sql("admin_find_project_deploy_key")
_ENABLE_DEPLOY_KEY = sql("admin_enable_deploy_key")
_DISABLE_DEPLOY_KEY = sql("admin_disable_deploy_key")
_LIST_BRANCHES = sql("admin_list_protected_branches")
_INSERT_BRANCH = sql("admin_insert_protected_branch")
_INSERT_BRANCH_LEVEL = sql("admin_insert_branch_access_level")
_UPDATE_BRANCH = sql("admin_update_protected_branch")
_DELETE_BRANCH = sql("admin_delete_protected_branch")
_LIST_TAGS = sql("admin_list_protected_tags")
_INSERT_TAG = sql("admin_insert_protected_tag")
_DELETE_TAG = sql("admin_delete_protected_tag")
_LIST_AGENTS = sql("admin_list_agents")
_FIND_AGENT = sql("admin_find_agent")
_INSERT_AGENT = sql("admin_insert_agent")
_DELETE_AGENT = sql("admin_delete_agent")
_LIST_AGENT_TOKENS = sql("admin_list_agent_tokens")
_FIND_AGENT_TOKEN = sql("admin_find_agent_token")
_COUNT_AGENT_TOKENS = sql("admin_count_active_agent_tokens")
_INSERT_AGENT_TOKEN = sql("admin_insert_agent_token")
_REVOKE_AGENT_TOKEN = sql("admin_revoke_agent_token")
_LIST_CLIENT_KEYS = sql("admin_list_client_keys")
_INSERT_CLIENT_KEY = sql("admin_insert_client_key")
_DELETE_CLIENT_KEY = sql("admin_delete_client_key")


@dataclass(frozen=True)
class AdminProject:
    id: int
    name: str
    path: str
    description: str
    namespace_id: int
    creator_id: int | None
    visibility_level: int
    archived: bool
    lfs_enabled: bool
    default_branch: str | None
    created_at: datetime
    last_activity_at: datetime
    full_path: str
    full_name: str
    namespace_name: str
    namespace_path: str
    namespace_kind: str
    namespace_parent_id: int | None
    namespace_full_path: str


@dataclass(frozen=True)
class NameOrPathTaken:
    name_taken: bool
    path_taken: bool


@dataclass(frozen=True)
class ProjectDeployKey(KeyRow):
    """A deploy key as enabled on one project."""

    can_push: bool
    link_id: int


@dataclass(frozen=True)
class ProtectedBranchRow:
    id: int
    name: str
    allow_force_push: bool
    push_access_levels: list[dict[str, Any]]
    merge_access_levels: list[dict[str, Any]]
    unprotect_access_levels: list[dict[str, Any]]


@dataclass(frozen=True)
class ProtectedTagRow:
    id: int
    name: str
    create_access_levels: list[dict[str, Any]]


@dataclass(frozen=True)
class AgentRow:
    id: int
    name: str
    project_id: int
    created_by_user_id: int | None
    created_at: datetime


@dataclass(frozen=True)
class AgentTokenRow:
    id: int
    agent_id: int
    name: str
    description: str
    status: str
    created_by_user_id: int | None
    created_at: datetime
    last_used_at: datetime | None


@dataclass(frozen=True)
class ClientKeyRow:
    id: int
    project_id: int
    public_key: str
    active: bool
    created_at: datetime


def _decode_json_columns(record: Any, columns: tuple[str, ...]) -> dict[str, Any]:
    # json_agg arrives as text: asyncpg leaves json decoding to the caller
    values = dict(record.items())
    for column in columns:
        values[column] = orjson.loads(values[column])
    return values


async def find_project(conn: Conn, project_id: int) -> AdminProject | None:
    return row(AdminProject, await conn.fetchrow(_FIND, project_id))


async def find_project_id_by_path(conn: Conn, full_path: str) -> int | None:
    found: int | None = await conn.fetchval(_FIND_ID_BY_PATH, full_path)
    return found


async def list_projects(
    conn: Conn, *, search: str | None, namespace_id: int | None, limit: int, offset: int
) -> Paged[AdminProject]:
    return paged(AdminProject, await conn.fetch(_LIST, search, namespace_id, limit, offset))


async def name_or_path_taken(
    conn: Conn, namespace_id: int, name: str | None, path: str | None, except_id: int | None
) -> NameOrPathTaken:
    found = row(NameOrPathTaken, await conn.fetchrow(_TAKEN, namespace_id, name, path, except_id))
    assert found is not None
    return found


async def insert_project(
    conn: Conn,
    *,
    name: str,
    path: str,
    namespace_id: int,
    creator_id: int | None,
    visibility_level: int,
    default_branch: str | None,
    lfs_enabled: bool,
    description: str,
) -> int:
    project_id: int = await conn.fetchval(
        _INSERT,
        name,
        path,
        namespace_id,
        creator_id,
        visibility_level,
        default_branch,
        lfs_enabled,
        description,
    )
    return project_id


async def update_project(
    conn: Conn,
    project_id: int,
    *,
    name: str | None = None,
    path: str | None = None,
    visibility_level: int | None = None,
    default_branch: str | None = None,
    lfs_enabled: bool | None = None,
    description: str | None = None,
    archived: bool | None = None,
    namespace_id: int | None = None,
) -> None:
    await conn.execute(
        _UPDATE,
        project_id,
        name,
        path,
        visibility_level,
        default_branch,
        lfs_enabled,
        description,
        archived,
        namespace_id,
    )


async def delete_project(conn: Conn, project_id: int) -> None:
    await conn.execute(_DELETE, project_id)


async def list_deploy_keys(
    conn: Conn, project_id: int, *, limit: int, offset: int
) -> Paged[ProjectDeployKey]:
    return paged(ProjectDeployKey, await conn.fetch(_LIST_DEPLOY_KEYS, project_id, limit, offset))


async def find_project_deploy_key(conn: Conn, project_id: int, key_id: int) -> ProjectDeployKey | None:
    return row(ProjectDeployKey, await conn.fetchrow(_FIND_DEPLOY_KEY, project_id, key_id))


async def enable_deploy_key(conn: Conn, key_id: int, project_id: int, can_push: bool) -> None:
    await conn.execute(_ENABLE_DEPLOY_KEY, key_id, project_id, can_push)


async def disable_deploy_key(conn: Conn, project_id: int, key_id: int) -> bool:
    return await conn.fetchval(_DISABLE_DEPLOY_KEY, project_id, key_id) is not None


_BRANCH_JSON = ("push_access_levels", "merge_access_levels", "unprotect_access_levels")


async def list_protected_branches(
    conn: Conn, project_id: int, name: str | None = None
) -> list[ProtectedBranchRow]:
    records = await conn.fetch(_LIST_BRANCHES, project_id, name)
    return [ProtectedBranchRow(**_decode_json_columns(r, _BRANCH_JSON)) for r in records]


async def insert_protected_branch(
    conn: Conn, project_id: int, name: str, *, allow_force_push: bool, levels: list[tuple[str, int]]
) -> bool:
    """False when the branch is already protected; call inside a transaction."""
    branch_id = await conn.fetchval(_INSERT_BRANCH, project_id, name, allow_force_push)
    if branch_id is None:
        return False
    for kind, level in levels:
        await conn.execute(_INSERT_BRANCH_LEVEL, branch_id, kind, level)
    return True


async def update_protected_branch(
    conn: Conn, project_id: int, name: str, *, allow_force_push: bool | None
) -> bool:
    return await conn.fetchval(_UPDATE_BRANCH, project_id, name, allow_force_push) is not None


async def delete_protected_branch(conn: Conn, project_id: int, name: str) -> bool:
    return await conn.fetchval(_DELETE_BRANCH, project_id, name) is not None


async def list_protected_tags(conn: Conn, project_id: int, name: str | None = None) -> list[ProtectedTagRow]:
    records = await conn.fetch(_LIST_TAGS, project_id, name)
    return [ProtectedTagRow(**_decode_json_columns(r, ("create_access_levels",))) for r in records]


async def insert_protected_tag(conn: Conn, project_id: int, name: str, create_access_level: int) -> bool:
    return await conn.fetchval(_INSERT_TAG, project_id, name, create_access_level) is not None


async def delete_protected_tag(conn: Conn, project_id: int, name: str) -> bool:
    return await conn.fetchval(_DELETE_TAG, project_id, name) is not None


async def list_agents(conn: Conn, project_id: int, *, limit: int, offset: int) -> Paged[AgentRow]:
    return paged(AgentRow, await conn.fetch(_LIST_AGENTS, project_id, limit, offset))


async def find_agent(conn: Conn, project_id: int, agent_id: int) -> AgentRow | None:
    return row(AgentRow, await conn.fetchrow(_FIND_AGENT, project_id, agent_id))


async def insert_agent(conn: Conn, project_id: int, name: str, created_by: int | None) -> AgentRow | None:
    """None when the project already has an agent with this name."""
    return row(AgentRow, await conn.fetchrow(_INSERT_AGENT, project_id, name, created_by))


async def delete_agent(conn: Conn, project_id: int, agent_id: int) -> bool:
    return await conn.fetchval(_DELETE_AGENT, project_id, agent_id) is not None


async def list_agent_tokens(conn: Conn, agent_id: int, *, limit: int, offset: int) -> Paged[AgentTokenRow]:
    return paged(AgentTokenRow, await conn.fetch(_LIST_AGENT_TOKENS, agent_id, limit, offset))


async def find_agent_token(conn: Conn, agent_id: int, token_id: int) -> AgentTokenRow | None:
    return row(AgentTokenRow, await conn.fetchrow(_FIND_AGENT_TOKEN, agent_id, token_id))


async def count_active_agent_tokens(conn: Conn, agent_id: int) -> int:
    count: int = await conn.fetchval(_COUNT_AGENT_TOKENS, agent_id)
    return count


async def insert_agent_token(
    conn: Conn, agent_id: int, *, digest: str, name: str, description: str, created_by: int | None
) -> AgentTokenRow:
    created = row(
        AgentTokenRow,
        await conn.fetchrow(_INSERT_AGENT_TOKEN, agent_id, digest, name, description, created_by),
    )
    assert created is not None
    return created


async def revoke_agent_token(conn: Conn, agent_id: int, token_id: int) -> bool:
    return await conn.fetchval(_REVOKE_AGENT_TOKEN, agent_id, token_id) is not None


async def list_client_keys(conn: Conn, project_id: int) -> list[ClientKeyRow]:
    return rows(ClientKeyRow, await conn.fetch(_LIST_CLIENT_KEYS, project_id))


async def insert_client_key(conn: Conn, project_id: int, public_key: str) -> ClientKeyRow:
    created = row(ClientKeyRow, await conn.fetchrow(_INSERT_CLIENT_KEY, project_id, public_key))
    assert created is not None
    return created


async def delete_client_key(conn: Conn, project_id: int, key_id: int) -> ClientKeyRow | None:
    return row(ClientKeyRow, await conn.fetchrow(_DELETE_CLIENT_KEY, project_id, key_id))
