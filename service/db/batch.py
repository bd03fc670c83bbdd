"""Coalesce the lookups of concurrent requests into one query (the DataLoader pattern).

Under load, GitLab Shell and Gitaly send many requests at once; each used to cost its own round
trip to PostgreSQL, and on loopback a round trip costs more CPU than the rest of the request. A
BatchLoader collects the lookups made during one event-loop iteration and runs a single query over
arrays of their parameters (`unnest(...) WITH ORDINALITY` and a LATERAL join in SQL); each caller
gets its own row back. A lone request waits for nothing: its batch is dispatched on the very next
loop iteration. Queries that write are not batched, except the last-used stamps (idempotent) and the
post_receive job insert (every job or none, see below).

A loader may also remember its answers for a fraction of a second (`remember_seconds`). A key, a
user or a membership read by GitLab's hot paths changes rarely, but the same key or project is
looked up many times a second under load; remembering turns those lookups into a dict hit. The
bound is what matters to security: an answer is kept at most `remember_seconds` after its query was
*sent*, so a key revoked (a user blocked, a member removed) at time T is refused by every worker of
every node from T + remember_seconds on, with no invalidation channel to keep. `remember` chooses
which answers are kept (e.g. not "no such project", which a push may create the next moment).

A loader that writes may instead keep one statement in flight at a time (`one_at_a_time`): the
requests that arrive while it runs wait for it to finish and go together in the next one (group
commit), in the order they came. The post_receive job insert is such a write: procrastinate's
NOTIFY makes PostgreSQL take one server-wide lock at each commit that notifies, held through the
WAL flush, so concurrent inserts commit one after another anyway; sent one at a time they wait
little longer, and there are fewer, larger ones (bench/job_insert.py: a job costs less in larger
batches). The price: a statement that hangs holds up the worker's next ones until asyncpg's
command_timeout fails it. Callers that gave up (their future cancelled) while waiting are not sent.

A batch is many requests' values in one statement, so one value PostgreSQL refuses (a NUL byte
for jsonb, a number out of range) would fail all of them with its 400. When a statement fails that
way its keys are sent again in two halves, and so on down to the key that fails alone: only that
key's callers see the error, the others get their answers (and their jobs are queued). This needs
`fetch_many` to be one statement (or one transaction): a statement that failed wrote nothing.
Callers that gave up meanwhile are not sent again, and a failure that is not a value's (the
database went away) fails the keys not yet sent instead of being tried once per half.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any, Generic, TypeVar
from service.db.pool import REFUSED_VALUE_ERRORS
from service.db.rows import Pool

K = TypeVar("K")
V = TypeVar("V")

FetchMany = Callable[[Any, Sequence[K]], Awaitable[Sequence[V]]]


class BatchLoader(Generic[K, V]):
    # The most answers kept (about a second's lookups of a busy worker): an /allowed context is
    # ~2.5 kB, so at most ~25 MB per loader whatever the traffic. Past it, all are dropped.
    MAX_REMEMBERED = 10_000

    def __init__(
        self,
        pool: Pool,
        fetch_many: FetchMany[K, V],
        max_batch: int = 256,
        *,
        remember_seconds: float = 0.0,
        remember: Callable[[V], bool] = lambda answer: True,
        one_at_a_time: bool = False,
    ) -> None:
        self.pool = pool
        self.fetch_many = fetch_many
        self.max_batch = max_batch
        self.remember_seconds = remember_seconds
        self.remember = remember
        self.one_at_a_time = one_at_a_time
        # key -> (keep until, answer), in the order kept, so the oldest expire first
        self._remembered: dict[K, tuple[float, V]] = {}
        # key -> when this worker forgot it: answers to queries sent before then are not kept
        self._forgotten: dict[K, float] = {}
        self._pending: list[tuple[K, asyncio.Future[V]]] = []
        self._scheduled = False
        self._running: set[asyncio.Task[None]] = set()
        # asyncio.get_running_loop() costs a getpid() system call per call in Python 3.11
        self._loop: asyncio.AbstractEventLoop | None = None

    def submit(self, key: K) -> asyncio.Future[V]:
        """Queue a lookup and return its future at once: the caller can start other I/O (a Redis
        command) before awaiting it, with no task or gather() per request."""
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        future: asyncio.Future[V] = loop.create_future()
        if self.remember_seconds > 0 and (hit := self._live(key)) is not None:
            future.set_result(hit[1])
            return future
        self._pending.append((key, future))
        if not self._scheduled and not (self.one_at_a_time and self._running):
            self._scheduled = True
            loop.call_soon(self._dispatch)
        return future

    async def load(self, key: K) -> V:
        if self.remember_seconds > 0 and (hit := self._live(key)) is not None:
            return hit[1]  # no future, no await: the common case under load
        return await self.submit(key)

    def _live(self, key: K) -> tuple[float, V] | None:
        """The remembered answer if it is still within its bound (expired ones are swept in _keep)."""
        hit = self._remembered.get(key)
        return hit if hit is not None and hit[0] > time.monotonic() else None

    def forget(self, key: K) -> None:
        """Drop a remembered answer this worker has just made wrong (it wrote the row itself), and
        refuse the answers of queries already in flight, which may have read the row before."""
        self._remembered.pop(key, None)
        if self.remember_seconds > 0:
            self._forgotten[key] = time.monotonic()

    def _dispatch(self) -> None:
        self._scheduled = False
        if self.one_at_a_time:
            if self._running or not self._pending:
                return  # _finished dispatches the next batch
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            self._start(batch)
            return
        pending, self._pending = self._pending, []
        for start in range(0, len(pending), self.max_batch):
            self._start(pending[start : start + self.max_batch])

    def _start(self, batch: list[tuple[K, asyncio.Future[V]]]) -> None:
        assert self._loop is not None
        task = self._loop.create_task(self._run(batch))
        self._running.add(task)  # keep a reference until it finishes

        def finished(task: asyncio.Task[None]) -> None:
            if task.cancelled():  # possibly before its first step (at shutdown): nobody answered them
                _fail(batch, RuntimeError("batch cancelled"))
            self._finished(task)

        task.add_done_callback(finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if self.one_at_a_time and self._pending:
            self._dispatch()  # what arrived while it ran, at once: those callers have waited already

    async def _run(self, batch: list[tuple[K, asyncio.Future[V]]]) -> None:
        # Measured before the query is sent: the answer may be older than its arrival, not newer.
        keep_until = time.monotonic() + self.remember_seconds
        # A remembering loader's callers of one key share its lookup; writes stay apart.
        groups: dict[Any, list[tuple[K, asyncio.Future[V]]]] = {}
        for index, item in enumerate(batch):
            groups.setdefault(item[0] if self.remember_seconds > 0 else index, []).append(item)
        await self._send(list(groups.values()), keep_until)

    async def _send(self, groups: list[list[tuple[K, asyncio.Future[V]]]], keep_until: float) -> Exception | None:
        """One statement for these groups of callers, or, when PostgreSQL refused a value in it, one
        for each half (a bad value among N keys costs about 2·log2(N) statements, not N). Returns
        the failure that is not a value's (the database went away), which the rest is not sent into."""
        groups = [group for group in groups if any(not future.done() for _, future in group)]  # gave up
        if not groups:
            return None
        outcome = await self._answer([item for group in groups for item in group], keep_until, len(groups) > 1)
        if not isinstance(outcome, _Split):
            return outcome
        middle = len(groups) // 2
        failure = await self._send(groups[:middle], keep_until)
        if failure is not None:
            _fail([item for group in groups[middle:] for item in group], failure)
            return failure
        return await self._send(groups[middle:], keep_until)

    async def _answer(
        self, batch: list[tuple[K, asyncio.Future[V]]], keep_until: float, split_refused: bool
    ) -> Exception | _Split | None:
        """One statement for the batch's keys; every caller gets its answer or the statement's error.
        Returns that error unless it is a refused value's, and _SPLIT instead, the callers untouched,
        when PostgreSQL refused a value of several keys and `split_refused`."""
        keys = [key for key, _ in batch]
        if self.remember_seconds > 0:
            # A loader that remembers is a read: callers of the same key share one lookup (a burst
            # of the same key before the first answer is remembered). Writes are never merged.
            keys = list(dict.fromkeys(keys))
        try:
            async with self.pool.acquire() as conn:
                results = await self.fetch_many(conn, keys)
        except BaseException as exc:  # every caller of the batch sees the failure
            refused = isinstance(exc, REFUSED_VALUE_ERRORS)
            if refused and split_refused and len(keys) > 1:
                return _SPLIT
            _fail(batch, exc if isinstance(exc, Exception) else RuntimeError("batch cancelled"))
            if not isinstance(exc, Exception):
                raise
            return None if refused else exc
        if len(results) != len(keys):
            error = RuntimeError(f"batched query returned {len(results)} rows for {len(keys)} lookups")
            _fail(batch, error)
            return error
        if self.remember_seconds > 0:
            answers = dict(zip(keys, results))
            self._keep(answers.items(), keep_until)
            for key, future in batch:
                if not future.done():
                    future.set_result(answers[key])
            return None
        for (_, future), result in zip(batch, results):
            if not future.done():
                future.set_result(result)
        return None

    def _keep(self, answers: Collection[tuple[K, V]], keep_until: float) -> None:
        remembered, forgotten = self._remembered, self._forgotten
        now = time.monotonic()
        # Entries are in the order kept, so the expired ones are at the front: dropping a few more
        # than are added keeps the memory at what was looked up within the last remember_seconds.
        expired: list[K] = []
        for key, (until, _) in remembered.items():
            if until > now or len(expired) > len(answers):
                break
            expired.append(key)
        for key in expired:
            del remembered[key]
        if len(remembered) + len(answers) > self.MAX_REMEMBERED:
            remembered.clear()
        if forgotten:
            sent = keep_until - self.remember_seconds
            for key in [key for key, at in forgotten.items() if at < now - self.remember_seconds]:
                del forgotten[key]  # every query sent before it has expired by now
        else:
            sent = 0.0
        for key, answer in answers:
            if not self.remember(answer) or forgotten.get(key, -1.0) >= sent:
                continue
            previous = remembered.pop(key, None)
            if previous is not None and previous[0] > keep_until:
                # a later query already answered: a slower, older one must not replace it
                remembered[key] = previous
                continue
            remembered[key] = (keep_until, answer)


class _Split:
    """_answer's outcome when a value was refused: send the batch again in halves."""


_SPLIT = _Split()


def _fail(batch: Collection[tuple[Any, asyncio.Future[Any]]], error: Exception) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(error)
