"""The service on a real 3-master Redis Cluster: counters, notices, kas metrics, rate limits, readiness."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from redis.asyncio.cluster import RedisCluster

from service.app import create_app
from tests.factories import make_project, make_user, set_application_settings
from tests.helpers import kas_headers, shell_headers
from tests.topology.redis_servers import Cluster, cli, free_port, wait_until

INTERNAL = "/api/v4/internal"
USAGE = f"{INTERNAL}/kubernetes/usage_metrics"


async def start_service(aiohttp_client, settings, secrets, url):  # type: ignore[no-untyped-def]
    return await aiohttp_client(create_app(settings.with_overrides(redis_url=url), secrets))


def flush(cluster: Cluster) -> None:
    for port in cluster.ports:
        cli(port, "FLUSHALL")


async def read(cluster: Cluster, *keys: str) -> list[str | None]:
    client = RedisCluster.from_url(f"redis://127.0.0.1:{cluster.ports[0]}", decode_responses=True)
    try:
        return [await client.get(key) for key in keys]
    finally:
        await client.aclose()


async def test_counters_exact_after_2000_concurrent_push_pairs(redis_cluster, aiohttp_client, settings, secrets, db):
    flush(redis_cluster)
    client = await start_service(aiohttp_client, settings, secrets, redis_cluster.url)
    repositories = [f"project-{n}" for n in range(1, 41)]  # spread over the three masters

    async def push(n: int) -> tuple[bool, bool]:
        body = {"gl_repository": repositories[n % 40]}
        pre = await (await client.post(f"{INTERNAL}/pre_receive", json=body, headers=shell_headers())).json()
        await asyncio.sleep(0)
        post_body = {**body, "identifier": "user-1", "changes": ""}
        post = await (await client.post(f"{INTERNAL}/post_receive", json=post_body, headers=shell_headers())).json()
        return pre["reference_counter_increased"], post["reference_counter_decreased"]

    results = await asyncio.gather(*(push(n) for n in range(2000)))
    assert results == [(True, True)] * 2000
    counters = await read(redis_cluster, *(f"git-receive-pack-reference-counter:{{{r}}}" for r in repositories))
    assert counters == ["0"] * 40


async def test_project_moved_notice_is_delivered(redis_cluster, aiohttp_client, settings, secrets, db):
    """/allowed stores the notice, post_receive takes it with the counter: one slot, one script."""
    flush(redis_cluster)
    client = await start_service(aiohttp_client, settings, secrets, redis_cluster.url)
    user = await make_user(db)
    project = await make_project(db, owner=user, path="new-name")
    await db.execute(
        "INSERT INTO redirect_routes (source_type, source_id, path) VALUES ('Project', $1, $2)",
        project["id"],
        f"{user['username']}/old-name",
    )
    body = {"action": "git-receive-pack", "changes": "_any", "protocol": "ssh", "user_id": user["id"],
            "project": f"{user['username']}/old-name.git"}
    resp = await client.post(f"{INTERNAL}/allowed", json=body, headers=shell_headers())
    assert resp.status == 200, await resp.text()
    gl_repository = f"project-{project['id']}"
    await client.post(f"{INTERNAL}/pre_receive", json={"gl_repository": gl_repository}, headers=shell_headers())
    post = {"gl_repository": gl_repository, "identifier": f"user-{user['id']}", "changes": ""}
    answer = await (await client.post(f"{INTERNAL}/post_receive", json=post, headers=shell_headers())).json()
    assert answer["reference_counter_decreased"] is True
    moved = [m["message"] for m in answer["messages"] if "was moved to" in m["message"]]
    assert moved and f"was moved to '{project['full_path']}'" in moved[0]


async def test_rate_limiter_limits(redis_cluster, aiohttp_client, settings, secrets, db):
    flush(redis_cluster)
    client = await start_service(aiohttp_client, settings, secrets, redis_cluster.url)
    user = await make_user(db)
    project = await make_project(db, owner=user)
    await set_application_settings(db, gitlab_shell_operation_limit=3)
    body = {"action": "git-upload-pack", "changes": "_any", "protocol": "ssh", "project": project["full_path"],
            "user_id": user["id"]}
    statuses = [(await client.post(f"{INTERNAL}/allowed", json=body, headers=shell_headers())).status for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]


def usage_body(n: int) -> dict[str, object]:
    return {
        "counters": {"k8s_api_proxy_request": n, "gitops_sync": 1},
        "unique_counters": {"k8s_api_proxy_requests_unique_users_via_user_access": [n % 25]},
    }


async def test_usage_metrics_exact_and_read_back(redis_cluster, aiohttp_client, settings, secrets, db):
    flush(redis_cluster)
    client = await start_service(aiohttp_client, settings, secrets, redis_cluster.url)
    statuses = await asyncio.gather(
        *((await_status(client.post(USAGE, json=usage_body(n), headers=kas_headers()))) for n in range(1, 201))
    )
    assert statuses == [204] * 200
    from tests.factories import make_personal_access_token

    admin = await make_user(db, admin=True)
    token = await make_personal_access_token(db, admin)
    resp = await client.get("/api/v4/usage_data/kubernetes_agents", headers={"PRIVATE-TOKEN": token})
    assert resp.status == 200
    body = await resp.json()
    assert body["counters"]["k8s_api_proxy_request"] == sum(range(1, 201))
    assert body["counters"]["gitops_sync"] == 200
    week = datetime.now(UTC).strftime("%G-%V")
    assert body["unique_counters"]["k8s_api_proxy_requests_unique_users_via_user_access"]["weekly"][week] == 25


async def await_status(request) -> int:  # type: ignore[no-untyped-def]
    async with request as resp:
        return resp.status


async def test_readiness(redis_cluster, aiohttp_client, settings, secrets, db):
    """Ready through redis+cluster://; a cluster node configured as a standalone server is not."""
    client = await start_service(aiohttp_client, settings, secrets, redis_cluster.url)
    resp = await client.get("/-/readiness")
    assert resp.status == 200, await resp.text()
    wrong = await start_service(aiohttp_client, settings, secrets, f"redis://127.0.0.1:{redis_cluster.ports[0]}/0")
    resp = await wrong.get("/-/readiness")
    assert resp.status == 503
    assert "cluster node" in (await resp.json())["redis_check"][0]["message"]


