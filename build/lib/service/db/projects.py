"""Projects, their routes, and error-tracking client keys."""

from __future__ import annotations

from dataclasses import dataclass

from service.db.queries import sql
from service.db.rows import Conn, row

_BY_ID = sql("find_project_by_id")
_BY_PATH = sql("find_project_by_full_path")
_INSERT = sql("insert_project")
_INSERT_ROUTE = sql("insert_route")
_DELETE_REDIRECTS = sql("delete_redirect_routes_for_path")
_ERROR_TRACKING_KEY = sql("find_error_tracking_client_key")


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
class ErrorTrackingKeyCheck:
    project_id: int
    active_key: bool


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
) -> int:
    """A project and its route; call inside a transaction."""
    project_id: int = await conn.fetchval(
        _INSERT, name, path, namespace_id, creator_id, visibility_level, default_branch
    )
    full_path = f"{namespace_full_path}/{path}"
    await conn.execute(_DELETE_REDIRECTS, full_path)
    await conn.fetchval(_INSERT_ROUTE, "Project", project_id, full_path, name)
    return project_id


async def insert_route(conn: Conn, source_type: str, source_id: int, full_path: str, name: str) -> None:
    await conn.execute(_DELETE_REDIRECTS, full_path)
    await conn.fetchval(_INSERT_ROUTE, source_type, source_id, full_path, name)


async def find_error_tracking_key(conn: Conn, project_id: int, public_key: str) -> ErrorTrackingKeyCheck | None:
    return row(ErrorTrackingKeyCheck, await conn.fetchrow(_ERROR_TRACKING_KEY, project_id, public_key))
