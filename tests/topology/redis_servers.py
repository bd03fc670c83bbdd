"""Real Redis topologies for the tests: a 3-master Cluster and a Sentinel group, on free ports.

Every server is a `redis-server` process in a temporary directory, stopped by its PID.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest


def require_binaries() -> None:
    missing = [name for name in ("redis-server", "redis-cli") if shutil.which(name) is None]
    if not missing:
        return
    message = f"{', '.join(missing)} not found: install Redis (Debian: apt-get install redis-server)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def free_port(bus: bool = False) -> int:
    """A free loopback port; with bus, below 55536 with port + 10000 free too (the cluster bus)."""
    while True:
        port = random.randrange(20000, 45000)
        try:
            for candidate in (port, port + 10000) if bus else (port,):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port


def cli(port: int, *args: str) -> str:
    return subprocess.run(
        ["redis-cli", "-p", str(port), *args], capture_output=True, text=True, timeout=10, check=True
    ).stdout.strip()


def wait_until(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except (subprocess.SubprocessError, OSError):
            pass
        time.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what}")


@dataclass
class Servers:
    directory: Path
    processes: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, port: int, *extra: str, sentinel_config: str | None = None) -> None:
        data = self.directory / str(port)
        data.mkdir(parents=True, exist_ok=True)
        if sentinel_config is not None:
            config = data / "sentinel.conf"
            config.write_text(sentinel_config)
            command = ["redis-server", str(config), "--sentinel", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data)]
        else:
            command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(data), *extra]
        log = open(data / "server.log", "wb")
        self.processes[port] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wait_until(lambda: cli(port, "PING") == "PONG", 10, f"redis-server on port {port}")

    def stop(self, port: int) -> None:
        process = self.processes.pop(port)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop_all(self) -> None:
        for port in list(self.processes):
            self.stop(port)
        shutil.rmtree(self.directory, ignore_errors=True)


@dataclass
class Cluster:
    servers: Servers
    ports: list[int]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports[:2])


def start_cluster(servers: Servers) -> Cluster:
    ports = [free_port(bus=True) for _ in range(3)]
    for port in ports:
        servers.start(port, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000")
    subprocess.run(
        ["redis-cli", "--cluster", "create", *[f"127.0.0.1:{p}" for p in ports], "--cluster-yes"],
        check=True, capture_output=True, timeout=30,
    )
    wait_until(lambda: all("cluster_state:ok" in cli(p, "CLUSTER", "INFO") for p in ports), 20, "cluster_state:ok")
    return Cluster(servers, ports)


@dataclass
class SentinelGroup:
    servers: Servers
    master_port: int
    replica_port: int
    sentinel_ports: list[int]
    name: str = "gitlab-redis"

    @property
    def url(self) -> str:
        return "redis+sentinel://" + ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports) + f"/{self.name}/0"

    def master(self) -> int:
        _host, port = cli(self.sentinel_ports[0], "SENTINEL", "get-master-addr-by-name", self.name).split()
        return int(port)


def start_sentinel_group(servers: Servers) -> SentinelGroup:
    master, replica = free_port(), free_port()
    servers.start(master)
    servers.start(replica, "--replicaof", "127.0.0.1", str(master))
    wait_until(lambda: "master_link_status:up" in cli(replica, "INFO", "replication"), 15, "the replica's link")
    sentinels = [free_port() for _ in range(3)]
    group = SentinelGroup(servers, master, replica, sentinels)
    for port in sentinels:
        servers.start(
            port,
            sentinel_config=(
                f"sentinel monitor {group.name} 127.0.0.1 {master} 2\n"
                f"sentinel down-after-milliseconds {group.name} 1000\n"
                f"sentinel failover-timeout {group.name} 10000\n"
                f"sentinel parallel-syncs {group.name} 1\n"
            ),
        )
    # each sentinel has found the replica and the other sentinels
    wait_until(
        lambda: all(
            "slaves=1,sentinels=3" in cli(p, "INFO", "sentinel") for p in sentinels
        ),
        20,
        "the sentinels to discover each other",
    )
    return group
