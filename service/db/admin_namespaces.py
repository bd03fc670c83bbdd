"""Namespaces (user namespaces and groups), their routes and members (sql/admin_namespaces.sql)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from service.db.admin_pages import Paged, paged
from service.db.queries import sql
from service.db.rows import Conn, row

_INSERT = sql("admin_insert_namespace")
_FIND = sql("admin_find_namespace")
_FIND_BY_PATH = sql("admin_find_namespace_by_path")
_LIST_GROUPS = sql("admin_list_groups")
_LIST_SUBGROUPS = sql("admin_list_subgroups")
_UPDATE = sql("admin_update_namespace")
_PATH_TAKEN = sql("admin_path_taken")
_DROP_REDIRECTS = sql("admin_drop_redirects_for_moved_routes")
_REDIRECT = sql("admin_redirect_moved_routes")
_REWRITE = sql("admin_rewrite_routes")
_RENAME_ROUTE = sql("admin_rename_route")
_DELETE_PATHS = sql("admin_delete_namespace_paths")
_DELETE = sql("admin_delete_namespace")
_LIST_MEMBERS = sql("admin_list_members")
_FIND_MEMBER = sql("admin_find_member")
_INSERT_MEMBER = sql("admin_insert_member")
_UPDATE_MEMBER = sql("admin_update_member")
_DELETE_MEMBER = sql("admin_delete_member")
_OTHER_OWNERS = sql("admin_other_group_owners")
_SOLELY_OWNED = sql("admin_group_solely_owned_by")


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
    created_at: datetime
    full_path: str
    full_name: str


@dataclass(frozen=True)
class MemberRow:
    member_id: int
    id: int  # the user's id: GitLab's Member entity is the user with access_level added
    username: str
    name: str
    state: str
    access_level: int
    expires_at: date | None
    created_at: datetime
    created_by_id: int | None
    membership_state: str


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
) -> int:
    namespace_id: int = await conn.fetchval(
        _INSERT, name, path, kind, owner_id, parent_id, visibility_level, description
    )
    return namespace_id


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
) -> None:
    await conn.execute(_UPDATE, namespace_id, name, path, visibility_level, description)


async def path_taken(conn: Conn, full_path: str) -> bool:
    taken: bool = await conn.fetchval(_PATH_TAKEN, full_path)
    return taken


async def move_routes(conn: Conn, old_full_path: str, new_full_path: str) -> None:
    """Moves the route at old_full_path and every route under it; call inside a transaction.

    Each old path is left behind as a redirect, except on a change of letter case only (the old
    path still resolves to the same route then).
    """
    await conn.execute(_DROP_REDIRECTS, new_full_path)
    if old_full_path.lower() != new_full_path.lower():
        await conn.execute(_REDIRECT, old_full_path)
    await conn.execute(_REWRITE, old_full_path, new_full_path)


async def rename_route(conn: Conn, source_type: str, source_id: int, full_name: str) -> None:
    await conn.execute(_RENAME_ROUTE, source_type, source_id, full_name)


async def delete_namespace(conn: Conn, namespace_id: int) -> None:
    """Call inside a transaction: the paths of the whole subtree go first, then the namespace."""
    await conn.execute(_DELETE_PATHS, namespace_id)
    await conn.execute(_DELETE, namespace_id)


async def list_members(
    conn: Conn, source_type: str, source_id: int, *, limit: int, offset: int
) -> Paged[MemberRow]:
    return paged(MemberRow, await conn.fetch(_LIST_MEMBERS, source_type, source_id, limit, offset))


async def find_member(conn: Conn, source_type: str, source_id: int, user_id: int) -> MemberRow | None:
    return row(MemberRow, await conn.fetchrow(_FIND_MEMBER, source_type, source_id, user_id))


async def insert_member(
    conn: Conn,
    *,
    user_id: int,
    source_type: str,
    source_id: int,
    access_level: int,
    expires_at: date | None,
    created_by_id: int | None,
) -> bool:
    """False when the user already is a member."""
    inserted = await conn.fetchval(
        _INSERT_MEMBER, user_id, source_type, source_id, access_level, expires_at, created_by_id
    )
    return inserted is not None


async def update_member(
    conn: Conn, source_type: str, source_id: int, user_id: int, *, access_level: int, expires_at: date | None
) -> bool:
    return (
        await conn.fetchval(_UPDATE_MEMBER, source_type, source_id, user_id, access_level, expires_at)
        is not None
    )


async def delete_member(conn: Conn, source_type: str, source_id: int, user_id: int) -> bool:
    return await conn.fetchval(_DELETE_MEMBER, source_type, source_id, user_id) is not None


async def other_group_owners(conn: Conn, group_id: int, user_id: int) -> int:
    count: int = await conn.fetchval(_OTHER_OWNERS, group_id, user_id)
    return count


async def group_solely_owned_by(conn: Conn, user_id: int) -> int | None:
    group_id: int | None = await conn.fetchval(_SOLELY_OWNED, user_id)
    return group_id
