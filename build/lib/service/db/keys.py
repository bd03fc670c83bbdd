"""SSH keys and deploy keys."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from service.db.queries import sql
from service.db.rows import Conn, row

_BY_FINGERPRINTS = sql("find_auth_keys_by_fingerprints")
_KEY_ACTOR = sql("find_key_actor")
_INSERT = sql("insert_key")


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
