"""The service behind Redis Sentinel (one master, one replica, three sentinels), through a failover."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import signal
import time

from redis.asyncio import Redis

from service.app import create_app
from tests.helpers import kas_headers, shell_headers
from tests.topology.redis_servers import SentinelGroup, cli, wait_until

INTERNAL = "/api/v4/internal"
USAGE = f"{INTERNAL}/kubernetes/usage_metrics"


async def start_service(aiohttp_client, settings, secrets, url):  # type: ignore[no-untyped-def]
    return await aiohttp_client(create_app(settings.with_overrides(redis_url=url), secrets))


async def test_counters_and_readiness_through_sentinel(sentinel_group, aiohttp_client, settings, secrets, db):
    client = await start_service(aiohttp_client, settings, secrets, sentinel_group.url)
    assert (await client.get("/-/readiness")).status == 200

    async def push(n: int) -> tuple[bool, bool]:
        body = {"gl_repository": f"project-{n % 20}"}
        pre = await (await client.post(f"{INTERNAL}/pre_receive", json=body, headers=shell_headers())).json()
        post_body = {**body, "identifier": "user-1", "changes": ""}
        post = await (await client.post(f"{INTERNAL}/post_receive", json=post_body, headers=shell_headers())).json()
        return pre["reference_counter_increased"], post["reference_counter_decreased"]

    assert await asyncio.gather(*(push(n) for n in range(400))) == [(True, True)] * 400
    master = Redis(port=sentinel_group.master(), decode_responses=True)
    try:
        assert {await master.get(f"git-receive-pack-reference-counter:{{project-{n}}}") for n in range(20)} == {"0"}
    finally:
        await master.aclose()


async def test_readiness_refuses_a_sentinel_port_and_a_replica(sentinel_group, aiohttp_client, settings, secrets, db):
    """Both answer PING; neither can take the hot paths' writes."""
    for port, kind in ((sentinel_group.sentinel_ports[0], "sentinel"), (sentinel_group.replica_port, "slave")):
        client = await start_service(aiohttp_client, settings, secrets, f"redis://127.0.0.1:{port}/0")
        resp = await client.get("/-/readiness")
        assert resp.status == 503
        assert f"is a {kind}" in (await resp.json())["redis_check"][0]["message"]
        pre = await client.post(f"{INTERNAL}/pre_receive", json={"gl_repository": "project-1"}, headers=shell_headers())
        assert (await pre.json()) == {"reference_counter_increased": False}


async def test_failover_under_load_loses_no_increase_answered_true(
    sentinel_group: SentinelGroup, aiohttp_client, settings, secrets, db
):
    """SENTINEL FAILOVER while pre_receive runs: every increase answered true is on the new master.

    Replication is asynchronous: without WAIT the promoted replica can lack the last writes, and
    the old master accepts writes until Sentinel demotes it. The store WAITs for the replica.
    """
    client = await start_service(aiohttp_client, settings, secrets, sentinel_group.url)
    old_master = sentinel_group.master()
    numbers = itertools.count(1)
    answers: dict[str, bool] = {}
    stop = asyncio.Event()

    async def caller() -> None:
        while not stop.is_set():
            gl_repository = f"project-{next(numbers)}"
            resp = await client.post(f"{INTERNAL}/pre_receive", json={"gl_repository": gl_repository}, headers=shell_headers())
            assert resp.status == 200
            answers[gl_repository] = (await resp.json())["reference_counter_increased"]

    callers = [asyncio.create_task(caller()) for _ in range(32)]
    try:
        await asyncio.sleep(0.5)
        before = sum(answers.values())
        assert cli(sentinel_group.sentinel_ports[0], "SENTINEL", "FAILOVER", sentinel_group.name) == "OK"
        await asyncio.to_thread(wait_until, lambda: sentinel_group.master() != old_master, 20, "the failover")
        started = time.monotonic()
        # load goes on until increases are answered true again, on the new master
        while sum(answers.values()) < before + 200 and time.monotonic() - started < 20:
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.gather(*callers)
    trues = [repo for repo, increased in answers.items() if increased]
    assert before > 0 and len(trues) >= before + 200, (before, len(trues))
    new_master = Redis(port=sentinel_group.master(), decode_responses=True)
    try:
        values = await new_master.mget([f"git-receive-pack-reference-counter:{{{repo}}}" for repo in trues])
    finally:
        await new_master.aclose()
    lost = [repo for repo, value in zip(trues, values) if value != "1"]
    assert lost == [], f"{len(lost)} of {len(trues)} increases answered true are missing after the failover"


