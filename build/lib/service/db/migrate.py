"""Ordered SQL migrations from sql/migrations, safe when several workers start at once."""

from __future__ import annotations

import logging
from pathlib import Path

import asyncpg

from service.db.queries import MIGRATIONS_DIR

log = logging.getLogger("gitlab_internal_api.migrate")

# Any constant works; every migrating process takes the same session-level advisory lock.
LOCK_ID = 0x676C5F6D6967


async def migrate(dsn: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply each not yet applied `NNNN_name.sql`, each in its own transaction; return their names."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", LOCK_ID)
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {row["version"] for row in await conn.fetch("SELECT version FROM schema_migrations")}
            applied: list[str] = []
            for path in sorted(directory.glob("*.sql")):
                if path.stem in done:
                    continue
                async with conn.transaction():
                    await conn.execute(path.read_text())  # no arguments: simple protocol, many statements
                    await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", path.stem)
                log.info("applied migration %s", path.stem)
                applied.append(path.stem)
            return applied
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_ID)
    finally:
        await conn.close()
