"""Redis URL forms, parsed and composed without importing any Redis client (service/config.py uses it).

  redis://[[user]:password@]host[:port][/db]   rediss://...   unix:///path/redis.sock[?db=N&password=...]
  redis+sentinel://[[user]:password@]s1[:26379][,s2[:26379]...]/<master name>[/db][?sentinel_password=...]
  redis+cluster://[[user]:password@]n1[:6379][,n2[:6379]...]     (rediss+sentinel://, rediss+cluster://: TLS)

A host is a name, an IPv4 address or a bracketed IPv6 address (`[::1]`, `[::1]:26379`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

__all__ = ["RedisTarget", "as_list", "compose_redis_url", "parse_redis_url"]


def as_list(value: Any) -> tuple[str, ...]:
    """A TOML list, or the environment's comma-separated form of one; None is the empty list."""
    items = value.split(",") if isinstance(value, str) else list(value or ())
    return tuple(str(item).strip() for item in items if str(item).strip())


@dataclass(frozen=True)
class RedisTarget:
    """Where Redis is: mode "standalone" (url), "sentinel" (sentinels + master_name) or "cluster" (nodes)."""

    mode: str
    url: str = ""  # standalone: the URL as given
    nodes: tuple[tuple[str, int], ...] = ()  # sentinels, or cluster seed nodes
    master_name: str = ""
    username: str | None = None
    password: str | None = None
    sentinel_password: str | None = None
    db: int = 0
    tls: bool = False

    def node_url(self, host: str, port: int) -> str:
        """A standalone URL for one server of the topology, with this target's credentials and db."""
        auth = ""
        if self.password is not None:
            auth = f"{quote(self.username or '', safe='')}:{quote(self.password, safe='')}@"
        if ":" in host:
            host = f"[{host}]"  # IPv6
        return f"{'rediss' if self.tls else 'redis'}://{auth}{host}:{port}/{self.db}"


def _hosts(text: str, default_port: int) -> tuple[tuple[str, int], ...]:
    """`h1[:port],[v6]:port,[v6]` as (host, port) pairs; an unbracketed address with colons is IPv6."""
    nodes = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        if item.startswith("["):
            host, bracket, rest = item[1:].partition("]")
            if not bracket or (rest and not rest.startswith(":")):
                raise ValueError(f"config: bad Redis host {item!r}")
            port = rest[1:]
        elif item.count(":") == 1:
            host, _, port = item.partition(":")
        else:
            host, port = item, ""
        if port and not port.isdigit():
            raise ValueError(f"config: bad Redis port in {item!r}")
        nodes.append((host or "127.0.0.1", int(port) if port else default_port))
    return tuple(nodes)


def parse_redis_url(url: str, sentinel_password: str | None = None) -> RedisTarget:
    """The URL forms in this module's docstring; anything else is a ValueError at start-up."""
    scheme, _, rest = url.partition("://")
    scheme = scheme.lower()
    if scheme in ("redis", "rediss", "unix"):
        urlsplit(url)  # a malformed URL fails here rather than at the first command
        return RedisTarget("standalone", url=url)
    if scheme not in ("redis+sentinel", "rediss+sentinel", "redis+cluster", "rediss+cluster"):
        raise ValueError(f"config: unsupported Redis URL scheme {scheme!r}")
    # urlsplit cannot parse "h1:1,h2:2" as a netloc's port: split the parts by hand.
    netloc, _, path_query = rest.partition("/")
    if "?" in netloc:
        netloc, _, query_only = netloc.partition("?")
        path_query = "?" + query_only
    path, _, query = path_query.partition("?")
    params = parse_qs(query)
    userinfo, at, hosts = netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else unquote(user)
        if not colon:
            username = None
    if "password" in params:
        password = params["password"][0]
    tls = scheme.startswith("rediss")
    segments = [unquote(s) for s in path.split("/") if s]
    if scheme.endswith("+sentinel"):
        if not segments:
            raise ValueError("config: redis+sentinel:// needs the master name as its path: .../<master name>[/db]")
        db = int(segments[1]) if len(segments) > 1 else int(params.get("db", ["0"])[0])
        return RedisTarget(
            "sentinel",
            nodes=_hosts(hosts, 26379),
            master_name=segments[0],
            username=username,
            password=password,
            sentinel_password=params.get("sentinel_password", [sentinel_password or ""])[0] or None,
            db=db,
            tls=tls,
        )
    if segments and segments != ["0"]:
        raise ValueError("config: Redis Cluster has only database 0")
    return RedisTarget("cluster", nodes=_hosts(hosts, 6379), username=username, password=password, tls=tls)


def compose_redis_url(section: Mapping[str, Any]) -> str:
    """The `[redis]` config section as one URL: `url`, or GitLab's lists of sentinels / cluster nodes.

    With `sentinels`, the URL (if any) gives credentials, database and TLS, and its host is the master
    name unless `master_name` is set (GitLab's resque.yml: url redis://:pw@<master name>/db plus a
    list of sentinels). With `cluster_nodes`, the URL gives credentials and TLS.
    """
    url = str(section.get("url") or "")
    sentinels, nodes = as_list(section.get("sentinels")), as_list(section.get("cluster_nodes"))
    if not sentinels and not nodes:
        return url
    if sentinels and nodes:
        raise ValueError("config: redis.sentinels and redis.cluster_nodes exclude each other")
    parts = urlsplit(url) if url else None
    tls = parts is not None and parts.scheme == "rediss"
    auth = ""
    if parts is not None and parts.password is not None:
        auth = f"{parts.username or ''}:{parts.password}@"
    if nodes:
        return f"{'rediss' if tls else 'redis'}+cluster://{auth}{','.join(nodes)}"
    master = str(section.get("master_name") or (parts.hostname if parts else "") or "")
    if not master:
        raise ValueError("config: redis.sentinels needs redis.master_name (or the master name as the URL's host)")
    db = (parts.path or "/0").strip("/") if parts else "0"
    return f"{'rediss' if tls else 'redis'}+sentinel://{auth}{','.join(sentinels)}/{quote(master)}/{db or '0'}"
