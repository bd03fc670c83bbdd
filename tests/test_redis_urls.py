"""Redis URL forms (service/redis_urls.py) and the [redis] config section composed into one URL."""

from __future__ import annotations

import subprocess
import sys

import pytest

from service.config import ROOT
from service.redis_urls import as_list, compose_redis_url, parse_redis_url


def test_sentinel_hosts_with_and_without_ports_including_ipv6():
    target = parse_redis_url("redis+sentinel://:pw@s1,s2:26380,[::1],[fe80::2]:26381,::3/gitlab-redis/2")
    assert target.mode == "sentinel" and target.master_name == "gitlab-redis" and target.db == 2
    assert target.nodes == (("s1", 26379), ("s2", 26380), ("::1", 26379), ("fe80::2", 26381), ("::3", 26379))
    assert target.password == "pw"
    assert target.node_url("::1", 6379) == "redis://:pw@[::1]:6379/2"


def test_cluster_nodes_and_bad_hosts():
    assert parse_redis_url("redis+cluster://[::1]:7000,n2").nodes == (("::1", 7000), ("n2", 6379))
    for bad in ("redis+cluster://[::1", "redis+cluster://[::1]x", "redis+cluster://n1:port"):
        with pytest.raises(ValueError):
            parse_redis_url(bad)


def test_config_section_to_url():
    assert compose_redis_url({"url": "redis://:pw@mymaster/1", "sentinels": "s1:26379, s2:26379"}) == (
        "redis+sentinel://:pw@s1:26379,s2:26379/mymaster/1"
    )
    assert compose_redis_url({"cluster_nodes": ["n1:7000", "n2:7000"]}) == "redis+cluster://n1:7000,n2:7000"
    assert compose_redis_url({"url": "redis://localhost/0", "sentinels": None}) == "redis://localhost/0"
    assert as_list(" a, ,b ") == ("a", "b") and as_list(["a", 1]) == ("a", "1") and as_list(None) == ()


def test_loading_the_configuration_imports_no_redis_client():
    code = "import sys, service.config; print(sorted(m for m in sys.modules if m == 'redis' or m.startswith('redis.')))"
    output = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"
