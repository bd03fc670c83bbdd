"""The service's one Redis abstraction: standalone Redis, Sentinel or Cluster, chosen by the URL.

Every Redis user goes through `RedisStore`: `run_script` (a Lua script over keys of ONE hash slot),
`batch` (commands over one slot, in one round trip, not atomic: reads), `ping`, `ready`, `close`.

Who does what, honestly:
- redis-py (a well-kept library) does all topology: Sentinel master discovery
  (`redis.asyncio.sentinel.Sentinel.discover_master`), the cluster slot map (`RedisCluster`), and
  every MOVED / ASK / TRYAGAIN / CLUSTERDOWN redirection: a command answered with one of those
  (they are refused before they run, so repeating them is safe) is run again through
  `RedisCluster.execute_command`, which follows the redirection and updates its slot map.
- The hand-written part is only the per-server auto-pipelining connection (service/redis_pipe.py),
  kept because bench/redis_clients.py measured redis-py at ~100 µs of CPU per command against ~10
  µs for it (64 concurrent callers), and pre_receive must stay under ~80 µs in total. The store
  asks redis-py which server serves a key and sends the command there on that connection.
- Sentinel: writes whose loss would be unsafe (`durable=True`: the reference counter's increase,
  kas usage counts) are followed by one `WAIT <replicas> <timeout>` per batch; fewer
  acknowledgements raise NotReplicated and the caller answers false/503. Asynchronous replication
  would otherwise lose acknowledged writes in a failover (the promoted replica lacks the last writes,
  and the old master keeps accepting writes until Sentinel demotes it). WAIT blocks its connection,
  so durable writes use a second connection per server (PipelinedRedis.durable_connection) and
  nothing else waits behind them. A NotReplicated write is nevertheless on the master: the caller
  passes an `undo` script that the store runs at once (best effort), so the counter is not left
  raised and kas's retry of a 503 does not count twice. NotReplicated says nothing about which
  server is master: it triggers no rediscovery and no reconnection.
- Topology refreshes (Sentinel discovery, the cluster slot map) run one at a time; callers arriving
  meanwhile share its outcome, and a failure is remembered for REFRESH_BACKOFF seconds, so during an
  outage queued requests fail fast (false/503) instead of each waiting out a timeout in turn.

Failures are logged here, once per change of state (not once per request); callers only decide
what their client is told (false, 503, fail open).

URL forms: service/redis_urls.py.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from redis import exceptions as redis_exceptions
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.sentinel import Sentinel

from service.redis_pipe import (
    NotReplicated,
    PipelinedRedis,
    RedisError,
    RedisReplyError,
    RedisUnavailable,
    Script,
)
from service.redis_urls import RedisTarget, parse_redis_url

__all__ = [
    "NotReplicated",
    "RedisError",
    "RedisReplyError",
    "RedisStore",
    "RedisTarget",
    "RedisUnavailable",
    "Script",
    "create_store",
    "parse_redis_url",
]

log = logging.getLogger("gitlab_internal_api.redis")

# Error replies given before the command ran: running it again elsewhere is safe.
_REDIRECTS = ("MOVED", "ASK", "TRYAGAIN", "CLUSTERDOWN")
READINESS_KEY = "gitlab-internal-api:readiness"
_READINESS_PROBE = Script("return redis.call('SET', KEYS[1], '1', 'PX', 10000)")
REFRESH_BACKOFF = 1.0  # seconds a failed Sentinel discovery / slot map refresh is not tried again


class _SingleFlight:
    """Runs `run` once for all concurrent callers: each gets its result or its exception.

    A RedisError is remembered for `backoff` seconds: callers in that time get it again at once,
    rather than each of a queue of requests asking unreachable sentinels for a full timeout in turn.
    """

    def __init__(self, run: Callable[[], Awaitable[None]], backoff: float = REFRESH_BACKOFF) -> None:
        self._run, self._backoff = run, backoff
        self._task: asyncio.Task[None] | None = None
        self._failure: RedisError | None = None
        self._failed_at = 0.0

    async def __call__(self) -> None:
        if self._task is None:
            if self._failure is not None and time.monotonic() - self._failed_at < self._backoff:
                raise RedisUnavailable(str(self._failure))
            self._task = asyncio.ensure_future(self._run())
            self._task.add_done_callback(self._done)
        try:
            await asyncio.shield(self._task)  # a caller that gives up does not cancel it for the others
        except RedisUnavailable as exc:
            raise RedisUnavailable(str(exc)) from None  # one instance each: tracebacks do not pile up

    def _done(self, task: asyncio.Task[None]) -> None:
        if task is self._task:
            self._task = None
        if task.cancelled():
            return
        exc = task.exception()  # retrieved, even when every caller gave up
        if exc is None:
            self._failure = None
        elif isinstance(exc, RedisError):
            self._failure, self._failed_at = exc, time.monotonic()


def _retire_later(retired: set[PipelinedRedis], node: PipelinedRedis, delay: float) -> None:
    """Close a connection once replies in flight had time to arrive: its callers are not failed by it."""
    retired.add(node)

    def close() -> None:
        if node in retired:
            retired.discard(node)
            asyncio.ensure_future(node.close())

    asyncio.get_running_loop().call_later(delay, close)


# --- topologies: which server serves a key -------------------------------------------------------


class _Standalone:
    def __init__(self, target: RedisTarget, timeout: float) -> None:
        self.node = PipelinedRedis(target.url, timeout=timeout)

    async def start(self) -> None:
        await self.node.execute("PING")

    def node_for(self, key: Any) -> PipelinedRedis | None:
        return self.node

    async def refresh(self) -> None:
        pass

    def failed(self, node: PipelinedRedis) -> None:
        pass  # the connection reconnects by itself

    async def primaries(self) -> list[PipelinedRedis]:
        return [self.node]

    async def redirected(self, command: Sequence[Any], exc: RedisReplyError) -> Any:
        raise exc  # a standalone server that redirects is a cluster node: misconfigured

    async def close(self) -> None:
        await self.node.close()


class _Sentinel:
    """The master Sentinel names (redis-py asks the sentinels), on one pipelined connection."""

    def __init__(self, target: RedisTarget, timeout: float) -> None:
        self.target, self.timeout = target, timeout
        sentinel_kwargs: dict[str, Any] = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
        if target.sentinel_password:
            sentinel_kwargs["password"] = target.sentinel_password
        if target.tls:
            sentinel_kwargs["ssl"] = True
        self.sentinel = Sentinel(list(target.nodes), sentinel_kwargs=sentinel_kwargs)  # type: ignore[no-untyped-call]
        self.node: PipelinedRedis | None = None
        self.retired: set[PipelinedRedis] = set()  # old masters' connections, closed a little later
        self.address: tuple[str, int] | None = None
        self.refresh = _SingleFlight(self._discover)

    async def start(self) -> None:
        await self.refresh()
        assert self.node is not None
        await self.node.execute("PING")

    def node_for(self, key: Any) -> PipelinedRedis | None:
        return self.node

    async def _discover(self) -> None:
        """Ask the sentinels for the master (as `refresh`, single-flight); switch connections when it moved."""
        try:
            address = await self.sentinel.discover_master(self.target.master_name)
        except redis_exceptions.RedisError as exc:
            raise RedisUnavailable(f"Sentinel: {exc}") from None
        host, port = str(address[0]), int(address[1])
        if (host, port) != self.address:
            if self.address is not None:
                log.warning("redis: Sentinel names %s:%s as master of %s", host, port, self.target.master_name)
            self.address = (host, port)
            if self.node is not None:
                self.failed(self.node)
        if self.node is None:
            self.node = PipelinedRedis(self.target.node_url(host, port), timeout=self.timeout)

    def failed(self, node: PipelinedRedis) -> None:
        """A broken connection or READONLY: ask the sentinels again before the next command."""
        if self.node is node:
            self.node = None
            _retire_later(self.retired, node, self.timeout)

    async def primaries(self) -> list[PipelinedRedis]:
        if self.node is None:
            await self.refresh()
        assert self.node is not None
        return [self.node]

    async def redirected(self, command: Sequence[Any], exc: RedisReplyError) -> Any:
        raise exc

    async def close(self) -> None:
        for node in [*self.retired, *([self.node] if self.node is not None else [])]:
            await node.close()
        self.retired.clear()
        for sentinel in self.sentinel.sentinels:
            await sentinel.aclose()


# A script's own refusal: an error reply it gives with this prefix, having written nothing.
REFUSED = "REFUSED "


class ScriptRefused(Exception):
    """A script refused its arguments (an error reply starting REFUSED): the request's input, not a
    failure of Redis, so neither logged as an outage nor retried. Not a RedisError."""


def reply_error(message: str) -> RedisReplyError | ScriptRefused:
    """An error reply as raised: a script's own refusal apart from Redis's errors."""
    if message.startswith(REFUSED):
        return ScriptRefused(message[len(REFUSED) :])
    return RedisReplyError(message)


class _Cluster:
    """Slot map, redirections and failover by redis-py's RedisCluster; one pipelined connection per primary."""

    def __init__(self, target: RedisTarget, timeout: float) -> None:
        self.target, self.timeout = target, timeout
        self.cluster = RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in target.nodes],
            username=target.username,
            password=target.password,
            ssl=target.tls,
            decode_responses=True,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
        )
        self.nodes: dict[str, PipelinedRedis] = {}  # "host:port" of each primary of the slot map
        self.retired: set[PipelinedRedis] = set()  # connections to servers no longer primaries
        self.refresh = _SingleFlight(self._reload)
        self._refresh: asyncio.Task[None] | None = None

    async def start(self) -> None:
        try:
            await self.cluster.initialize()
        except redis_exceptions.RedisError as exc:
            raise RedisUnavailable(f"Cluster: {exc}") from None

    def _connection(self, host: str, port: int) -> PipelinedRedis:
        name = f"{host}:{port}"
        node = self.nodes.get(name)
        if node is None:
            node = self.nodes[name] = PipelinedRedis(self.target.node_url(host, port), timeout=self.timeout)
        return node

    def node_for(self, key: Any) -> PipelinedRedis | None:
        try:
            node = self.cluster.get_node_from_key(key) if key is not None else self.cluster.get_default_node()
        except redis_exceptions.RedisError:
            return None  # slot not covered: refresh the map first
        if node is None:
            return None
        return self._connection(node.host, int(node.port))

    async def _reload(self) -> None:
        """Read the slot map again (as `refresh`, single-flight); drop connections to former primaries."""
        try:
            await self.cluster.nodes_manager.initialize()
        except redis_exceptions.RedisError as exc:
            raise RedisUnavailable(f"Cluster: {exc}") from None
        primaries = {f"{node.host}:{node.port}" for node in self.cluster.get_primaries()}
        for name in [name for name in self.nodes if name not in primaries]:
            _retire_later(self.retired, self.nodes.pop(name), self.timeout)

    def failed(self, node: PipelinedRedis | None) -> None:
        """A primary stopped answering: re-read the slot map in the background (a replica may take over)."""
        if self._refresh is None or self._refresh.done():
            self._refresh = asyncio.get_running_loop().create_task(self._quiet_refresh())

    async def _quiet_refresh(self) -> None:
        try:
            await self.refresh()
        except RedisError:
            pass  # the next command fails and reports it

    async def primaries(self) -> list[PipelinedRedis]:
        return [self._connection(node.host, int(node.port)) for node in self.cluster.get_primaries()]

    async def redirected(self, command: Sequence[Any], exc: RedisReplyError) -> Any:
        """MOVED/ASK/TRYAGAIN/CLUSTERDOWN: redis-py runs the command, following the redirection."""
        if str(exc).startswith("MOVED"):
            self.failed(None)  # the slot map changed: read it again, and forget former primaries
        try:
            return await self.cluster.execute_command(*command)
        except redis_exceptions.ResponseError as error:
            raise reply_error(str(error)) from None  # a script's refusal after a redirection too
        except redis_exceptions.RedisError as error:
            raise RedisUnavailable(f"Cluster: {error!r}") from None

    async def close(self) -> None:
        for node in [*self.retired, *self.nodes.values()]:
            await node.close()
        self.retired.clear()
        await self.cluster.aclose()


