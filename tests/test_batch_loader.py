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
            await conn.execute(
                "DROP TABLE IF EXISTS loader_values; CREATE TABLE loader_values (name text PRIMARY KEY, value int)"
            )
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
        self.batches: list[list[str]] = []
        self.fail_first = False

    async def __call__(self, conn: asyncpg.Connection, names: Sequence[str]) -> list[int | None]:
        self.calls += 1
        call = self.calls
        self.batches.append(list(names))
        answers = [self.values.get(name) for name in names]  # read when the query is sent
        gate = asyncio.Event()
        self.gates.append(gate)
        await gate.wait()
        if self.fail_first and call == 1:
            raise asyncpg.PostgresConnectionError("the server closed the connection")
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


async def test_one_at_a_time_sends_what_arrives_during_a_statement_together_after_it(pool):
    """The job insert's group commit: while one statement runs, later writes wait and then go in
    one statement, each caller getting its own answer."""
    fetch = Gated()
    fetch.values.update(b=2, c=3)
    loader = BatchLoader(pool, fetch, one_at_a_time=True)
    try:
        first = asyncio.ensure_future(loader.load("a"))
        await fetch.sent(1)
        later = [asyncio.ensure_future(loader.load(name)) for name in ("b", "c", "a")]
        await asyncio.sleep(0.2)  # an unbounded loader sends them at once, on a second connection
        assert fetch.batches == [["a"]]
        fetch.gates[0].set()
        assert await first == 1
        await fetch.sent(2)
        assert fetch.batches == [["a"], ["b", "c", "a"]]
        fetch.gates[1].set()
        assert await asyncio.gather(*later) == [2, 3, 1]
        alone = asyncio.ensure_future(loader.load("c"))  # idle again: sent at once
        await fetch.sent(3)
        fetch.gates[2].set()
        assert await alone == 3 and fetch.batches[2:] == [["c"]]
    finally:
        fetch.open_all()


async def test_one_at_a_time_a_failed_statement_fails_its_callers_only_and_the_next_one_runs(pool):
    fetch = Gated()
    fetch.fail_first = True
    fetch.values.update(b=2)
    loader = BatchLoader(pool, fetch, one_at_a_time=True)
    try:
        first = asyncio.ensure_future(loader.load("a"))
        await fetch.sent(1)
        waiting = asyncio.ensure_future(loader.load("b"))
        fetch.gates[0].set()
        with pytest.raises(asyncpg.PostgresConnectionError):
            await first
        await fetch.sent(2)
        fetch.gates[1].set()
        assert await waiting == 2
    finally:
        fetch.open_all()


async def test_one_at_a_time_does_not_send_a_caller_that_gave_up_while_it_waited(pool):
    """A post_receive whose client went away before its turn queues no job (Gitaly's retry will)."""
    fetch = Gated()
    fetch.values.update(b=2)
    loader = BatchLoader(pool, fetch, one_at_a_time=True)
    try:
        first = asyncio.ensure_future(loader.load("a"))
        await fetch.sent(1)
        gave_up = loader.submit("c")
        stays = asyncio.ensure_future(loader.load("b"))
        gave_up.cancel()
        fetch.gates[0].set()
        await first
        await fetch.sent(2)
        fetch.gates[1].set()
        assert await stays == 2
        assert fetch.batches == [["a"], ["b"]]
    finally:
        fetch.open_all()


async def test_one_at_a_time_splits_a_backlog_into_statements_of_at_most_max_batch(pool):
    queries = Queries()
    loader = BatchLoader(pool, queries, max_batch=2, one_at_a_time=True)
    assert await asyncio.gather(*(loader.load(name) for name in ("a", "b", "a", "missing", "b"))) == [1, 2, 1, None, 2]
    assert queries.calls == [["a", "b"], ["a", "missing"], ["b"]]


class Ids:
    """fetch_many over bigint keys given as text: a key out of bigint's range is refused by PostgreSQL
    (numeric_value_out_of_range, a DataError), as an out-of-range project id in a gl_repository is."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    async def __call__(self, conn: asyncpg.Connection, keys: Sequence[str]) -> list[int]:
        self.calls.append(list(keys))
        rows = await conn.fetch("SELECT k::bigint * 10 AS v FROM unnest($1::text[]) WITH ORDINALITY AS t(k, n) ORDER BY n", keys)
        return [row["v"] for row in rows]


TOO_BIG = str(2**63)


@pytest.mark.parametrize("remember_seconds", [0.0, 0.5])
async def test_a_value_postgresql_refuses_fails_only_its_own_callers(pool, remember_seconds):
    """One request's bad value must not turn the concurrent requests batched with it into 400s."""
    queries = Ids()
    loader = BatchLoader(pool, queries, remember_seconds=remember_seconds)
    results = await asyncio.gather(
        *(loader.load(key) for key in ("1", TOO_BIG, "2", TOO_BIG)), return_exceptions=True
    )
    assert results[0] == 10 and results[2] == 20
    assert isinstance(results[1], asyncpg.DataError) and isinstance(results[3], asyncpg.DataError)
    # sent again in halves down to the bad key
    if remember_seconds:  # the two callers of the bad key share its one lookup
        assert queries.calls == [["1", TOO_BIG, "2"], ["1"], [TOO_BIG, "2"], [TOO_BIG], ["2"]]
        assert await loader.load("1") == 10 and len(queries.calls) == 5  # the good answers were remembered
    else:
        assert queries.calls == [["1", TOO_BIG, "2", TOO_BIG], ["1", TOO_BIG], ["1"], [TOO_BIG], ["2", TOO_BIG],
                                 ["2"], [TOO_BIG]]


