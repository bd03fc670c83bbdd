"""What /-/readiness asks of the database: a primary that takes writes (a standby left behind by a
failover answers queries too)."""

from __future__ import annotations


from service.db.rows import Pool
from service.db import health as health_db


async def database_not_ready(pool: Pool) -> str | None:
    """None when the pool reaches a writable primary, else why not."""
    async with pool.acquire() as conn:
        if not await health_db.is_writable_primary(conn):
            return "the database is in recovery (a standby), not a writable primary"
    return None