_Topology = _Standalone | _Sentinel | _Cluster


# --- the store -----------------------------------------------------------------------------------


class RedisStore:
    def __init__(self, target: RedisTarget, *, timeout: float = 5.0, wait_replicas: int = 0, wait_timeout: float = 0.5):
        self.target = target
        self._topology: _Topology
        if target.mode == "sentinel":
            self._topology = _Sentinel(target, timeout)
        elif target.mode == "cluster":
            self._topology = _Cluster(target, timeout)
        else:
            self._topology = _Standalone(target, timeout)
        self._wait = (wait_replicas, int(wait_timeout * 1000)) if wait_replicas > 0 else None
        self._failing: str | None = None  # the last failure's kind, while failing
        self._failing_since = 0.0
        # Replicas not acknowledging is a state of its own: the commands that need no WAIT keep
        # succeeding meanwhile, and must not make each NotReplicated log again.
        self._unreplicated_since: float | None = None
        self._undo_failing = False

    # --- health log: one line per change of state ---

    def record_failure(self, exc: Exception) -> None:
        """Log a failure once per change of state (the next success logs the recovery)."""
        if isinstance(exc, NotReplicated):
            if self._unreplicated_since is None:
                self._unreplicated_since = time.monotonic()
                log.error(
                    "redis: %s: durable writes are undone and answered false/503 (counter increases, kas metrics)",
                    exc,
                )
            return
        reason = str(exc) or type(exc).__name__
        kind = type(exc).__name__ + ":" + reason.split(" ", 1)[0]
        if kind != self._failing:
            if self._failing is None:
                self._failing_since = time.monotonic()
            log.error("redis: %s (counters answer false, kas metrics 503, rate limits not applied)", reason)
            self._failing = kind

    def _succeeded(self, durable: bool = False) -> None:
        if durable and self._unreplicated_since is not None:
            log.warning("redis: replicas acknowledge again after %.1f s", time.monotonic() - self._unreplicated_since)
            self._unreplicated_since = None
        if self._failing is not None:
            log.warning("redis: answering again after %.1f s", time.monotonic() - self._failing_since)
            self._failing = None

    async def _node(self, key: Any) -> PipelinedRedis:
        node = self._topology.node_for(key)
        if node is None:
            await self._topology.refresh()
            node = self._topology.node_for(key)
            if node is None:
                raise RedisUnavailable(f"no Redis server for key {key!r}")
        return node

    def _is_demoted(self, exc: RedisError) -> bool:
        return isinstance(exc, RedisReplyError) and str(exc).startswith("READONLY")

    # --- commands ---

    async def run_script(
        self,
        script: Script,
        keys: Sequence[Any],
        args: Sequence[Any] = (),
        *,
        durable: bool = False,
        undo: tuple[Script, Sequence[Any]] | None = None,
    ) -> Any:
        """Run a Lua script over `keys` (one hash slot).

        durable: WAIT for replicas where configured (on the server's durable connection). When too
        few acknowledge, NotReplicated is raised, and `undo` (a script and its arguments, over the
        same keys) is run first, best effort, to take the write back: it is on the master.
        """
        wait = self._wait if durable else None
        node: PipelinedRedis | None = None
        try:
            for attempt in (1, 2):
                # a known server without a coroutine (the common case); _node() finds it otherwise
                node = self._topology.node_for(keys[0]) or await self._node(keys[0])
                try:
                    if wait:
                        result = await node.durable_connection().evalsha(script, keys, args, wait)
                    else:
                        result = await node.evalsha(script, keys, args)
                    break
                except RedisReplyError as exc:
                    if str(exc).startswith(REFUSED):
                        raise reply_error(str(exc)) from None
                    if self._is_demoted(exc) and attempt == 1:
                        self._topology.failed(node)  # Sentinel: the master became a replica; it refused the write
                        continue
                    if not str(exc).startswith(_REDIRECTS):
                        raise
                    if wait:
                        # redis-py ran it on a connection of its own: WAIT there would prove nothing.
                        await self._topology.redirected(("EVAL", script.source, len(keys), *keys, *args), exc)
                        raise NotReplicated("written after a cluster redirection, replication not confirmed") from None
                    result = await self._topology.redirected(("EVAL", script.source, len(keys), *keys, *args), exc)
                    break
        except NotReplicated as exc:
            # Not a sign of which server is master: no rediscovery, no new connection.
            self.record_failure(exc)
            if undo is not None:
                await self._undo(undo, keys)
            raise
        except RedisError as exc:
            self._failed(node, exc)
            raise
        self._succeeded(durable=wait is not None)
        return result

    def _failed(self, node: PipelinedRedis | None, exc: RedisError) -> None:
        if isinstance(exc, RedisUnavailable) and node is not None:
            self._topology.failed(node)  # a connection that broke: find the server (again) next time
        self.record_failure(exc)

    async def _undo(self, undo: tuple[Script, Sequence[Any]], keys: Sequence[Any]) -> None:
        script, args = undo
        try:
            await self.run_script(script, keys, args)
        except RedisError as exc:
            if not self._undo_failing:
                log.error("redis: could not undo a write that replicas did not acknowledge: %s", exc)
                self._undo_failing = True
            return
        self._undo_failing = False

    async def batch(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Commands over one hash slot in one round trip (a pipeline, not a transaction: use run_script
        for writes that must apply together). Results in order; an error reply raises."""
        key = commands[0][1] if commands and len(commands[0]) > 1 else None
        node: PipelinedRedis | None = None
        try:
            node = self._topology.node_for(key) or await self._node(key)
            try:
                results = await node.execute_many(commands)
            except RedisReplyError as exc:
                if not str(exc).startswith(_REDIRECTS):
                    raise
                results = [await self._topology.redirected(command, exc) for command in commands]
        except RedisError as exc:
            self._failed(node, exc)
            raise
        self._succeeded()
        return results

    async def ping(self) -> bool:
        try:
            return bool(await self.batch([("PING",)]))
        except RedisError:
            return False

    async def ready(self) -> str | None:
        """None when the hot paths' commands can run, else why not.

        PING is not enough: a Sentinel or a replica answers it, and so does a cluster node that
        would answer MOVED to every other command. Every primary must say ROLE master (and,
        outside cluster mode, not be a cluster node), and a scripted write must succeed.
        """
        try:
            for node in await self._topology.primaries():
                role, cluster = await node.execute_many([("ROLE",), ("INFO", "cluster")])
                if not role or role[0] != "master":
                    kind = role[0] if role else "unknown"
                    return f"{node.address} is a {kind}, not a master"
                enabled = "cluster_enabled:1" in str(cluster)
                if enabled and self.target.mode != "cluster":
                    return f"{node.address} is a cluster node: configure redis+cluster://"
                if self.target.mode == "cluster":
                    info = await node.execute("CLUSTER", "INFO")
                    if "cluster_state:ok" not in str(info):
                        return f"{node.address}: cluster state is not ok"
            await self.run_script(_READINESS_PROBE, [READINESS_KEY])
        except RedisError as exc:
            return str(exc) or type(exc).__name__
        return None

    async def start(self) -> None:
        """Connect (and discover the master or the slot map) now: a wrong configuration fails start-up."""
        await self._topology.start()

    async def close(self) -> None:
        await self._topology.close()


def create_store(
    url: str, *, sentinel_password: str | None = None, wait_replicas: int = -1, **options: Any
) -> RedisStore:
    """A store for `url`; wait_replicas -1 means 1 under Sentinel (see the module docstring), else none."""
    target = parse_redis_url(url, sentinel_password)
    if wait_replicas < 0:
        wait_replicas = 1 if target.mode == "sentinel" else 0
    return RedisStore(target, wait_replicas=wait_replicas, **options)
