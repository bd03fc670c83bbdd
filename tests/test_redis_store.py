"""The Redis store's own rules on real servers: durable writes (WAIT) beside the shared connection,
their undo when no replica acknowledges, and single-flight topology discovery during an outage.

Sentinel and Cluster end to end: tests/topology/test_redis_*.py.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import date

import pytest

from service.domain import usage_metrics
from service.domain.reference_counter import ReferenceCounter, counter_key
from service.redis_store import REFRESH_BACKOFF, RedisUnavailable, create_store
from service.unavailable import BackendUnavailable

UNDONE = "durable writes are undone"


def undone_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "gitlab_internal_api.redis" and UNDONE in r.getMessage()]


async def connections_received(redis) -> int:  # type: ignore[no-untyped-def]
    return int((await redis.info("stats"))["total_connections_received"])


async def test_an_unacknowledged_durable_write_blocks_nothing_else_and_is_undone(backends, redis, caplog):
    """The test server has no replica: every WAIT 1 answers 0 once its timeout has passed."""
    caplog.set_level(logging.INFO, "gitlab_internal_api.redis")
    store = create_store(backends.redis_url, wait_replicas=1, wait_timeout=1.0)
    await store.start()
    counter = ReferenceCounter(store)
    try:
        await redis.set(counter_key("project-1"), 2)  # two pushes in flight
        await counter.decrease("project-2", None, None)
        before = await connections_received(redis)

        durable = asyncio.create_task(counter.increase("project-1"))
        await asyncio.sleep(0.05)  # its WAIT is on the server now
        started = time.monotonic()
        for _ in range(5):  # commands without WAIT are answered meanwhile, not after the WAIT
            assert (await counter.decrease("project-2", None, None)).decreased
        assert time.monotonic() - started < 0.5 and not durable.done()
        assert await durable is False
        assert await redis.get(counter_key("project-1")) == "2"  # the increase was taken back

        # Durable writes arriving while a WAIT is in flight wait for one more WAIT, not one each.
        started = time.monotonic()
        answers = []
        for _ in range(10):
            answers.append(asyncio.create_task(counter.increase("project-1")))
            await asyncio.sleep(0.1)
        assert await asyncio.gather(*answers) == [False] * 10
        assert time.monotonic() - started < 5  # 10 WAITs in turn would take 10 s
        assert await redis.get(counter_key("project-1")) == "2"
        assert await redis.get(counter_key("project-2")) is None  # below zero: deleted, as GitLab does

        # No reconnection for a WAIT answered short: one new connection, the durable writes' own.
        assert await connections_received(redis) - before == 1
        assert len(undone_lines(caplog)) == 1  # logged once, not per request
    finally:
        await store.close()


async def test_unacknowledged_usage_metrics_are_taken_back(backends, redis):
    store = create_store(backends.redis_url, wait_replicas=1, wait_timeout=0.2)
    await store.start()
    today = date(2026, 3, 4)
    update = usage_metrics.UsageUpdate(
        counters=(("gitops_sync", 3),), unique=(("agent_users_using_ci_tunnel", ("1", "2")),)
    )
    try:
        await redis.set(usage_metrics.COUNTER_KEYS["gitops_sync"], 10)
        with pytest.raises(BackendUnavailable):
            await usage_metrics.record_usage(store, update, today)
        assert await redis.get(usage_metrics.COUNTER_KEYS["gitops_sync"]) == "10"
        read = await usage_metrics.read_usage(store, today)
        assert read["counters"]["gitops_sync"] == 10
        # the ids stay counted: kas's retry adds them again, which changes nothing
        assert read["unique_counters"]["agent_users_using_ci_tunnel"]["weekly"]["2026-10"] == 2
    finally:
        await store.close()


async def test_totals_under_the_old_untagged_names_still_count(backends, redis):
    """Totals written before they moved into the {hll_counters} slot (or by a not-yet-upgraded worker)."""
    store = create_store(backends.redis_url)
    await store.start()
    today = date(2026, 3, 4)
    try:
        await redis.set("USAGE_KUBERNETES_AGENT_K8S_API_PROXY_REQUEST", 40)
        await usage_metrics.record_usage(store, usage_metrics.UsageUpdate(counters=(("k8s_api_proxy_request", 2),)), today)
        counters = (await usage_metrics.read_usage(store, today))["counters"]
        assert counters["k8s_api_proxy_request"] == 42
        assert counters["gitops_sync"] == 0
    finally:
        await store.close()


async def test_sentinel_discovery_is_single_flight_and_its_failure_fails_fast():
    """Sentinels that accept connections and never answer: each discovery waits out its timeout.

    Queued requests share one discovery, and for REFRESH_BACKOFF after it fails they are refused at
    once, instead of each asking the sentinels again for a full timeout in turn.
    """
    accepted = 0

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        await reader.read()  # until the client gives up
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    store = create_store(f"redis+sentinel://127.0.0.1:{port}/gitlab-redis/0", timeout=0.5)
    counter = ReferenceCounter(store)
    try:
        started = time.monotonic()
        with pytest.raises(RedisUnavailable):
            await store.start()
        one_discovery, per_discovery = time.monotonic() - started, accepted
        assert one_discovery >= 0.4 and per_discovery >= 1

        started = time.monotonic()  # within the back-off: refused without asking
        assert await asyncio.gather(*(counter.increase(f"project-{n}") for n in range(50))) == [False] * 50
        assert time.monotonic() - started < 0.3 and accepted == per_discovery

        await asyncio.sleep(REFRESH_BACKOFF + 0.1)
        started = time.monotonic()  # after it: one discovery, shared by all 50
        assert await asyncio.gather(*(counter.increase(f"project-{n}") for n in range(50))) == [False] * 50
        assert time.monotonic() - started < one_discovery * 3  # in turn: 50 discoveries
        assert accepted == 2 * per_discovery
    finally:
        await store.close()
        server.close()
        await server.wait_closed()
