"""Load-balancer probes: liveness (the process answers) and readiness (PostgreSQL and Redis answer)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from service import keys
from service.errors import json_response

routes = web.RouteTableDef()


@routes.get("/-/liveness")
async def liveness(request: web.Request) -> web.Response:
    """GET /-/liveness: GitLab's probe shape."""
    return json_response({"status": "ok"})


@routes.get("/-/readiness")
async def readiness(request: web.Request) -> web.Response:
    """GET /-/readiness: 200 when both backends answer within a second, else 503 with the failing one."""

    async def database() -> None:
        async with request.app[keys.DB_POOL].acquire() as conn:
            await conn.fetchval("SELECT 1")

    async def redis() -> None:
        await request.app[keys.REDIS].ping()

    checks = {"db_check": database, "redis_check": redis}
    results = {}
    for name, probe in checks.items():
        try:
            await asyncio.wait_for(probe(), timeout=1.0)
            results[name] = [{"status": "ok"}]
        except Exception as exc:  # any failure makes the worker unready
            results[name] = [{"status": "failed", "message": type(exc).__name__}]
    healthy = all(result[0]["status"] == "ok" for result in results.values())
    return json_response({"status": "ok" if healthy else "failed", **results}, 200 if healthy else 503)