async def test_a_replica_that_cannot_acknowledge_leaves_no_write_behind(
    sentinel_group: SentinelGroup, aiohttp_client, settings, secrets, db, caplog
):
    """The replica is stopped (SIGSTOP): WAIT answers 0, so increases answer false and kas metrics 503.

    Those writes ran on the master; the service takes them back. A refused push leaves the counter
    as it was, and kas's retries, once the replica is back, leave the totals exact. Meanwhile the
    commands that need no replica (post_receive's decrease) are not held up behind the WAITs.
    """
    caplog.set_level(logging.INFO, "gitlab_internal_api.redis")
    client = await aiohttp_client(
        create_app(settings.with_overrides(redis_url=sentinel_group.url, redis_wait_timeout=2.0), secrets)
    )
    master = Redis(port=sentinel_group.master_port, decode_responses=True)

    async def pre_receive(gl_repository: str) -> bool:
        body = {"gl_repository": gl_repository}
        async with client.post(f"{INTERNAL}/pre_receive", json=body, headers=shell_headers()) as resp:
            return bool((await resp.json())["reference_counter_increased"])

    async def post_receive(gl_repository: str) -> bool:
        body = {"gl_repository": gl_repository, "identifier": "user-1", "changes": ""}
        async with client.post(f"{INTERNAL}/post_receive", json=body, headers=shell_headers()) as resp:
            return bool((await resp.json())["reference_counter_decreased"])

    async def usage(n: int) -> int:
        body = {"counters": {"k8s_api_proxy_request": n, "gitops_sync": 1},
                "unique_counters": {"k8s_api_proxy_requests_unique_users_via_user_access": [n]}}
        async with client.post(USAGE, json=body, headers=kas_headers()) as resp:
            return resp.status

    counter = "git-receive-pack-reference-counter:{project-7}"
    replica = sentinel_group.servers.processes[sentinel_group.replica_port]
    try:
        assert await pre_receive("project-7") is True  # a push in flight
        assert await usage(5) == 204
        connections = int((await master.info("stats"))["total_connections_received"])
        os.kill(replica.pid, signal.SIGSTOP)
        try:
            refused = asyncio.create_task(pre_receive("project-7"))
            await asyncio.sleep(0.2)
            started = time.monotonic()
            assert await post_receive("project-8") is True
            assert time.monotonic() - started < 1.0 and not refused.done()  # not behind the 2 s WAIT
            assert await refused is False
            assert await master.get(counter) == "1"  # as before the refused push
            assert await asyncio.gather(usage(7), usage(8), usage(9)) == [503] * 3
            # a WAIT answered short is no reason to reconnect: at most the durable connection is new
            assert int((await master.info("stats"))["total_connections_received"]) - connections <= 1
        finally:
            os.kill(replica.pid, signal.SIGCONT)
        for n in (7, 8, 9):  # kas retries each until it is answered
            deadline = time.monotonic() + 30
            while (status := await usage(n)) != 204:
                assert status == 503 and time.monotonic() < deadline
                await asyncio.sleep(0.2)
        assert await master.get("{hll_counters}_USAGE_KUBERNETES_AGENT_K8S_API_PROXY_REQUEST") == str(5 + 7 + 8 + 9)
        assert await master.get("{hll_counters}_USAGE_KUBERNETES_AGENT_GITOPS_SYNC") == "4"
        assert await pre_receive("project-7") is True
        assert await master.get(counter) == "2"
        undone = [r for r in caplog.records if "durable writes are undone" in r.getMessage()]
        again = [r for r in caplog.records if "replicas acknowledge again" in r.getMessage()]
        assert len(undone) == 1 and len(again) == 1
    finally:
        await master.aclose()
