"""members: memberships of groups and projects (sql/members.sql)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from service.db.queries import many, one, returning, statement, value
from service.db.rows import Conn, Paged, paged, row

_LIST = many("list_members")
_FIND = one("find_member")
_INSERT = returning("insert_member")
_UPDATE = returning("update_member")
_DELETE = returning("delete_member")
_OTHER_OWNERS = value("count_other_group_owners")
_OWNED_BY = many("groups_owned_by")
_SOLELY_OWNED = many("groups_solely_owned_by")
_DELETE_OF = statement("delete_memberships_of")
_LOCK_OWNERS = statement("lock_group_owners")

GROUP_OWNERS_LOCK = 0x676F776E  # advisory lock space: owner changes of one group


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


async def list_members(conn: Conn, source_type: str, source_id: int, *, limit: int, offset: int) -> Paged[MemberRow]:
    return paged(MemberRow, await conn.fetch(_LIST, source_type, source_id, limit, offset))


async def find_member(conn: Conn, source_type: str, source_id: int, user_id: int) -> MemberRow | None:
    return row(MemberRow, await conn.fetchrow(_FIND, source_type, source_id, user_id))


async def insert_member(
    conn: Conn,
    *,
    user_id: int,
    source_type: str,
    source_id: int,
    access_level: int,
    expires_at: date | None = None,
    created_by_id: int | None = None,
) -> bool:
    """False when the user already is a member."""
    inserted = await conn.fetchval(_INSERT, user_id, source_type, source_id, access_level, expires_at, created_by_id)
    return inserted is not None


async def update_member(
    conn: Conn, source_type: str, source_id: int, user_id: int, *, access_level: int, expires_at: date | None
) -> bool:
    return await conn.fetchval(_UPDATE, source_type, source_id, user_id, access_level, expires_at) is not None


async def delete_member(conn: Conn, source_type: str, source_id: int, user_id: int) -> bool:
    return await conn.fetchval(_DELETE, source_type, source_id, user_id) is not None


async def other_group_owners(conn: Conn, group_id: int, user_id: int) -> int:
    count: int = await conn.fetchval(_OTHER_OWNERS, group_id, user_id)
    return count


async def groups_owned_by(conn: Conn, user_id: int) -> list[int]:
    return [record["source_id"] for record in await conn.fetch(_OWNED_BY, user_id)]


async def groups_solely_owned_by(conn: Conn, user_id: int) -> list[int]:
    return [record["source_id"] for record in await conn.fetch(_SOLELY_OWNED, user_id)]


async def delete_memberships_of(conn: Conn, namespace_ids: Sequence[int], project_ids: Sequence[int]) -> None:
    """Before the namespaces and projects themselves are deleted (no foreign key brings these along)."""
    await conn.execute(_DELETE_OF, list(namespace_ids), list(project_ids))


async def lock_group_owners(conn: Conn, group_id: int) -> None:
    """Call inside a transaction: owner changes of this group wait for it to end."""
    await conn.execute(_LOCK_OWNERS, GROUP_OWNERS_LOCK, group_id)
