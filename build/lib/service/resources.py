"""One cleanup context per resource: the PostgreSQL pool and the Redis client."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import asyncpg
from aiohttp import web
from redis.asyncio import Redis

from service import keys
from service.redis_pipe import PipelinedRedis

log = logging.getLogger("gitlab_internal_api")


async def reset_if_dirty(conn: asyncpg.Connection) -> None:
    """Pool release hook, replacing asyncpg's default reset query on every release.

    The default runs `SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL` on each
    release: a second round trip for every request. Request code never changes session state
    (no SET, LISTEN, advisory locks or open cursors: migrations use their own connection), so the
    only state a released connection can carry is an unfinished transaction after an error.
    """
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")
        await conn.execute(conn.get_reset_query())


async def pg_pool_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[keys.SETTINGS]
    async with asyncpg.create_pool(
        settings.database_url,
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        command_timeout=settings.command_timeout,
        reset=reset_if_dirty,
        server_settings={
            "application_name": "gitlab-internal-api",
            # Plan each prepared statement once. Left to "auto", PostgreSQL keeps re-planning the
            # batched array queries on every execution (custom plans estimated cheaper): measured
            # 1.9 ms per execution against 0.5 ms with the generic plan.
            "plan_cache_mode": "force_generic_plan",
        },
    ) as pool:
        app[keys.DB_POOL] = pool
        yield


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    client = Redis.from_url(app[keys.SETTINGS].redis_url, decode_responses=True)
    try:
        await client.ping()  # fail fast at start-up
        app[keys.REDIS] = client
        yield
    finally:
        await client.aclose()


async def redis_pipe_ctx(app: web.Application) -> AsyncIterator[None]:
    """The auto-pipelining connection of the hot paths (service/redis_pipe.py)."""
    pipe = PipelinedRedis(app[keys.SETTINGS].redis_url)
    try:
        await pipe.execute("PING")  # fail fast at start-up
        app[keys.REDIS_PIPE] = pipe
        yield
    finally:
        await pipe.close()