async def test_a_primary_that_left_the_slot_map_is_disconnected(redis_cluster, aiohttp_client, settings, secrets, db):
    """A slot moves to a new primary and back (a reshard): after the slot map is read again, the
    service's connections to the server that no longer serves any slot are closed."""
    flush(redis_cluster)
    client = await start_service(aiohttp_client, settings, secrets, redis_cluster.url)
    gl_repository = "project-424242"
    slot = int(cli(redis_cluster.ports[0], "CLUSTER", "KEYSLOT", gl_repository))
    owner = next(p for p in redis_cluster.ports if slot_owned(p, slot))
    extra = free_port(bus=True)
    redis_cluster.servers.start(
        extra, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000"
    )
    ids = {port: cli(port, "CLUSTER", "MYID") for port in [*redis_cluster.ports, extra]}
    cli(extra, "CLUSTER", "MEET", "127.0.0.1", str(owner))
    wait_until(lambda: all(ids[extra] in cli(p, "CLUSTER", "NODES") for p in redis_cluster.ports), 20, "the new node")

    def move(source: int, target: int) -> None:  # the empty slot: no keys to MIGRATE
        cli(target, "CLUSTER", "SETSLOT", str(slot), "IMPORTING", ids[source])
        cli(source, "CLUSTER", "SETSLOT", str(slot), "MIGRATING", ids[target])
        for port in [target, source, *(p for p in ids if p not in (source, target))]:
            cli(port, "CLUSTER", "SETSLOT", str(slot), "NODE", ids[target])
        wait_until(lambda: all(slot_owned(target, slot) and f"{slot}" in cli(p, "CLUSTER", "NODES") for p in ids),
                   20, "the slot's move")

    async def push() -> None:
        body = {"gl_repository": gl_repository}
        pre = await (await client.post(f"{INTERNAL}/pre_receive", json=body, headers=shell_headers())).json()
        post = await (await client.post(f"{INTERNAL}/post_receive", json={**body, "identifier": "user-1", "changes": ""},
                                        headers=shell_headers())).json()
        assert (pre["reference_counter_increased"], post.get("reference_counter_decreased")) == (True, True), post

    def clients_of(port: int) -> int:
        """Clients connected besides this redis-cli (and the replication link: a primary that loses
        its last slot becomes a replica of the node that took it)."""
        return len(cli(port, "CLIENT", "LIST", "TYPE", "normal").splitlines()) - 1

    try:
        await push()
        move(owner, extra)
        for _ in range(20):  # MOVED, answered through redis-py; the service then reads the new map
            await push()
            await asyncio.sleep(0.05)
        assert clients_of(extra) >= 1  # the service talks to the new primary directly
        move(extra, owner)
        for _ in range(20):
            await push()
            await asyncio.sleep(0.05)
        # closed once replies in flight had time to arrive (the store's timeout, 5 s)
        await asyncio.to_thread(wait_until, lambda: clients_of(extra) == 0, 20, "the old primary's connections to close")
        await push()
        assert await read(redis_cluster, f"git-receive-pack-reference-counter:{{{gl_repository}}}") == ["0"]
    finally:
        for port in redis_cluster.ports:
            cli(port, "CLUSTER", "FORGET", ids[extra])
        redis_cluster.servers.stop(extra)


async def test_usage_metrics_503_while_its_master_is_down_then_exact_on_retry(
    redis_cluster, aiohttp_client, settings, secrets, db
):
    """Last in this module: it restarts a master (empty, as these servers keep no data)."""
    flush(redis_cluster)
    client = await start_service(aiohttp_client, settings, secrets, redis_cluster.url)
    slot = int(cli(redis_cluster.ports[0], "CLUSTER", "KEYSLOT", "{hll_counters}"))
    owner = next(p for p in redis_cluster.ports if slot_owned(p, slot))
    redis_cluster.servers.stop(owner)
    try:
        resp = await client.post(USAGE, json=usage_body(7), headers=kas_headers())
        assert resp.status == 503
        assert resp.headers.get("Retry-After")
    finally:
        redis_cluster.servers.start(
            owner, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000"
        )
    wait_until(lambda: all("cluster_state:ok" in cli(p, "CLUSTER", "INFO") for p in redis_cluster.ports), 20, "cluster ok")
    for _ in range(50):  # kas retries until it gets an answer
        resp = await client.post(USAGE, json=usage_body(7), headers=kas_headers())
        if resp.status == 204:
            break
        assert resp.status == 503
        await asyncio.sleep(0.1)
    assert resp.status == 204
    assert await read(redis_cluster, "{hll_counters}_USAGE_KUBERNETES_AGENT_K8S_API_PROXY_REQUEST") == ["7"]


def slot_owned(port: int, slot: int) -> bool:
    for line in cli(port, "CLUSTER", "NODES").splitlines():
        fields = line.split()
        if "myself" in fields[2]:
            for ranges in fields[8:]:
                low, _, high = ranges.partition("-")
                if low.isdigit() and int(low) <= slot <= int(high or low):
                    return True
    return False
