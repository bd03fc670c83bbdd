"""A scratch database for the database benchmarks (bench/job_insert.py, bench/job_fetch.py).

Created on the server behind an admin URL, migrated as the service migrates, dropped afterwards
(with its connections) whatever happened in between.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service.db.migrate import migrate  # noqa: E402


@asynccontextmanager
async def migrated_scratch_database(admin_url: str, prefix: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to a new, migrated database named `prefix_<random>`."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(admin_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    try:
        await migrate(url)
        conn = await asyncpg.connect(url)
        try:
            yield conn
        finally:
            await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()
