"""Migrations: ordered, each applied once, safe when several workers start at the same moment."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from service.db.migrate import migrate
from service.db.queries import MIGRATIONS_DIR, load_queries
from tests.conftest import _with_database


async def test_concurrent_migrations_apply_each_file_exactly_once(backends):
    name = "gia_migrate_" + uuid.uuid4().hex[:8]
    admin = await asyncpg.connect(backends.database_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = _with_database(backends.database_url, name)
    try:
        results = await asyncio.gather(*(migrate(url) for _ in range(4)))
        applied = [version for result in results for version in result]
        expected = sorted(path.stem for path in MIGRATIONS_DIR.glob("*.sql"))
        assert sorted(applied) == expected  # every file once, across all four runners
        assert await migrate(url) == []
        conn = await asyncpg.connect(url)
        try:
            assert await conn.fetchval("SELECT count(*) FROM schema_migrations") == len(expected)
        finally:
            await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


def test_every_named_query_is_one_statement_that_loads():
    queries = load_queries()
    assert "git_access_contexts" in queries and "post_receive_contexts" in queries
    for name, query in queries.items():
        assert query.text.strip(), name


async def test_a_worker_refuses_to_start_on_a_database_without_the_migrations(backends, settings, secrets):
    from aiohttp import web

    from service.app import create_app
    from service.unavailable import BackendUnavailable

    name = "gia_unmigrated_" + uuid.uuid4().hex[:8]
    admin = await asyncpg.connect(backends.database_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        app = create_app(settings.with_overrides(database_url=_with_database(backends.database_url, name)), secrets)
        runner = web.AppRunner(app)
        with pytest.raises(BackendUnavailable, match=r"lacks migrations 0001_core, .*run `gitlab-internal-api migrate`"):
            await runner.setup()
        await runner.cleanup()
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()
