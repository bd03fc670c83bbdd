"""Users and their personal access tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import orjson

from service.db.queries import sql
from service.db.rows import Conn, row

_BY_ID = sql("find_user_by_id")
_BY_USERNAME = sql("find_user_by_username")
_BY_TOKEN = sql("find_user_by_token_digest")
_FOR_ACTOR = sql("find_user_for_actor")
_REPLACE_CODES = sql("replace_otp_backup_codes")
_INSERT_TOKEN = sql("insert_personal_access_token")


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
