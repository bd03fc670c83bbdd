"""Load-balancer probes: liveness (the process answers) and readiness (the backends can serve requests)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

from service import app_keys
from service.domain.readiness import database_not_ready
from service.errors import json_response

routes = web.RouteTableDef()

PROBE_TIMEOUT = 1.0  # seconds, each probe


class NotReady(Exception):
    pass


@routes.get("/-/liveness", allow_head=True)
async def liveness(request: web.Request) -> web.Response:
    """GET /-/liveness: GitLab's probe shape."""
    return json_response({"status": "ok"})


@routes.get("/-/readiness", allow_head=True)
async def readiness(request: web.Request) -> web.Response:
    """GET /-/readiness: 200 when both backends can serve the hot paths within a second, else 503.

    Answering is not enough. PostgreSQL must be a writable primary (a standby left behind by a
    failover answers SELECT 1 too); Redis must take writes on every primary the service routes to
    (a Sentinel, a replica or a cluster node reached as a standalone server all answer PING).
    """

    async def database() -> None:
        reason = await database_not_ready(request.app[app_keys.DB_POOL])
        if reason is not None:
            raise NotReady(reason)

    async def redis() -> None:
        reason = await request.app[app_keys.REDIS].ready()
        if reason is not None:
            raise NotReady(reason)

    checks: dict[str, Callable[[], Awaitable[None]]] = {"db_check": database, "redis_check": redis}
    results = {}
    for name, probe in checks.items():
        try:
            await asyncio.wait_for(probe(), timeout=PROBE_TIMEOUT)
            results[name] = [{"status": "ok"}]
        except NotReady as exc:
            results[name] = [{"status": "failed", "message": str(exc)}]
        except Exception as exc:  # any failure makes the worker unready
            results[name] = [{"status": "failed", "message": type(exc).__name__}]
    healthy = all(result[0]["status"] == "ok" for result in results.values())
    if not request.app[app_keys.METRICS_ACCESS].allows(request.remote, request.headers):
        # The reasons name internal hosts and ports: only for the monitoring allow-list (GitLab
        # restricts its probes to monitoring.ip_whitelist); everyone else sees which check failed.
        for result in results.values():
            result[0].pop("message", None)
    return json_response({"status": "ok" if healthy else "failed", **results}, 200 if healthy else 503)
