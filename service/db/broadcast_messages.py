"""broadcast_messages (sql/broadcast_messages.sql)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from service.db.queries import many, one, returning
from service.db.rows import Conn, Paged, paged, row

_LIST = many("list_broadcast_messages")
_FIND = one("find_broadcast_message")
_INSERT = returning("insert_broadcast_message")
_UPDATE = returning("update_broadcast_message")
_DELETE = returning("delete_broadcast_message")

BROADCAST_FIELDS = (
    "message",
    "starts_at",
    "ends_at",
    "broadcast_type",
    "target_path",
    "target_access_levels",
    "show_in_cli",
    "dismissable",
    "theme",
)


@dataclass(frozen=True)
class BroadcastRow:
    id: int
    message: str
    starts_at: datetime
    ends_at: datetime
    broadcast_type: str
    target_path: str
    target_access_levels: list[int]
    show_in_cli: bool
    dismissable: bool
    theme: str


async def list_broadcast_messages(conn: Conn, *, limit: int, offset: int) -> Paged[BroadcastRow]:
    return paged(BroadcastRow, await conn.fetch(_LIST, limit, offset))


async def find_broadcast_message(conn: Conn, message_id: int) -> BroadcastRow | None:
    return row(BroadcastRow, await conn.fetchrow(_FIND, message_id))


async def insert_broadcast_message(conn: Conn, values: dict[str, Any]) -> int:
    message_id: int = await conn.fetchval(_INSERT, *(values.get(name) for name in BROADCAST_FIELDS))
    return message_id


async def update_broadcast_message(conn: Conn, message_id: int, values: dict[str, Any]) -> bool:
    updated = await conn.fetchval(_UPDATE, message_id, *(values.get(name) for name in BROADCAST_FIELDS))
    return updated is not None


async def delete_broadcast_message(conn: Conn, message_id: int) -> bool:
    return await conn.fetchval(_DELETE, message_id) is not None
