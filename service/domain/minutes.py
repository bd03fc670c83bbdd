"""Purchased compute-minute packs (GitLab: ee/app/services/ci/minutes/additional_packs/*.rb).

CustomersDot retries a purchase until it sees a 2xx, so creating is idempotent per purchase_xid:
the unique index on purchase_xid plus INSERT ... ON CONFLICT DO NOTHING makes concurrent retries
insert one row, and every retry answers with that row, unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from service.db import billing as db
from service.db.billing import NamespaceRow, PackRow
from service.db.rows import Conn
from service.domain.errors import BadRequest

# CreateService#error_response: the packs API (array) and the first, single-pack API
UNABLE_TO_SAVE_PACKS = "Unable to save additional packs"
UNABLE_TO_SAVE_PACK = "Unable to save additional pack"
PURCHASE_XID_MAX_LENGTH = 32  # validates :purchase_xid, length: { maximum: 32 }

# ChangeNamespaceService's messages
NOT_TOP_LEVEL = "Namespace must be a top-level namespace"
TARGET_NOT_TOP_LEVEL = "Target namespace must be a top-level namespace"
NO_SHARED_OWNER = "Both namespaces must share the same owner"


class PacksInvalid(BadRequest):
    """A pack failed the model's validations; nothing was saved (400 "Bad request - <message>")."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class MoveRejected(BadRequest):
    """ChangeNamespaceService refused the move; no pack moved (400 "Bad request - <message>")."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class PackRequest:
    number_of_minutes: int | None
    expires_at: date | None
    purchase_xid: str | None


def pack_is_valid(pack: PackRequest) -> bool:
    """Ci::Minutes::AdditionalPack validations as on GitLab.com (expires_at and purchase_xid required)."""
    return (
        pack.number_of_minutes is not None
        and pack.expires_at is not None
        and pack.purchase_xid is not None
        and bool(pack.purchase_xid.strip())
        and len(pack.purchase_xid) <= PURCHASE_XID_MAX_LENGTH
    )


async def create_packs(
    conn: Conn,
    namespace: NamespaceRow,
    packs: Sequence[PackRequest],
    error_message: str = UNABLE_TO_SAVE_PACKS,
) -> list[PackRow]:
    """find_or_create each pack of one purchase, all in one transaction; the answer keeps request order."""
    if not all(pack_is_valid(pack) for pack in packs):
        raise PacksInvalid(error_message)
    saved: dict[str, PackRow] = {}
    async with conn.transaction():
        # Insert in purchase_xid order: two requests that share purchases then take the index
        # entries in the same order and wait for each other instead of deadlocking.
        for xid in sorted({pack.purchase_xid for pack in packs if pack.purchase_xid is not None}):
            pack = next(p for p in packs if p.purchase_xid == xid)
            assert pack.expires_at is not None and pack.number_of_minutes is not None
            row = await db.insert_additional_pack(conn, namespace.id, xid, pack.expires_at, pack.number_of_minutes)
            if row is None:
                # An earlier (or concurrent, now committed) request holds this purchase: answer
                # with its pack as stored. READ COMMITTED gives this statement a fresh snapshot.
                row = await db.find_additional_pack(conn, xid)
                if row is None or row.namespace_id != namespace.id:
                    # The purchase belongs to another namespace: GitLab's uniqueness validation
                    # fails, and the whole request rolls back.
                    raise PacksInvalid(error_message)
            saved[xid] = row
    return [saved[pack.purchase_xid] for pack in packs if pack.purchase_xid is not None]


async def move_packs(conn: Conn, namespace: NamespaceRow, target: NamespaceRow) -> int:
    """ChangeNamespaceService: every pack of `namespace` now belongs to `target`; returns how many."""
    if namespace.parent_id is not None:
        raise MoveRejected(NOT_TOP_LEVEL)
    if target.parent_id is not None:
        raise MoveRejected(TARGET_NOT_TOP_LEVEL)
    async with conn.transaction():
        if not await db.namespaces_share_an_owner(conn, namespace.id, target.id):
            raise MoveRejected(NO_SHARED_OWNER)
        return await db.move_additional_packs(conn, namespace.id, target.id)
