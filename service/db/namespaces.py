"""namespaces: user namespaces and groups (sql/namespaces.sql); their routes are in routes.py."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from service.db.queries import many, one, returning, statement
from service.db.rows import Conn, Paged, paged, row

_INSERT = returning("insert_namespace")
_FIND = one("find_namespace")
_FIND_BY_PATH = one("find_namespace_by_path")
_LIST_GROUPS = many("list_groups")
_LIST_SUBGROUPS = many("list_subgroups")
_UPDATE = statement("update_namespace")
_SUBTREE = one("namespace_subtree")
_DELETE = statement("delete_namespace")
_LOCK = statement("lock_namespace")
_LOCK_PATH = statement("lock_namespace_path")
_LOCK_SUBTREE = statement("lock_namespace_subtree")
_VISIBILITY_ABOVE = one("visibility_above")


@dataclass(frozen=True)
class NamespaceRow:
    id: int
    name: str
    path: str
    type: str
    owner_id: int | None
    parent_id: int | None
    traversal_ids: list[int]
    visibility_level: int
    description: str
    project_creation_level: int  # its own, else the instance's default_project_creation
    default_branch_protection: str  # JSON: its own, else the instance's (migration 0409)
    created_at: datetime
    full_path: str
    full_name: str


@dataclass(frozen=True)
class VisibilityAbove:
    """Whether a group holds projects or subgroups more visible than a given level."""

    projects_above: bool
    subgroups_above: bool


@dataclass(frozen=True)
class NamespaceSubtree:
    """A namespace with its descendants, and the projects under them."""

    namespace_ids: list[int]
    project_ids: list[int]


async def insert_namespace(
    conn: Conn,
    *,
    name: str,
    path: str,
    kind: str,
    owner_id: int | None,
    parent_id: int | None,
    visibility_level: int,
    description: str = "",
    project_creation_level: int | None = None,
    default_branch_protection: dict[str, Any] | None = None,
) -> int:
    """The namespace row (traversal_ids included); the caller adds its route (routes.insert_route)."""
    namespace_id: int = await conn.fetchval(
        _INSERT,
        name,
        path,
        kind,
        owner_id,
        parent_id,
        visibility_level,
        description,
        project_creation_level,
        _json(default_branch_protection),
    )
    return namespace_id


async def lock_namespace(conn: Conn, namespace_id: int) -> None:
    await conn.execute(_LOCK, namespace_id)


async def lock_namespace_path(conn: Conn, namespace_id: int) -> None:
    await conn.execute(_LOCK_PATH, namespace_id)


async def lock_namespace_subtree(conn: Conn, namespace_id: int) -> None:
    await conn.execute(_LOCK_SUBTREE, namespace_id)


async def find_namespace(conn: Conn, namespace_id: int) -> NamespaceRow | None:
    return row(NamespaceRow, await conn.fetchrow(_FIND, namespace_id))


async def find_namespace_by_path(conn: Conn, full_path: str) -> NamespaceRow | None:
    return row(NamespaceRow, await conn.fetchrow(_FIND_BY_PATH, full_path))


async def list_groups(conn: Conn, *, search: str | None, limit: int, offset: int) -> Paged[NamespaceRow]:
    return paged(NamespaceRow, await conn.fetch(_LIST_GROUPS, search, limit, offset))


async def list_subgroups(conn: Conn, parent_id: int, *, limit: int, offset: int) -> Paged[NamespaceRow]:
    return paged(NamespaceRow, await conn.fetch(_LIST_SUBGROUPS, parent_id, limit, offset))


async def update_namespace(
    conn: Conn,
    namespace_id: int,
    *,
    name: str | None = None,
    path: str | None = None,
    visibility_level: int | None = None,
    description: str | None = None,
    project_creation_level: int | None = None,
    default_branch_protection: dict[str, Any] | None = None,
) -> None:
    await conn.execute(
        _UPDATE,
        namespace_id,
        name,
        path,
        visibility_level,
        description,
        project_creation_level,
        _json(default_branch_protection),
    )


def _json(value: dict[str, Any] | None) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


async def visibility_above(conn: Conn, group_id: int, level: int) -> VisibilityAbove:
    found = row(VisibilityAbove, await conn.fetchrow(_VISIBILITY_ABOVE, group_id, level))
    assert found is not None  # two EXISTS columns: always one row
    return found


async def namespace_subtree(conn: Conn, namespace_id: int) -> NamespaceSubtree:
    found = row(NamespaceSubtree, await conn.fetchrow(_SUBTREE, namespace_id))
    assert found is not None  # two ARRAY(...) columns: always one row
    return found


async def delete_namespace(conn: Conn, namespace_id: int) -> None:
    """Subgroups and projects go with it; delete their routes and memberships first."""
    await conn.execute(_DELETE, namespace_id)
