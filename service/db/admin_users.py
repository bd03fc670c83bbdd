"""Users, SSH keys and personal access tokens for the admin API (sql/admin_users.sql)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from service.db.admin_pages import Paged, paged
from service.db.keys import KeyRow
from service.db.queries import sql
from service.db.rows import Conn, row
from service.db.users import PersonalAccessTokenRow

_FIND = sql("admin_find_user")
_LIST = sql("admin_list_users")
_CONFLICTS = sql("admin_user_conflicts")
_INSERT = sql("admin_insert_user")
_UPDATE = sql("admin_update_user")
_SET_STATE = sql("admin_set_user_state")
_DELETE_PATHS = sql("admin_delete_user_paths")
_KEEP_DEPLOY_KEYS = sql("admin_keep_deploy_keys_of_user")
_DELETE = sql("admin_delete_user")
_FIND_KEY = sql("admin_find_key")
_FIND_KEY_BY_FINGERPRINT = sql("admin_find_key_by_fingerprint")
_LIST_KEYS = sql("admin_list_user_keys")
_FINGERPRINT_TAKEN = sql("admin_key_fingerprint_taken")
_DELETE_KEY = sql("admin_delete_user_key")
_FIND_TOKEN = sql("admin_find_token")
_LIST_TOKENS = sql("admin_list_tokens")
_REVOKE_TOKEN = sql("admin_revoke_token")


@dataclass(frozen=True)
class AdminUser:
    id: int
    username: str
    email: str
    name: str
    state: str
    user_type: str
    admin: bool
    external: bool
    can_create_group: bool
    projects_limit: int
    confirmed_at: datetime | None
    created_at: datetime
    last_activity_on: date | None
    otp_required_for_login: bool
    namespace_id: int | None


@dataclass(frozen=True)
class UserConflicts:
    username_taken: bool
    email_taken: bool


async def find_user(conn: Conn, user_id: int) -> AdminUser | None:
    return row(AdminUser, await conn.fetchrow(_FIND, user_id))


async def list_users(
    conn: Conn,
    *,
    username: str | None,
    search: str | None,
    active: bool,
    blocked: bool,
    limit: int,
    offset: int,
    search_email: bool = False,
) -> Paged[AdminUser]:
    """search_email: match `search` against e-mail addresses too (administrators only, as GitLab)."""
    return paged(AdminUser, await conn.fetch(_LIST, username, search, active, blocked, limit, offset, search_email))


async def user_conflicts(
    conn: Conn, username: str | None, email: str | None, except_id: int | None
) -> UserConflicts:
    found = row(UserConflicts, await conn.fetchrow(_CONFLICTS, username, email, except_id))
    assert found is not None
    return found


async def insert_user(
    conn: Conn,
    *,
    username: str,
    email: str,
    name: str,
    password_hash: str,
    admin: bool,
    can_create_group: bool,
    external: bool,
    projects_limit: int,
    confirmed: bool,
) -> int:
    user_id: int = await conn.fetchval(
        _INSERT,
        username,
        email,
        name,
        password_hash,
        admin,
        can_create_group,
        external,
        projects_limit,
        confirmed,
    )
    return user_id


async def update_user(
    conn: Conn,
    user_id: int,
    *,
    username: str | None = None,
    email: str | None = None,
    name: str | None = None,
    password_hash: str | None = None,
    admin: bool | None = None,
    can_create_group: bool | None = None,
    external: bool | None = None,
    projects_limit: int | None = None,
) -> None:
    await conn.execute(
        _UPDATE,
        user_id,
        username,
        email,
        name,
        password_hash,
        admin,
        can_create_group,
        external,
        projects_limit,
    )


async def set_user_state(conn: Conn, user_id: int, state: str) -> None:
    await conn.execute(_SET_STATE, user_id, state)


async def delete_user(conn: Conn, user_id: int) -> None:
    """Call inside a transaction: the personal namespace's routes go first, then the user; deploy keys
    the user created stay."""
    await conn.execute(_DELETE_PATHS, user_id)
    await conn.execute(_KEEP_DEPLOY_KEYS, user_id)
    await conn.execute(_DELETE, user_id)


async def find_key(conn: Conn, key_id: int) -> KeyRow | None:
    return row(KeyRow, await conn.fetchrow(_FIND_KEY, key_id))


async def find_key_by_fingerprint(conn: Conn, *, sha256: str | None, md5: str | None) -> KeyRow | None:
    return row(KeyRow, await conn.fetchrow(_FIND_KEY_BY_FINGERPRINT, sha256, md5))


async def list_user_keys(conn: Conn, user_id: int, *, limit: int, offset: int) -> Paged[KeyRow]:
    return paged(KeyRow, await conn.fetch(_LIST_KEYS, user_id, limit, offset))


async def key_fingerprint_taken(conn: Conn, fingerprint_sha256: str) -> bool:
    taken: bool = await conn.fetchval(_FINGERPRINT_TAKEN, fingerprint_sha256)
    return taken


async def delete_user_key(conn: Conn, user_id: int, key_id: int) -> bool:
    return await conn.fetchval(_DELETE_KEY, user_id, key_id) is not None


async def find_token(conn: Conn, token_id: int) -> PersonalAccessTokenRow | None:
    return row(PersonalAccessTokenRow, await conn.fetchrow(_FIND_TOKEN, token_id))


async def list_tokens(
    conn: Conn, *, user_id: int | None, revoked: bool | None, state: str | None, limit: int, offset: int
) -> Paged[PersonalAccessTokenRow]:
    return paged(
        PersonalAccessTokenRow, await conn.fetch(_LIST_TOKENS, user_id, revoked, state, limit, offset)
    )


async def revoke_token(conn: Conn, token_id: int) -> None:
    await conn.execute(_REVOKE_TOKEN, token_id)
