"""Fixtures of the topology suites: real Redis Cluster / Sentinel servers started here (redis_servers.py)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.topology.redis_servers import Cluster, SentinelGroup, Servers, require_binaries, start_cluster, start_sentinel_group


@pytest.fixture(scope="module")
def redis_cluster() -> Iterator[Cluster]:
    """A 3-master Redis Cluster (no replicas), shared by a module's tests."""
    require_binaries()
    servers = Servers(Path(tempfile.mkdtemp(prefix="gia-cluster-")))
    try:
        yield start_cluster(servers)
    finally:
        servers.stop_all()


@pytest.fixture
def sentinel_group() -> Iterator[SentinelGroup]:
    """One master, one replica and three sentinels; per test, as a failover changes it for good."""
    require_binaries()
    servers = Servers(Path(tempfile.mkdtemp(prefix="gia-sentinel-")))
    try:
        yield start_sentinel_group(servers)
    finally:
        servers.stop_all()
