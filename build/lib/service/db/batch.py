"""Coalesce the lookups of concurrent requests into one query (the DataLoader pattern).

Under load, GitLab Shell and Gitaly send many requests at once; each used to cost its own round
trip to PostgreSQL, and on loopback a round trip costs more CPU than the rest of the request. A
BatchLoader collects the lookups made during one event-loop iteration and runs a single query over
arrays of their parameters (`unnest(...) WITH ORDINALITY` and a LATERAL join in SQL); each caller
gets its own row back. A lone request waits for nothing: its batch is dispatched on the very next
loop iteration. Queries that write (beyond the idempotent last-used stamps) are never batched.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")

FetchMany = Callable[[Any, Sequence[K]], Awaitable[Sequence[V]]]


class BatchLoader(Generic[K, V]):
    def __init__(self, pool: Any, fetch_many: FetchMany[K, V], max_batch: int = 256) -> None:
        self.pool = pool
        self.fetch_many = fetch_many
        self.max_batch = max_batch
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
        self._pending.append((key, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._dispatch)
        return future

    async def load(self, key: K) -> V:
        return await self.submit(key)

    def _dispatch(self) -> None:
        self._scheduled = False
        pending, self._pending = self._pending, []
        for start in range(0, len(pending), self.max_batch):
            assert self._loop is not None
            task = self._loop.create_task(self._run(pending[start : start + self.max_batch]))
            self._running.add(task)  # keep a reference until it finishes
            task.add_done_callback(self._running.discard)

    async def _run(self, batch: list[tuple[K, asyncio.Future[V]]]) -> None:
        try:
            async with self.pool.acquire() as conn:
                results = await self.fetch_many(conn, [key for key, _ in batch])
        except BaseException as exc:  # every caller of the batch sees the failure
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc if isinstance(exc, Exception) else RuntimeError("batch cancelled"))
            if not isinstance(exc, Exception):
                raise
            return
        if len(results) != len(batch):
            error = RuntimeError(f"batched query returned {len(results)} rows for {len(batch)} lookups")
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        for (_, future), result in zip(batch, results):
            if not future.done():
                future.set_result(result)
