"""The database's side of the readiness probe."""

from __future__ import annotations

from service.db.queries import value
from service.db.rows import Conn

_IS_WRITABLE_PRIMARY = value("is_writable_primary")


async def is_writable_primary(conn: Conn) -> bool:
    return bool(await conn.fetchval(_IS_WRITABLE_PRIMARY))
