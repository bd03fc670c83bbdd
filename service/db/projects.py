"""projects, and the error-tracking client keys of a project (sql/projects.sql).

insert_project is the one writer of projects (a push's auto-created project and the admin API's
alike) and writes the project's route with it (routes.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from service.db import routes
from service.db.queries import many, one, returning, statement, value
from service.db.rows import Conn, Paged, paged, row, rows

_BY_ID = one("find_project_by_id")
_BY_PATH = one("find_project_by_full_path")
_INSERT = returning("insert_project")
_ERROR_TRACKING_KEY = one("find_error_tracking_client_key")
_FIND = one("find_project")
_FIND_ID_BY_PATH = value("find_project_id_by_path")
_LIST = many("list_projects")
_TAKEN = one("project_name_or_path_taken")
_UPDATE = statement("update_project")
_DELETE = statement("delete_project")
_LOCK = value("lock_project")
_HOLD = value("hold_project")
_LIST_CLIENT_KEYS = many("list_client_keys")
_INSERT_CLIENT_KEY = returning("insert_client_key")
_DELETE_CLIENT_KEY = returning("delete_client_key")


@dataclass(frozen=True)
class ProjectRow:
    id: int
    name: str
    path: str
    full_path: str
    namespace_id: int
    visibility_level: int
    repository_storage: str
    legacy_disk_path: str | None
    lfs_enabled: bool
    default_branch: str | None
    printing_merge_request_link_enabled: bool
    merge_requests_access_level: int
    repository_access_level: int
    archived: bool


@dataclass(frozen=True)
class AdminProject:
    """A project with its route and namespace, for GitLab's Project entity."""

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
class ErrorTrackingKeyCheck:
    project_id: int
    active_key: bool


@dataclass(frozen=True)
class ClientKeyRow:
    id: int
    project_id: int
    public_key: str
    active: bool
    created_at: datetime


async def find_project_by_id(conn: Conn, project_id: int) -> ProjectRow | None:
    return row(ProjectRow, await conn.fetchrow(_BY_ID, project_id))


async def find_project_by_full_path(conn: Conn, full_path: str) -> ProjectRow | None:
    return row(ProjectRow, await conn.fetchrow(_BY_PATH, full_path))


async def insert_project(
    conn: Conn,
    *,
    name: str,
    path: str,
    namespace_id: int,
    namespace_full_path: str,
    creator_id: int | None,
    visibility_level: int = 0,
    default_branch: str | None = None,
    lfs_enabled: bool = True,
    description: str = "",
) -> int:
    """A project and its route; call inside a transaction.

    The defaults are the columns' defaults. The route's name is GitLab's full name,
    "<namespace full name> / <project name>", read from the namespace's route by the insert.
    """
    record = await conn.fetchrow(
        _INSERT, name, path, namespace_id, creator_id, visibility_level, default_branch, lfs_enabled, description
    )
    assert record is not None  # an INSERT ... VALUES returns its row
    project_id: int = record["id"]
    await routes.insert_route(conn, "Project", project_id, f"{namespace_full_path}/{path}", record["full_name"])
    return project_id


async def find_error_tracking_key(conn: Conn, project_id: int, public_key: str) -> ErrorTrackingKeyCheck | None:
    return row(ErrorTrackingKeyCheck, await conn.fetchrow(_ERROR_TRACKING_KEY, project_id, public_key))


async def hold_project(conn: Conn, project_id: int) -> bool:
    return await conn.fetchval(_HOLD, project_id) is not None


async def lock_project(conn: Conn, project_id: int) -> int | None:
    namespace_id: int | None = await conn.fetchval(_LOCK, project_id)
    return namespace_id


async def find_project(conn: Conn, project_id: int) -> AdminProject | None:
    return row(AdminProject, await conn.fetchrow(_FIND, project_id))


async def find_project_id_by_path(conn: Conn, full_path: str) -> int | None:
    found: int | None = await conn.fetchval(_FIND_ID_BY_PATH, full_path)
    return found


async def list_projects(
    conn: Conn,
    *,
    search: str | None,
    namespace_id: int | None,
    limit: int,
    offset: int,
    archived: bool | None = None,
    visibility_level: int | None = None,
    owned_by: int | None = None,
    member_id: int | None = None,
) -> Paged[AdminProject]:
    """None leaves a filter out; owned_by and member_id are user ids."""
    return paged(
        AdminProject,
        await conn.fetch(_LIST, search, namespace_id, limit, offset, archived, visibility_level, owned_by, member_id),
    )


async def name_or_path_taken(
    conn: Conn, namespace_id: int, name: str | None, path: str | None, except_id: int | None
) -> NameOrPathTaken:
    found = row(NameOrPathTaken, await conn.fetchrow(_TAKEN, namespace_id, name, path, except_id))
    assert found is not None
    return found


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
    """The row only: delete its routes and memberships first, in the same transaction."""
    await conn.execute(_DELETE, project_id)


async def list_client_keys(conn: Conn, project_id: int) -> list[ClientKeyRow]:
    return rows(ClientKeyRow, await conn.fetch(_LIST_CLIENT_KEYS, project_id))


async def insert_client_key(conn: Conn, project_id: int, public_key: str) -> ClientKeyRow:
    created = row(ClientKeyRow, await conn.fetchrow(_INSERT_CLIENT_KEY, project_id, public_key))
    assert created is not None
    return created


async def delete_client_key(conn: Conn, project_id: int, key_id: int) -> ClientKeyRow | None:
    return row(ClientKeyRow, await conn.fetchrow(_DELETE_CLIENT_KEY, project_id, key_id))
