"""Test fixtures: a real PostgreSQL and a real Redis, a fresh database per run, clean tables per test.

TEST_DATABASE_URL / TEST_REDIS_URL point at servers to use (a database named gia_test_<random> is
created next to the given one and dropped at the end; the given Redis database is flushed before
each test). Without them, an embedded PostgreSQL and Redis are started in a temporary directory.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from redis.asyncio import Redis

from service.app import create_app
from service.config import ROOT, Settings, load_settings
from service.db.migrate import migrate
from service.secrets import Secrets

warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")

# Commands the tests start (serve, create-admin) resolve secret files and .state/ against this
# root: a throw-away one, never the developer's checkout or home directory.
os.environ["GITLAB_INTERNAL_API_ROOT"] = tempfile.mkdtemp(prefix="gia-test-root-")
atexit.register(shutil.rmtree, os.environ["GITLAB_INTERNAL_API_ROOT"], ignore_errors=True)  # each run left one

SHELL_SECRET = b"a3f1c2e4b5d6978812ab34cd56ef7890"
KAS_SECRET = bytes(range(32))
DB_KEY_BASE = b"0123456789abcdef" * 8


@dataclass(frozen=True)
class Backends:
    database_url: str  # direct: migrations, factories, per-test cleanup
    redis_url: str
    # what the application connects to: the same server, or PgBouncer in front of it
    app_database_url: str = ""
    prepared_statements: bool = True


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


async def _snapshot_seed_data(url: str) -> None:
    """Keep a copy of what migrations inserted (plans, settings...) so each test starts from it."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE SCHEMA IF NOT EXISTS test_seed")
        tables = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations'"
        )
        for record in tables:
            name = record["tablename"]
            if await conn.fetchval(f'SELECT EXISTS (SELECT 1 FROM public."{name}")'):
                await conn.execute(f'CREATE TABLE test_seed."{name}" AS SELECT * FROM public."{name}"')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def backends() -> Iterator[Backends]:
    temp = Path(tempfile.mkdtemp(prefix="gia-test-"))
    started: list[Any] = []
    admin_url = os.environ.get("TEST_DATABASE_URL")
    database_name = "gia_test_" + uuid.uuid4().hex[:10]
    pgbouncer_url = ""
    try:
        if os.environ.get("GIA_TEST_PGBOUNCER"):
            # The whole suite through PgBouncer in transaction mode (CI runs it so too).
            from tests.topology.postgres_servers import PgBouncer, PostgresServer, require_pgbouncer

            require_pgbouncer()
            primary = PostgresServer.primary()
            started.append(primary.destroy)
            bouncer = PgBouncer(primary.port)
            started.append(bouncer.stop)
            admin_url = primary.url()
            pgbouncer_url = bouncer.url(database_name)
        if admin_url:

            async def create() -> None:
                conn = await asyncpg.connect(admin_url)
                try:
                    await conn.execute(f'CREATE DATABASE "{database_name}"')
                finally:
                    await conn.close()

            asyncio.run(create())
            database_url = _with_database(admin_url, database_name)
        else:
            from service.embedded import start_postgres

            server, database_url = start_postgres(temp / "state", database=database_name, cleanup_mode="delete")
            started.append(server.cleanup)
            # a throw-away server: durability buys nothing here
            server.psql(
                "ALTER SYSTEM SET fsync = off; ALTER SYSTEM SET synchronous_commit = off;"
                " ALTER SYSTEM SET full_page_writes = off; SELECT pg_reload_conf();"
            )
        redis_url = os.environ.get("TEST_REDIS_URL")
        if not redis_url:
            from service.embedded import start_redis

            redis_server, redis_url = start_redis(temp / "state", persist=False)
            started.append(redis_server.stop)
        asyncio.run(migrate(database_url))
        asyncio.run(_snapshot_seed_data(database_url))
        if pgbouncer_url:
            yield Backends(database_url, redis_url, app_database_url=pgbouncer_url, prepared_statements=False)
        else:
            yield Backends(database_url, redis_url, app_database_url=database_url)
    finally:
        if admin_url:

            async def drop() -> None:
                conn = await asyncpg.connect(admin_url)
                try:
                    await conn.execute(f'DROP DATABASE IF EXISTS "{database_name}" WITH (FORCE)')
                finally:
                    await conn.close()

            asyncio.run(drop())
        for stop in reversed(started):
            stop()
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="session")
def secret_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("secrets")
    files = {
        "shell": directory / ".gitlab_shell_secret",
        "kas": directory / ".gitlab_kas_secret",
        "db_key_base": directory / ".gitlab_db_key_base",
    }
    import base64

    files["shell"].write_text(SHELL_SECRET.decode() + "\n")
    files["kas"].write_text(base64.b64encode(KAS_SECRET).decode() + "\n")
    files["db_key_base"].write_text(DB_KEY_BASE.decode() + "\n")
    return files


@pytest.fixture
def settings(backends: Backends, secret_files: dict[str, Path]) -> Settings:
    return load_settings(ROOT / "config" / "test.toml", environ={}).with_overrides(
        database_url=backends.app_database_url,
        database_prepared_statements=backends.prepared_statements,
        redis_url=backends.redis_url,
        shell_secret_file=secret_files["shell"],
        kas_secret_file=secret_files["kas"],
        db_key_base_file=secret_files["db_key_base"],
    )


# DELETE rather than TRUNCATE: the tables hold a handful of rows, and TRUNCATE's new files for
# every table and index cost ~0.3 s per test. Foreign keys are not checked while emptying
# (session_replication_role = replica), then the rows migrations seeded are put back.
_EMPTY_AND_RESEED = """
DO $$
DECLARE
    item record;
BEGIN
    SET LOCAL session_replication_role = replica;
    FOR item IN SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations' LOOP
        EXECUTE format('DELETE FROM public.%I', item.tablename);
    END LOOP;
    FOR item IN SELECT tablename FROM pg_tables WHERE schemaname = 'test_seed' LOOP
        EXECUTE format('INSERT INTO public.%I SELECT * FROM test_seed.%I', item.tablename, item.tablename);
    END LOOP;
END $$;
"""


@pytest.fixture
async def db(backends: Backends) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the test database, after every table was emptied and reseeded."""
    conn = await asyncpg.connect(backends.database_url)
    await conn.execute(_EMPTY_AND_RESEED)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def redis(backends: Backends) -> AsyncIterator[Redis]:
    client = Redis.from_url(backends.redis_url, decode_responses=True)
    await client.flushdb()
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def secrets() -> Secrets:
    return Secrets(shell=SHELL_SECRET, kas=KAS_SECRET, db_key_base=DB_KEY_BASE)


@pytest.fixture
async def app(settings: Settings, secrets: Secrets, db: asyncpg.Connection, redis: Redis):  # type: ignore[no-untyped-def]
    return create_app(settings, secrets)


@pytest.fixture
async def client(aiohttp_client, app):  # type: ignore[no-untyped-def]
    return await aiohttp_client(app)
