"""Ordered SQL migrations from sql/migrations, safe when several workers start at once.

Every pending file is applied in one transaction that holds a transaction-level advisory lock: a
second runner waits, then finds nothing left to do. Neither the lock nor the statements outlive the
transaction, so this works over a direct connection (DATABASE_MIGRATION_URL, as GitLab runs its
migrations around PgBouncer) and through PgBouncer's transaction pooling alike; a file that fails
leaves nothing of the run behind.
"""

from __future__ import annotations

import logging
from pathlib import Path

import asyncpg

from service.db.queries import MIGRATIONS_DIR, many, statement
from service.db.rows import Conn

log = logging.getLogger("gitlab_internal_api.migrate")

# Any constant works; every migrating process takes the same lock.
LOCK_ID = 0x676C5F6D6967


def migration_versions(directory: Path = MIGRATIONS_DIR) -> list[str]:
    return [path.stem for path in sorted(directory.glob("*.sql"))]


async def pending_migrations(conn: Conn, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """The migrations this code expects that the database has not applied (all, on an empty one)."""
    try:
        done = {row["version"] for row in await conn.fetch(many("applied_migrations"))}
    except asyncpg.UndefinedTableError:
        done = set()
    return [version for version in migration_versions(directory) if version not in done]


async def migrate(dsn: str, directory: Path = MIGRATIONS_DIR, connect_timeout: float = 30.0) -> list[str]:
    """Apply each not yet applied `NNNN_name.sql`; return their names."""
    # No statement cache: a named statement would stay behind on a PgBouncer server connection.
    conn = await asyncpg.connect(dsn, timeout=connect_timeout, statement_cache_size=0)
    try:
        async with conn.transaction():
            await conn.execute(statement("lock_migrations"), LOCK_ID)
            await conn.execute(statement("create_schema_migrations"))
            done = {row["version"] for row in await conn.fetch(many("applied_migrations"))}
            applied: list[str] = []
            for path in sorted(directory.glob("*.sql")):
                if path.stem in done:
                    continue
                await conn.execute(path.read_text())  # no arguments: simple protocol, many statements
                await conn.execute(statement("record_migration"), path.stem)
                applied.append(path.stem)
        for version in applied:
            log.info("applied migration %s", version)
        return applied
    finally:
        await conn.close()
