"""users and their personal access tokens (sql/users.sql)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import orjson

from service.db.queries import many, one, returning, statement, value
from service.db.rows import Conn, Paged, paged, row

_BY_ID = one("find_user_by_id")
_BY_USERNAME = one("find_user_by_username")
_BY_TOKEN = one("find_user_by_token_digest")
_FOR_ACTOR = one("find_user_for_actor")
_REPLACE_CODES = statement("replace_otp_backup_codes")
_INSERT_TOKEN = returning("insert_personal_access_token")
_FIND = one("find_user")
_LIST = many("list_users")
_CONFLICTS = one("user_conflicts")
_INSERT = returning("insert_user")
_UPDATE = statement("update_user")
_SET_STATE = value("set_user_state")
_DELETE = statement("delete_user")
_LOCK = statement("lock_user")
_FIND_TOKEN = one("find_personal_access_token")
_LIST_TOKENS = many("list_personal_access_tokens")
_REVOKE_TOKEN = statement("revoke_personal_access_token")


@dataclass(frozen=True)
class UserRow:
    id: int
    username: str
    name: str
    state: str
    user_type: str
    admin: bool
    otp_required_for_login: bool
    encrypted_password: str


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
    path_taken: bool  # the username as a routed top-level path


@dataclass(frozen=True)
class TokenOwner:
    token_id: int
    revoked: bool
    expires_at: date | None
    scopes: list[str]
    user_id: int
    username: str
    admin: bool
    state: str


@dataclass(frozen=True)
class PersonalAccessTokenRow:
    id: int
    user_id: int
    name: str
    scopes: list[str]
    expires_at: date | None
    revoked: bool
    impersonation: bool
    created_at: datetime
    last_used_at: datetime | None


async def find_user_by_id(conn: Conn, user_id: int) -> UserRow | None:
    return row(UserRow, await conn.fetchrow(_BY_ID, user_id))


async def find_user_by_username(conn: Conn, username: str) -> UserRow | None:
    return row(UserRow, await conn.fetchrow(_BY_USERNAME, username))


async def find_user_for_actor(
    conn: Conn, *, key_id: int | None, user_id: int | None, username: str | None, owner_of_key_id: int | None
) -> UserRow | None:
    return row(UserRow, await conn.fetchrow(_FOR_ACTOR, key_id, user_id, username, owner_of_key_id))


async def find_user_by_token_digest(conn: Conn, digest: str) -> TokenOwner | None:
    return row(TokenOwner, await conn.fetchrow(_BY_TOKEN, digest))


async def replace_otp_backup_codes(conn: Conn, user_id: int, digests: list[str]) -> None:
    await conn.execute(_REPLACE_CODES, user_id, orjson.dumps(digests).decode())


async def insert_personal_access_token(
    conn: Conn, *, user_id: int, name: str, digest: str, scopes: list[str], expires_at: date | None
) -> PersonalAccessTokenRow:
    created = row(PersonalAccessTokenRow, await conn.fetchrow(_INSERT_TOKEN, user_id, name, digest, scopes, expires_at))
    assert created is not None
    return created


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
    admins: bool = False,
    external: bool = False,
    non_external: bool = False,
) -> Paged[AdminUser]:
    """search_email: match `search` against e-mail addresses too (administrators only, as GitLab)."""
    return paged(
        AdminUser,
        await conn.fetch(
            _LIST, username, search, active, blocked, limit, offset, search_email, admins, external, non_external
        ),
    )


async def user_conflicts(conn: Conn, username: str | None, email: str | None, except_id: int | None) -> UserConflicts:
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


async def set_user_state(conn: Conn, user_id: int, state: str) -> bool:
    """False when the user is gone."""
    return await conn.fetchval(_SET_STATE, user_id, state) is not None


async def lock_user(conn: Conn, user_id: int) -> None:
    await conn.execute(_LOCK, user_id)


async def delete_user(conn: Conn, user_id: int) -> None:
    """The row; first the personal namespace's routes and memberships, and the deploy keys the user
    created are kept (ssh_keys.keep_deploy_keys_of_user), in the same transaction."""
    await conn.execute(_DELETE, user_id)


async def find_personal_access_token(conn: Conn, token_id: int) -> PersonalAccessTokenRow | None:
    return row(PersonalAccessTokenRow, await conn.fetchrow(_FIND_TOKEN, token_id))


async def list_personal_access_tokens(
    conn: Conn, *, user_id: int | None, revoked: bool | None, state: str | None, limit: int, offset: int
) -> Paged[PersonalAccessTokenRow]:
    return paged(PersonalAccessTokenRow, await conn.fetch(_LIST_TOKENS, user_id, revoked, state, limit, offset))


async def revoke_personal_access_token(conn: Conn, token_id: int) -> None:
    await conn.execute(_REVOKE_TOKEN, token_id)
