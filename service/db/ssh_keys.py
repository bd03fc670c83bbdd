"""keys: SSH keys and deploy keys (sql/ssh_keys.sql)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from service.db.queries import many, one, returning, statement, value
from service.db.rows import Conn, Paged, paged, row

_BY_FINGERPRINTS = many("find_auth_keys_by_fingerprints")
_KEY_ACTOR = one("find_key_actor")
_INSERT = returning("insert_key")
_FIND = one("find_key")
_FIND_BY_FINGERPRINT = one("find_key_by_fingerprint")
_LIST_USER_KEYS = many("list_user_keys")
_FINGERPRINT_TAKEN = value("key_fingerprint_taken")
_DELETE_USER_KEY = returning("delete_user_key")
_KEEP_DEPLOY_KEYS = statement("keep_deploy_keys_of_user")
_DELETE_ORPHANED_DEPLOY_KEY = statement("delete_orphaned_deploy_key")


@dataclass(frozen=True)
class AuthorizedKey:
    id: int
    title: str
    key: str
    created_at: datetime
    expires_at: datetime | None
    usage_type: str
    user_name: str | None


@dataclass(frozen=True)
class KeyActor:
    key_id: int
    key_class: str | None
    fingerprint_sha256: str
    user_id: int | None
    username: str | None
    name: str | None
    state: str | None
    user_type: str | None
    otp_required_for_login: bool | None
    encrypted_password: str | None
    admin: bool | None

    @property
    def is_deploy_key(self) -> bool:
        return self.key_class == "DeployKey"


@dataclass(frozen=True)
class KeyRow:
    id: int
    user_id: int | None
    type: str | None
    key: str
    title: str
    key_type: str
    bits: int
    fingerprint: str
    fingerprint_sha256: str
    usage_type: str
    expires_at: datetime | None
    last_used_at: datetime | None
    created_at: datetime
    public: bool


async def find_auth_keys_by_fingerprints(conn: Conn, fingerprints: Sequence[str]) -> list[AuthorizedKey | None]:
    """One answer per fingerprint, in order (batched lookups, see service/db/batch.py)."""
    records = await conn.fetch(_BY_FINGERPRINTS, list(fingerprints))
    return [row(AuthorizedKey, record) if record["id"] is not None else None for record in records]


async def find_key_actor(conn: Conn, key_id: int) -> KeyActor | None:
    return row(KeyActor, await conn.fetchrow(_KEY_ACTOR, key_id))


async def insert_key(
    conn: Conn,
    *,
    user_id: int | None,
    deploy_key: bool,
    key: str,
    title: str,
    key_type: str,
    bits: int,
    fingerprint_md5: str,
    fingerprint_sha256: str,
    usage_type: str = "auth_and_signing",
    expires_at: datetime | None = None,
) -> KeyRow:
    record = await conn.fetchrow(
        _INSERT,
        user_id,
        "DeployKey" if deploy_key else None,
        key,
        title,
        key_type,
        bits,
        fingerprint_md5,
        fingerprint_sha256,
        usage_type,
        expires_at,
    )
    created = row(KeyRow, record)
    assert created is not None
    return created


async def find_key(conn: Conn, key_id: int) -> KeyRow | None:
    return row(KeyRow, await conn.fetchrow(_FIND, key_id))


async def find_key_by_fingerprint(conn: Conn, *, sha256: str | None, md5: str | None) -> KeyRow | None:
    return row(KeyRow, await conn.fetchrow(_FIND_BY_FINGERPRINT, sha256, md5))


async def list_user_keys(conn: Conn, user_id: int, *, limit: int, offset: int) -> Paged[KeyRow]:
    return paged(KeyRow, await conn.fetch(_LIST_USER_KEYS, user_id, limit, offset))


async def key_fingerprint_taken(conn: Conn, fingerprint_sha256: str) -> bool:
    taken: bool = await conn.fetchval(_FINGERPRINT_TAKEN, fingerprint_sha256)
    return taken


async def delete_user_key(conn: Conn, user_id: int, key_id: int) -> bool:
    return await conn.fetchval(_DELETE_USER_KEY, user_id, key_id) is not None


async def keep_deploy_keys_of_user(conn: Conn, user_id: int) -> None:
    """Before the user is deleted: the deploy keys they created stay, without a creator (GitLab's
    User has_many :deploy_keys, dependent: :nullify); the foreign key alone would delete them."""
    await conn.execute(_KEEP_DEPLOY_KEYS, user_id)


async def delete_orphaned_deploy_key(conn: Conn, key_id: int) -> None:
    """The deploy key, once no project uses it and unless it is public."""
    await conn.execute(_DELETE_ORPHANED_DEPLOY_KEY, key_id)
