"""BatchLoader (service/db/batch.py) against a real PostgreSQL: one query per event-loop turn, and
answers remembered for at most `remember_seconds` after their query was sent."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence

import asyncpg
import pytest

from service.db.batch import BatchLoader

# One row per key, in order, from one statement; `pg_backend_pid()` and the statement's start time
# let the tests see which query answered.
LOOKUP = """
SELECT k.name, v.value, statement_timestamp() AS asked_at
FROM unnest($1::text[]) WITH ORDINALITY AS k(name, n)
LEFT JOIN loader_values v ON v.name = k.name
ORDER BY k.n
"""


@pytest.fixture
async def pool(backends) -> AsyncIterator[asyncpg.Pool]:  # type: ignore[no-untyped-def]
    async with asyncpg.create_pool(backends.database_url, min_size=1, max_size=4) as pool:
        async with pool.acquire() as conn:
            await conn.execute("DROP TABLE IF EXISTS loader_values; CREATE TABLE loader_values (name text PRIMARY KEY, value int)")
            await conn.execute("INSERT INTO loader_values VALUES ('a', 1), ('b', 2)")
        yield pool
        async with pool.acquire() as conn:
            await conn.execute("DROP TABLE loader_values")


class Queries:
    """fetch_many for the loader, keeping the key lists it was called with."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    async def __call__(self, conn: asyncpg.Connection, names: Sequence[str]) -> list[int | None]:
        self.calls.append(list(names))
        return [record["value"] for record in await conn.fetch(LOOKUP, list(names))]


async def test_concurrent_lookups_are_one_query_and_each_caller_gets_its_own_answer(pool):
    queries = Queries()
    loader = BatchLoader(pool, queries)
    assert await asyncio.gather(*(loader.load(name) for name in ("a", "b", "missing", "a"))) == [1, 2, None, 1]
    assert queries.calls == [["a", "b", "missing", "a"]]  # nothing remembered, nothing merged


async def test_a_remembering_loader_shares_one_lookup_per_key_and_answers_from_memory(pool):
    queries = Queries()
    loader = BatchLoader(pool, queries, remember_seconds=0.5)
    assert await asyncio.gather(*(loader.load("a") for _ in range(10))) == [1] * 10
    assert await loader.load("a") == 1
    assert queries.calls == [["a"]]


async def test_a_changed_row_is_seen_once_the_remembered_answer_is_older_than_the_bound(pool):
    queries = Queries()
    loader = BatchLoader(pool, queries, remember_seconds=0.3)
    sent = time.monotonic()
    assert await loader.load("a") == 1
    async with pool.acquire() as conn:
        await conn.execute("UPDATE loader_values SET value = 10 WHERE name = 'a'")
    while (answer := await loader.load("a")) == 1:
        assert time.monotonic() - sent < 0.3, "an answer was kept longer than remember_seconds"
        await asyncio.sleep(0.01)
    assert answer == 10 and time.monotonic() - sent >= 0.3 - 0.01


async def test_answers_the_predicate_refuses_are_asked_again_every_time(pool):
    queries = Queries()
    loader = BatchLoader(pool, queries, remember_seconds=10, remember=lambda value: value is not None)
    assert [await loader.load("missing") for _ in range(3)] == [None, None, None]
    assert queries.calls == [["missing"]] * 3


async def test_forget_drops_one_remembered_answer(pool):
    queries = Queries()
    loader = BatchLoader(pool, queries, remember_seconds=10)
    await loader.load("a")
    await loader.load("b")
    loader.forget("a")
    await loader.load("a")
    await loader.load("b")
    assert queries.calls == [["a"], ["b"], ["a"]]


async def test_a_full_memory_drops_what_expired_first_and_never_grows_past_its_bound(pool, monkeypatch):
    monkeypatch.setattr(BatchLoader, "MAX_REMEMBERED", 3)
    loader = BatchLoader(pool, Queries(), remember_seconds=10)
    for name in ("a", "b", "c", "d", "e"):
        await loader.load(name)
        assert len(loader._remembered) <= 3


async def test_a_failed_query_fails_every_caller_and_is_not_remembered(pool):
    calls = 0

    async def failing(conn: asyncpg.Connection, names: Sequence[str]) -> list[int]:
        nonlocal calls
        calls += 1
        await conn.fetch("SELECT * FROM no_such_table")
        return []

    loader = BatchLoader(pool, failing, remember_seconds=10)
    results = await asyncio.gather(loader.load("a"), loader.load("b"), return_exceptions=True)
    assert all(isinstance(r, asyncpg.UndefinedTableError) for r in results)
    with pytest.raises(asyncpg.UndefinedTableError):
        await loader.load("a")
    assert calls == 2


async def test_a_write_loader_never_merges_equal_requests(pool):
    """POST_RECEIVE_JOBS queues a job per push: two equal pushes are two jobs."""
    queries = Queries()
    loader = BatchLoader(pool, queries)
    await asyncio.gather(loader.load("a"), loader.load("a"))
    assert queries.calls == [["a", "a"]]


class Gated:
    """fetch_many whose calls wait for their gate: the tests decide when each query answers."""

    def __init__(self) -> None:
        self.gates: list[asyncio.Event] = []
        self.values = {"a": 1}
        self.calls = 0

    async def __call__(self, conn: asyncpg.Connection, names: Sequence[str]) -> list[int | None]:
        self.calls += 1
        answers = [self.values.get(name) for name in names]  # read when the query is sent
        gate = asyncio.Event()
        self.gates.append(gate)
        await gate.wait()
        return answers

    async def sent(self, count: int) -> None:
        """Until `count` queries have been sent (and wait at their gates)."""
        async with asyncio.timeout(5):
            while len(self.gates) < count:
                await asyncio.sleep(0.001)

    def open_all(self) -> None:
        for gate in self.gates:
            gate.set()


async def test_an_answer_read_before_forget_is_not_remembered_after_it(pool):
    fetch = Gated()
    loader = BatchLoader(pool, fetch, remember_seconds=10)
    try:
        in_flight = asyncio.ensure_future(loader.load("a"))
        await fetch.sent(1)
        fetch.values["a"] = 2
        loader.forget("a")  # this worker wrote the row while the old read was on its way
        fetch.gates[0].set()
        assert await in_flight == 1
        asked_again = asyncio.ensure_future(loader.load("a"))
        await fetch.sent(2)
        fetch.gates[1].set()
        assert await asked_again == 2 and fetch.calls == 2
    finally:
        fetch.open_all()


async def test_a_slow_older_answer_does_not_replace_a_newer_one(pool):
    fetch = Gated()
    loader = BatchLoader(pool, fetch, remember_seconds=10)
    try:
        older = asyncio.ensure_future(loader.load("a"))
        await fetch.sent(1)
        fetch.values["a"] = 2  # changed elsewhere: this worker knows nothing of it
        newer = asyncio.ensure_future(loader.load("a"))
        await fetch.sent(2)
        fetch.gates[1].set()
        assert await newer == 2
        fetch.gates[0].set()
        assert await older == 1
        assert await loader.load("a") == 2 and fetch.calls == 2
    finally:
        fetch.open_all()
