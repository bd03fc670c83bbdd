"""One cleanup context per resource: the PostgreSQL pool, the Redis client, the webhook HTTP client."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import asyncpg
from aiohttp import web

from service import app_keys
from service.db.migrate import pending_migrations
from service.db.pool import create_pool, describe_outage, is_database_outage
from service.redis_pipe import RedisError
from service.redis_store import create_store
from service.unavailable import BackendUnavailable
from service.webhook_client import WebhookClient

log = logging.getLogger("gitlab_internal_api")


class MissingMigrations(BackendUnavailable):
    """The database answers, without the migrations this code needs: every query could fail."""

    def __init__(self, pending: list[str]) -> None:
        super().__init__(
            "database", f"the database lacks migrations {', '.join(pending)}: run `gitlab-internal-api migrate`"
        )


async def pg_pool_ctx(app: web.Application) -> AsyncIterator[None]:
    """The PostgreSQL pool (service/db/pool.py).

    A database that is down at start-up does not stop the worker: requests answer 503 until it is
    back. A database that answers without this code's migrations does (the pool's first
    connections check them); when it was down at start-up, the check runs on the first connection
    it accepts, and requests answer 503 until the migrations are there.
    """
    outages = app[app_keys.OUTAGES]
    settings = app[app_keys.SETTINGS]
    schema_checked = False

    async def on_connect(conn: asyncpg.Connection) -> None:
        nonlocal schema_checked
        if not schema_checked:
            pending = await pending_migrations(conn)
            if pending:
                missing = MissingMigrations(pending)
                outages.down("database", missing.reason)
                raise missing
            schema_checked = True
        outages.up("database")

    pool = create_pool(settings, on_connect)
    try:
        await pool
    except Exception as exc:
        if not is_database_outage(exc):
            raise  # MissingMigrations among them: the worker does not start
        outages.down("database", describe_outage(exc))
        pool = await create_pool(settings, on_connect, warm=False)
    app[app_keys.DB_POOL] = pool
    try:
        yield
    finally:
        await pool.close()


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    """The one Redis store (service/redis_store.py): standalone, Sentinel or Cluster, by the URL."""
    settings = app[app_keys.SETTINGS]
    store = create_store(
        settings.redis_url,
        sentinel_password=settings.redis_sentinel_password or None,
        wait_replicas=settings.redis_wait_replicas,
        wait_timeout=settings.redis_wait_timeout,
    )
    try:
        try:
            await store.start()
        except RedisError as exc:
            # As with the database: a worker that starts (or is replaced) while Redis is down serves
            # what does not need Redis, answers counters false and kas metrics 503, and its
            # /-/readiness says why, instead of failing to boot (which would make gunicorn's
            # arbiter stop every other worker too). The store connects on first use.
            store.record_failure(exc)
        app[app_keys.REDIS] = store
        yield
    finally:
        await store.close()


async def webhook_client_ctx(app: web.Application) -> AsyncIterator[None]:
    """The HTTP client of the admin API's test deliveries (the job worker has its own)."""
    async with WebhookClient() as client:
        app[app_keys.WEBHOOK_CLIENT] = client
        yield