async def test_one_bad_value_among_many_costs_a_few_statements_not_one_per_key(pool):
    queries = Ids()
    loader = BatchLoader(pool, queries)
    keys = [str(n) for n in range(63)] + [TOO_BIG]
    results = await asyncio.gather(*(loader.load(key) for key in keys), return_exceptions=True)
    assert results[:-1] == [n * 10 for n in range(63)] and isinstance(results[-1], asyncpg.DataError)
    assert len(queries.calls) == 1 + 2 * 6  # the batch, then two halves at each of log2(64) levels


async def test_the_halves_are_not_sent_to_callers_that_gave_up_nor_into_a_database_that_went_away(pool):
    class GoneAfterTheFirst(Ids):
        async def __call__(self, conn: asyncpg.Connection, keys: Sequence[str]) -> list[int]:
            if self.calls:
                self.calls.append(list(keys))
                raise ConnectionRefusedError("the database went away")
            return await super().__call__(conn, keys)

    queries = GoneAfterTheFirst()
    loader = BatchLoader(pool, queries)
    results = await asyncio.gather(*(loader.load(key) for key in ("1", "2", "3", TOO_BIG)), return_exceptions=True)
    assert all(isinstance(result, ConnectionRefusedError) for result in results)
    assert queries.calls == [["1", "2", "3", TOO_BIG], ["1", "2"]]  # the second half was not sent

    class HeldUntilOneGaveUp(Ids):
        """The first statement waits until a caller gave up while it was on its way (a fast
        machine answered it, and split the batch, before the caller's cancel came)."""

        def __init__(self) -> None:
            super().__init__()
            self.sent, self.go_on = asyncio.Event(), asyncio.Event()

        async def __call__(self, conn: asyncpg.Connection, keys: Sequence[str]) -> list[int]:
            if not self.calls:
                self.sent.set()
                await self.go_on.wait()
            return await super().__call__(conn, keys)

    queries = HeldUntilOneGaveUp()
    loader = BatchLoader(pool, queries)
    stays, gives_up, bad = loader.submit("1"), loader.submit("2"), loader.submit(TOO_BIG)
    async with asyncio.timeout(5):
        await queries.sent.wait()
    gives_up.cancel()
    queries.go_on.set()
    assert await stays == 10
    with pytest.raises(asyncpg.DataError):
        await bad
    assert queries.calls == [["1", "2", TOO_BIG], ["1"], [TOO_BIG]]  # "2" is not sent again


async def test_one_at_a_time_a_refused_value_queues_every_other_write_of_its_statement(pool):
    """The post_receive job insert: a NUL byte jsonb cannot hold fails that push alone; the other
    pushes of its statement are queued, once each."""
    async with pool.acquire() as conn:
        await conn.execute("DROP TABLE IF EXISTS loader_jobs; CREATE TABLE loader_jobs (args jsonb)")

    async def insert(conn: asyncpg.Connection, payloads: Sequence[str]) -> list[bool]:
        await conn.execute("INSERT INTO loader_jobs SELECT unnest($1::text[])::jsonb", payloads)
        return [True] * len(payloads)

    loader = BatchLoader(pool, insert, one_at_a_time=True)
    try:
        payloads = ['{"n": 1}', '{"n": "\\u0000"}', '{"n": 2}', '{"n": 3}']
        results = await asyncio.gather(*(loader.load(p) for p in payloads), return_exceptions=True)
        assert results[0] is True and results[2:] == [True, True]
        assert isinstance(results[1], asyncpg.DataError)
        async with pool.acquire() as conn:
            assert sorted(await conn.fetchval("SELECT array_agg((args->>'n')::int) FROM loader_jobs")) == [1, 2, 3]
    finally:
        async with pool.acquire() as conn:
            await conn.execute("DROP TABLE loader_jobs")


async def test_a_batch_cancelled_before_it_ran_fails_its_callers_instead_of_leaving_them_waiting(pool):
    """At shutdown the loop cancels every task, possibly before a batch's first step."""
    loader = BatchLoader(pool, Queries())
    waiting = loader.submit("a")
    await asyncio.sleep(0)  # the batch's task is created, not yet run
    (task,) = loader._running
    task.cancel()
    async with asyncio.timeout(5):
        with pytest.raises(RuntimeError, match="batch cancelled"):
            await waiting
