"""Prometheus metrics (prometheus-client), recorded in one place per kind of event.

- Every request: the request middleware (service/middleware.py) counts and times it by method, route template
  and status (GitLab's `http_requests_total` / `http_request_duration_seconds`), plus the
  `/allowed` outcome and accepted kas usage reports, and gives it its correlation id. Counts are
  gathered in plain integers and handed to prometheus-client once a second (_Recorder).
- Domain outcomes: the reference counter and the rate limiter are wired as metered subclasses
  (service/app.py), counted the same way (_Deferred); Redis failures through the store's failure
  hook; the database pool is sampled once a second by each worker, which then publishes the
  counts (metrics_publisher_ctx).

Several workers: `serve` points PROMETHEUS_MULTIPROC_DIR at an empty directory before this module
is imported (service/cli.py, prepare_metrics_dir), every worker writes its values to files there, a scrape of
any worker sums them (MultiProcessCollector), and gunicorn's child_exit hook retires the files of a
worker that died (service/server.py). Without the variable (tests, one process) the default
registry serves them, with the process collectors.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import ipaddress
import itertools
import os
import re
import secrets
from bisect import bisect_left
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.web_urldispatcher import AbstractRoute

# prometheus_client reads PROMETHEUS_MULTIPROC_DIR once, at import: service/cli.py sets it first.
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from service.domain.rate_limit import ShellOperationLimiter
from service.logs import BARE_SECRET
from service.domain.reference_counter import Decrease, ReferenceCounter
from service.redis_store import RedisStore

log = logging.getLogger("gitlab_internal_api")

MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"

# Latency buckets for an API answering in milliseconds, up to GitLab's 50 s /allowed timeout.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

HTTP_REQUESTS = Counter(
    "http_requests_total", "Requests answered, by method, route template and status", ["method", "route", "status"]
)
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time from the request's arrival at the application to its answer, by method, route template and status",
    ["method", "route", "status"],
    buckets=BUCKETS,
)
ALLOWED = Counter(
    "gitlab_internal_api_allowed_total",
    "POST /internal/allowed answers by status (200 allowed, 300 custom action, 401 denied, 404, 503 ...)",
    ["status"],
)
USAGE_REPORTS = Counter(
    "gitlab_internal_api_usage_metrics_reports_accepted_total",
    "kas usage reports (usage_metrics, agent_events) accepted and added to the totals",
    ["route"],
)
REFERENCE_COUNTER = Counter(
    "gitlab_internal_api_reference_counter_operations_total",
    "Reference counter increases (pre_receive) and decreases (post_receive), by outcome",
    ["operation", "outcome"],
)
RATE_LIMITED = Counter(
    "gitlab_internal_api_rate_limited_requests_total",
    "Git operations refused by the gitlab_shell_operation rate limit",
)
REDIS_ERRORS = Counter(
    "gitlab_internal_api_redis_errors_total", "Redis commands that failed, by error class", ["error"]
)
POOL_IN_USE = Gauge(
    "gitlab_internal_api_db_pool_connections_in_use",
    "PostgreSQL pool connections lent to requests",
    multiprocess_mode="livesum",
)
POOL_SIZE = Gauge(
    "gitlab_internal_api_db_pool_connections", "PostgreSQL pool connections open", multiprocess_mode="livesum"
)
POOL_WAITING = Gauge(
    "gitlab_internal_api_db_pool_waiting",
    "Requests waiting for a PostgreSQL pool connection",
    multiprocess_mode="livesum",
)

PUBLISH_SECONDS = 1.0
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
ALLOWED_ROUTE = "/api/v4/internal/allowed"
USAGE_ROUTES = frozenset({"/api/v4/internal/kubernetes/usage_metrics", "/api/v4/internal/kubernetes/agent_events"})


# --- correlation id ---------------------------------------------------------------------------

_PREFIX = ""
_SEQUENCE = itertools.count(1)


def _new_prefix() -> None:
    """Per process (workers are forked from the launcher, which imported this module): ids are
    unique across the workers, the nodes and the restarts."""
    global _PREFIX, _SEQUENCE
    _PREFIX, _SEQUENCE = secrets.token_hex(6), itertools.count(1)


_new_prefix()
os.register_at_fork(after_in_child=_new_prefix)


def new_correlation_id() -> str:
    """12 random hex digits per process, then a counter: unique without a system call per request."""
    return f"{_PREFIX}{next(_SEQUENCE):08x}"


# The characters Rails keeps of an X-Request-Id (ActionDispatch::RequestId: [\w\-@]), at most 128
_SAFE_REQUEST_ID = re.compile(r"[\w\-@]{1,128}", re.ASCII)


def accepted_correlation_id(value: str | None) -> str | None:
    """The client's X-Request-Id (GitLab Shell, Gitaly and kas send one) if it is a sane token.

    It is echoed and written into every log line of the request, so a value that looks like a
    credential (a `glpat-` token; a JWT has dots, which are refused anyway) is replaced too."""
    if value and _SAFE_REQUEST_ID.fullmatch(value) and ("gl" not in value or not BARE_SECRET.search(value)):
        return value
    return None


# --- the request middleware -------------------------------------------------------------------


class _Recorder:
    """The requests of one (route, method, status), counted in plain integers and published to
    prometheus-client's values once a second (publish()).

    Writing the values per request costs ~9 us in multiprocess mode (a lock and an mmap write
    for the counter, the histogram's sum and its bucket, and the /allowed counter); adding to
    these fields costs well under one. The price: a worker killed outright loses at most the
    last second of its counts (a normal exit publishes them).
    """

    __slots__ = ("count", "total", "buckets", "_counter", "_histogram", "_extra")

    def __init__(self, labels: tuple[str, str, str], extra: Any) -> None:
        self.count = 0
        self.total = 0.0
        self.buckets = [0] * (len(BUCKETS) + 1)  # the last one: +Inf
        self._counter = HTTP_REQUESTS.labels(*labels)
        self._histogram = HTTP_DURATION.labels(*labels)
        self._extra = extra

    def publish(self) -> None:
        count, self.count = self.count, 0
        if not count:
            return
        total, self.total = self.total, 0.0
        buckets, self.buckets = self.buckets, [0] * len(self.buckets)
        self._counter.inc(count)
        # Histogram.observe() once per request would write the sum and a bucket each time: here
        # they are written once per interval (prometheus-client keeps non-cumulative buckets).
        self._histogram._sum.inc(total)
        for index, hits in enumerate(buckets):
            if hits:
                self._histogram._buckets[index].inc(hits)
        if self._extra is not None:
            self._extra.inc(count)


class _Deferred:
    """One counter child, counted in a plain integer and handed to prometheus-client with the
    request counts (publish()): the same ~3 us per increment saved as _Recorder's."""

    __slots__ = ("pending", "_child")

    def __init__(self, child: Any) -> None:
        self.pending = 0
        self._child = child
        _deferred.append(self)

    def inc(self) -> None:
        self.pending += 1

    def publish(self) -> None:
        pending, self.pending = self.pending, 0
        if pending:
            self._child.inc(pending)


_recorders: dict[tuple[object, str, int], _Recorder] = {}
_deferred: list[_Deferred] = []


def _new_recorder(resource: Any, method: str, status: int) -> _Recorder:
    template = (resource.canonical if resource is not None else "") or "unmatched"
    method = method if method in _METHODS else "other"
    extra = None
    if template == ALLOWED_ROUTE:
        extra = ALLOWED.labels(str(status))
    elif template in USAGE_ROUTES and status == 204:
        extra = USAGE_REPORTS.labels(template)
    return _Recorder((method, template, str(status)), extra)


def publish() -> None:
    """Hand the counts gathered since the last call to prometheus-client (scrapes see them): once
    a second by each worker's publisher (metrics_publisher_ctx), and before every scrape."""
    _count_observed()
    for recorder in list(_recorders.values()):
        recorder.publish()
    for counter in _deferred:
        counter.publish()


# The requests answered since they were last counted: (route, method, status, seconds) each.
# Appending costs a request one call; counting them here, many in one loop, keeps the counting
# code and its tables in the caches, where per request it cost ~5,600 instructions
# (bench/instructions.py, service_floor without it).
_observed: list[tuple[AbstractRoute, str, int, float]] = []
OBSERVED_BATCH = 1024  # counted at once past this many (~0.4 ms), so that the list stays small between publishes


def record_request(route: AbstractRoute, method: str, status: int, seconds: float) -> None:
    _observed.append((route, method, status, seconds))
    if len(_observed) >= OBSERVED_BATCH:
        _count_observed()


def _count_observed() -> None:
    observed = _observed[:]
    del _observed[:]  # the same list: record_request appends to it without a global statement
    for index, (route, method, status, seconds) in enumerate(observed):
        key = (route, method, status)
        recorder = _recorders.get(key)
        if recorder is None:
            try:
                if len(_recorders) > 10_000:  # unknown methods are one label; never grow without bound
                    for kept in _recorders.values():
                        kept.publish()
                    _recorders.clear()
                recorder = _recorders[key] = _new_recorder(route.resource, method, status)
            except BaseException:
                # prometheus-client's files could not be written (a full disk): this observation is
                # lost, as it was when each request counted itself; the ones after it are kept
                _observed[:0] = observed[index + 1 :]
                raise
        recorder.count += 1
        recorder.total += seconds
        recorder.buckets[bisect_left(BUCKETS, seconds)] += 1  # "le": the first bound >= seconds


# --- domain outcomes --------------------------------------------------------------------------


# labels() takes a lock and builds a key on every call; every push calls these twice
_COUNTER_OPERATIONS = {
    (operation, ok): _Deferred(REFERENCE_COUNTER.labels(operation, "ok" if ok else "failed"))
    for operation in ("increase", "decrease")
    for ok in (True, False)
}


class MeteredReferenceCounter(ReferenceCounter):
    """The reference counter, counting its operations and their failures (Redis did not confirm)."""

    async def increase(self, gl_repository: str) -> bool:
        increased = await super().increase(gl_repository)
        _COUNTER_OPERATIONS["increase", increased].inc()
        return increased

    async def decrease(self, gl_repository: str, user_id: int | None, project_id: int | None) -> Decrease:
        decrease = await super().decrease(gl_repository, user_id, project_id)
        _COUNTER_OPERATIONS["decrease", decrease.decreased].inc()
        return decrease


_RATE_LIMITED = _Deferred(RATE_LIMITED)


class MeteredLimiter(ShellOperationLimiter):
    """The gitlab_shell_operation limiter, counting the operations it refuses."""

    async def throttled(self, threshold: int, action: str, project: str, actor: str) -> bool:
        refused = await super().throttled(threshold, action, project, actor)
        if refused:
            _RATE_LIMITED.inc()
        return refused


def count_redis_errors(store: RedisStore) -> None:
    """Count every failure the store records (it logs them only once per change of state).

    The store calls record_failure() for each failed command, whatever the topology; this wraps
    that one method of this one instance, so no other Redis code needs to know about metrics.
    """
    record_failure = store.record_failure

    def counted(exc: Exception) -> None:
        REDIS_ERRORS.labels(type(exc).__name__).inc()
        record_failure(exc)

    store.record_failure = counted  # type: ignore[method-assign]


async def metrics_publisher_ctx(app: web.Application) -> AsyncIterator[None]:
    """Once a second each worker publishes its pool's state (a gauge per process, summed by the
    scrape) and the counts gathered since the last time (publish())."""
    from service import app_keys

    def sample_pool() -> None:
        pool = app.get(app_keys.DB_POOL)
        if pool is not None:
            size = pool.get_size()
            POOL_SIZE.set(size)
            POOL_IN_USE.set(size - pool.get_idle_size())
            # asyncpg has no public count of waiters: its free connections are an asyncio.Queue
            queue = getattr(pool, "_queue", None)
            POOL_WAITING.set(len(getattr(queue, "_getters", ())))

    async def every_second() -> None:
        failing = False
        while True:
            try:
                sample_pool()
                publish()
            except Exception:  # noqa: BLE001 (the metrics files: a full disk must not stop the counting)
                if not failing:
                    log.exception("could not publish the metrics")
                failing = True
            else:
                failing = False
            await asyncio.sleep(PUBLISH_SECONDS)

    task = asyncio.create_task(every_second())
    try:
        yield
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        finally:
            publish()  # a worker leaving normally keeps its last second of request counts


# --- GET /-/metrics ---------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricsAccess:
    """Who may scrape: GitLab's monitoring.ip_whitelist, or a bearer token from a file."""

    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    token: bytes | None

    @classmethod
    def from_settings(cls, networks: Iterable[str], token_file: Path | None) -> MetricsAccess:
        token = token_file.read_bytes().strip() if token_file is not None else None
        return cls(tuple(ipaddress.ip_network(n.strip(), strict=False) for n in networks), token or None)

    def allows(self, remote: str | None, headers: Mapping[str, str]) -> bool:
        if self.token is not None:
            scheme, _, given = headers.get("Authorization", "").partition(" ")
            if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self.token):
                return True
        if not remote:
            return False
        try:
            address = ipaddress.ip_address(remote.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)


def exposition() -> tuple[bytes, str]:
    """The metrics of every worker (multiprocess) or of this process, in the text format.

    This worker's counts are exact to the request; the others' are at most a second old.
    """
    publish()
    if os.environ.get(MULTIPROC_VARIABLE):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def worker_exited(pid: int) -> None:
    """gunicorn's child_exit: the dead worker's live gauges leave the sums."""
    if os.environ.get(MULTIPROC_VARIABLE):
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
