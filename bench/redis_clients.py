"""Micro-benchmark: Redis clients on the hot paths' commands, 64 concurrent callers on one uvloop loop.

    .venv/bin/pip install -e '.[bench]'          # coredis, valkey-glide (benchmark only)
    .venv/bin/python bench/redis_clients.py [--ops 20000] [--rounds 5] [--no-cluster] [--only pipe,store]

Starts its own redis-server (standalone, and a 3-master cluster unless --no-cluster) on free
ports in a temporary directory and stops them by PID at the end. For each client and command it
runs `--ops` calls from 64 concurrent callers and records ops/s and CPU µs per op
(time.process_time: every thread of this process, so a client's background threads count too).
Rounds alternate between clients; the table shows the median of the rounds.

Commands (the hot paths' real shapes):
  counter   EVALSHA of the reference counter's INCR+EXPIRE script, 1 key (pre_receive); the
            "store + WAIT" row adds the WAIT 1 that Sentinel mode sends after each batch of them
  decrease  EVALSHA of the decrease script with 5 keys in one hash slot (post_receive)
  batch     INCRBY + PFADD + EXPIRE in one slot, atomically (usage_metrics: MULTI/EXEC for the
            libraries; the store runs its Lua script, as the service does)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import uvloop

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service.domain import reference_counter, usage_metrics  # noqa: E402
from service.redis_store import create_store  # noqa: E402

CONCURRENCY = 64
INCREASE = reference_counter.INCREASE.source
DECREASE = reference_counter.DECREASE_AND_TAKE_NOTICES.source
COUNTER_KEY = "bench-counter:{project-1}"
DECREASE_KEYS = [COUNTER_KEY, *[f"bench-notice-{n}:{{project-1}}" for n in range(4)]]
BATCH_KEYS = ("{hll_counters}_BENCH_TOTAL", "{hll_counters}_bench-2026-01")


# --- servers -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_cluster_port() -> int:
    """A free port below 55536 whose bus port (+10000) is free too, as cluster mode needs."""
    import random

    while True:
        port = random.randrange(20000, 45000)
        try:
            for candidate in (port, port + 10000):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port


def start_redis(directory: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
    directory.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(directory), *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process
        except OSError:
            time.sleep(0.02)
    process.kill()
    raise RuntimeError(f"redis-server on port {port} did not start")


def start_cluster(directory: Path) -> tuple[list[subprocess.Popen[bytes]], list[int]]:
    ports = [free_cluster_port() for _ in range(3)]
    processes = [
        start_redis(directory / str(port), port, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
        for port in ports
    ]
    subprocess.run(
        ["redis-cli", "--cluster", "create", *[f"127.0.0.1:{p}" for p in ports], "--cluster-yes"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        states = [
            subprocess.run(["redis-cli", "-p", str(p), "cluster", "info"], capture_output=True, text=True).stdout
            for p in ports
        ]
        if all("cluster_state:ok" in s for s in states):
            return processes, ports
        time.sleep(0.1)
    raise RuntimeError("the cluster did not converge")


# --- clients: each returns {command: callable} and a close function ------------------------------

Ops = dict[str, Callable[[], Awaitable[Any]]]


async def pipe_client(url: str) -> tuple[Ops, Callable[[], Awaitable[None]]]:
    from service.redis_pipe import PipelinedRedis

    pipe = PipelinedRedis(url)
    total, hll = BATCH_KEYS
    batch = [("MULTI",), ("INCRBY", total, 1), ("PFADD", hll, "42"), ("EXPIRE", hll, 3600), ("EXEC",)]
    return {
        "counter": lambda: pipe.evalsha(reference_counter.INCREASE, [COUNTER_KEY], [600]),
        "decrease": lambda: pipe.evalsha(reference_counter.DECREASE_AND_TAKE_NOTICES, DECREASE_KEYS),
        "batch": lambda: pipe.execute_many(batch),
    }, pipe.close


async def store_client(url: str, wait_replicas: int = 0) -> tuple[Ops, Callable[[], Awaitable[None]]]:
    store = create_store(url, wait_replicas=wait_replicas)
    await store.start()
    update = usage_metrics.UsageUpdate(counters=(("gitops_sync", 1),), unique=(("agent_users_using_ci_tunnel", ("42",)),))
    increase, decrease = reference_counter.INCREASE, reference_counter.DECREASE_AND_TAKE_NOTICES
    today = usage_metrics.date.today()
    return {
        "counter": lambda: store.run_script(increase, [COUNTER_KEY], [600], durable=True),
        "decrease": lambda: store.run_script(decrease, DECREASE_KEYS),
        "batch": lambda: usage_metrics.record_usage(store, update, today),
    }, store.close


async def redis_py_client(url: str, cluster: bool) -> tuple[Ops, Callable[[], Awaitable[None]]]:
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster

    client: Any = RedisCluster.from_url(url) if cluster else Redis.from_url(url, max_connections=CONCURRENCY)
    if cluster:
        await client.initialize()
    # redis-py's cluster client sends SCRIPT LOAD to every primary
    increase_sha = await client.script_load(INCREASE)
    decrease_sha = await client.script_load(DECREASE)
    total, hll = BATCH_KEYS

    async def batch() -> Any:
        async with client.pipeline(transaction=True) as p:
            p.incrby(total, 1).pfadd(hll, "42").expire(hll, 3600)
            return await p.execute()

    return {
        "counter": lambda: client.evalsha(increase_sha, 1, COUNTER_KEY, 600),
        "decrease": lambda: client.evalsha(decrease_sha, len(DECREASE_KEYS), *DECREASE_KEYS),
        "batch": batch,
    }, client.aclose


async def coredis_client(url: str, cluster: bool) -> tuple[Ops, Callable[[], Awaitable[None]]]:
    import coredis

    client: Any = coredis.RedisCluster.from_url(url) if cluster else coredis.Redis.from_url(url)
    context = client.__asynccontextmanager__()
    await context.__aenter__()
    increase = client.register_script(INCREASE)
    decrease = client.register_script(DECREASE)
    total, hll = BATCH_KEYS

    async def batch() -> Any:
        async with client.pipeline(transaction=True) as p:
            p.incrby(total, 1)
            p.pfadd(hll, "42")
            p.expire(hll, 3600)

    async def close() -> None:
        await context.__aexit__(None, None, None)

    return {
        "counter": lambda: increase([COUNTER_KEY], [600]),
        "decrease": lambda: decrease(DECREASE_KEYS),
        "batch": batch,
    }, close


async def glide_client(port: int, cluster: bool) -> tuple[Ops, Callable[[], Awaitable[None]]]:
    import glide

    address = [glide.NodeAddress("127.0.0.1", port)]
    client: Any
    if cluster:
        client = await glide.GlideClusterClient.create(glide.GlideClusterClientConfiguration(address))
    else:
        client = await glide.GlideClient.create(glide.GlideClientConfiguration(address))
    increase, decrease = glide.Script(INCREASE), glide.Script(DECREASE)
    total, hll = BATCH_KEYS

    async def batch() -> Any:
        b = glide.ClusterBatch(is_atomic=True) if cluster else glide.Batch(is_atomic=True)
        b.incrby(total, 1).pfadd(hll, ["42"]).expire(hll, 3600)
        return await client.exec(b, raise_on_error=True)

    return {
        "counter": lambda: client.invoke_script(increase, keys=[COUNTER_KEY], args=["600"]),
        "decrease": lambda: client.invoke_script(decrease, keys=DECREASE_KEYS),
        "batch": batch,
    }, client.close


# --- measurement ---------------------------------------------------------------------------------


async def measure(op: Callable[[], Awaitable[Any]], ops: int) -> tuple[float, float]:
    """(ops per second, CPU µs per op) for `ops` calls from CONCURRENCY callers."""
    per_caller = ops // CONCURRENCY

    async def caller() -> None:
        for _ in range(per_caller):
            await op()

    await asyncio.gather(*(op() for _ in range(CONCURRENCY)))  # warm up: connections, scripts
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(CONCURRENCY)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    done = per_caller * CONCURRENCY
    return done / wall, cpu / done * 1e6


async def run(args: argparse.Namespace, standalone_port: int, cluster_port: int | None) -> None:
    url = f"redis://127.0.0.1:{standalone_port}/0"
    factories: dict[str, Callable[[], Awaitable[tuple[Ops, Callable[[], Awaitable[None]]]]]] = {
        "pipe (redis_pipe.py)": lambda: pipe_client(url),
        "store (redis_store.py)": lambda: store_client(url),
        "store + WAIT 1 replica": lambda: store_client(url, wait_replicas=1),
        "redis-py 8.1.0": lambda: redis_py_client(url, False),
        "coredis 6.9.0": lambda: coredis_client(url, False),
        "valkey-glide 2.5.3": lambda: glide_client(standalone_port, False),
    }
    if cluster_port is not None:
        curl = f"redis+cluster://127.0.0.1:{cluster_port}"
        factories |= {
            "store, cluster": lambda: store_client(curl),
            "redis-py, cluster": lambda: redis_py_client(f"redis://127.0.0.1:{cluster_port}", True),
            "coredis, cluster": lambda: coredis_client(f"redis://127.0.0.1:{cluster_port}", True),
            "valkey-glide, cluster": lambda: glide_client(cluster_port, True),
        }
    if args.only:
        wanted = args.only.split(",")
        factories = {name: f for name, f in factories.items() if any(w in name for w in wanted)}
    clients: dict[str, tuple[Ops, Callable[[], Awaitable[None]]]] = {}
    for name, factory in factories.items():
        try:
            clients[name] = await factory()
        except ImportError as exc:
            print(f"skipping {name}: {exc} (pip install -e '.[bench]')", file=sys.stderr)
    commands = ("counter", "decrease", "batch")
    samples: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for round_number in range(args.rounds):
        order = list(clients) if round_number % 2 == 0 else list(reversed(clients))
        for name in order:
            for command in commands:
                samples.setdefault((name, command), []).append(await measure(clients[name][0][command], args.ops))
        print(f"round {round_number + 1}/{args.rounds} done", file=sys.stderr)
    for _ops, close in reversed(clients.values()):  # coredis: contexts close in reverse order
        await close()
    print(f"\n{args.ops} calls per cell, {CONCURRENCY} concurrent callers, uvloop, median of {args.rounds} rounds")
    header = f"{'client':<24}" + "".join(f"{c + ' ops/s':>16}{'CPU µs/op':>11}" for c in commands)
    print(header)
    print("-" * len(header))
    for name in clients:
        row = f"{name:<24}"
        for command in commands:
            rates = [s[0] for s in samples[(name, command)]]
            cpus = [s[1] for s in samples[(name, command)]]
            row += f"{statistics.median(rates):>16,.0f}{statistics.median(cpus):>11.1f}"
        print(row)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ops", type=int, default=12800)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-cluster", action="store_true")
    parser.add_argument("--only", default="", help="comma-separated substrings of client names")
    args = parser.parse_args()
    if shutil.which("redis-server") is None:
        sys.exit("redis-server is needed (Debian: apt-get install redis-server)")
    temp = Path(tempfile.mkdtemp(prefix="bench-redis-"))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        port = free_port()
        processes.append(start_redis(temp / "standalone", port))
        # a replica of it, for the store's WAIT (Sentinel mode's durable counter writes)
        replica = free_port()
        processes.append(start_redis(temp / "replica", replica, "--replicaof", "127.0.0.1", str(port)))
        deadline = time.monotonic() + 15
        while "master_link_status:up" not in subprocess.run(
            ["redis-cli", "-p", str(replica), "info", "replication"], capture_output=True, text=True
        ).stdout:
            if time.monotonic() > deadline:
                raise RuntimeError("the replica did not sync")
            time.sleep(0.05)
        cluster_port = None
        if not args.no_cluster:
            cluster_processes, cluster_ports = start_cluster(temp / "cluster")
            processes.extend(cluster_processes)
            cluster_port = cluster_ports[0]
        uvloop.run(run(args, port, cluster_port))
    finally:
        for process in processes:
            os.kill(process.pid, signal.SIGTERM)
        for process in processes:
            process.wait(timeout=10)
        shutil.rmtree(temp, ignore_errors=True)


if __name__ == "__main__":
    main()
