"""A worker that starts while Redis is down: it boots, tells the truth, and recovers by itself."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from service.app import create_app
from tests.helpers import kas_headers, shell_headers
from tests.topology.redis_servers import Servers, free_port, require_binaries

INTERNAL = "/api/v4/internal"


async def test_a_worker_started_while_redis_is_down_answers_false_and_503_then_recovers(
    aiohttp_client, settings, secrets, db
):
    require_binaries()
    port = free_port()
    client = await aiohttp_client(
        create_app(settings.with_overrides(redis_url=f"redis://127.0.0.1:{port}/0"), secrets)
    )

    async def pre_receive() -> bool:
        async with client.post(f"{INTERNAL}/pre_receive", json={"gl_repository": "project-1"},
                               headers=shell_headers()) as resp:
            assert resp.status == 200
            return bool((await resp.json())["reference_counter_increased"])

    assert await pre_receive() is False  # Gitaly refuses the push: the counter could not be raised
    async with client.post(f"{INTERNAL}/kubernetes/usage_metrics", json={"counters": {"gitops_sync": 1}},
                           headers=kas_headers()) as resp:
        assert resp.status == 503 and resp.headers["Retry-After"] == "1"  # kas sends it again later
    async with client.get("/-/readiness") as resp:
        assert resp.status == 503
    async with client.get(f"{INTERNAL}/check", headers=shell_headers()) as resp:
        assert resp.status == 200 and (await resp.json())["redis"] is False

    servers = Servers(Path(tempfile.mkdtemp(prefix="gia-redis-late-")))
    try:
        await asyncio.to_thread(servers.start, port)
        deadline = time.monotonic() + 10
        while not await pre_receive():
            assert time.monotonic() < deadline, "the worker never reconnected"
            await asyncio.sleep(0.1)
        async with client.get("/-/readiness") as resp:
            assert resp.status == 200, await resp.text()
    finally:
        servers.stop_all()


async def test_readiness_says_why_only_to_the_monitoring_allow_list(aiohttp_client, settings, secrets, db):
    """The reasons name internal hosts and ports: the allow-list gets them, others only the verdict."""
    port = free_port()
    down = settings.with_overrides(redis_url=f"redis://127.0.0.1:{port}/0")
    for whitelist, detailed in ((("127.0.0.0/8",), True), (("192.0.2.0/24",), False)):
        client = await aiohttp_client(create_app(down.with_overrides(monitoring_ip_whitelist=whitelist), secrets))
        async with client.get("/-/readiness") as resp:
            body = await resp.json()
        assert resp.status == 503 and body["redis_check"][0]["status"] == "failed"
        assert body["db_check"] == [{"status": "ok"}]
        assert (f"127.0.0.1:{port}" in body["redis_check"][0].get("message", "")) is detailed, body
