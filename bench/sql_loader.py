"""What aiosql's asyncpg adapter costs per query, against calling asyncpg directly as the service does.

The decision it backs: the service loads its named SQL with its own loader (service/db/queries.py)
and calls `await conn.fetchrow(SQL, *args)` itself, instead of calling aiosql's generated functions
(`await queries.name(conn, *args)`), although the house style prefers a well-kept library. aiosql
15.0 wraps every call in `MaybeAcquire`, which evaluates `"acquire" in dir(conn)` (a sorted list of
every attribute, built per query), and that is CPU on the hottest paths, whose whole request has a
budget of about 25 µs of CPU. Rerun it when aiosql or asyncpg changes, or when the budget does:

    .venv/bin/python bench/sql_loader.py [--database-url URL] [--rounds 9] [--calls 3000]

aiosql is not a run-time dependency of the service; it is in the test set (requirements/dev.lock,
tests/test_sql_files.py loads service/sql with it), so dev.py's venv has it. Without it the script
says so and exits 2. It needs a PostgreSQL (default postgresql://postgres@127.0.0.1:5432/postgres)
but no tables: the queries are `SELECT $1::int AS id, 'x'::text AS name` (`^`, one row, the shape of the
hot key and user lookups) and `SELECT $1::int` (`$`, one value).

Method. CPU time (time.process_time: this process only, not PostgreSQL's) per call, over `--calls`
calls after a warm-up, on ONE connection acquired from an asyncpg pool (the PoolConnectionProxy the
service's handlers hold) and on a plain asyncpg connection, under uvloop as the service runs. Every
round runs every variant once, in an order rotated from round to round; a row shows the median over
the rounds and the range (min-max), because this machine is shared and noisy. "aiosql adds" rows are
the per-round difference aiosql minus direct (paired within a round), median and range. The pure
Python rows take the round trip away: `"acquire" in dir(...)` on the real proxy and connection, and
one call through aiosql's generated function and adapter against a stub connection whose attributes
are those of the real one and whose fetchrow/fetchval return at once, beside the same direct call on
that stub. The garbage collector is off inside each timed batch (collected before it).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_BUDGET_US = 25.0  # CPU of one whole request on the hottest path (bench/run.py's targets)

ROW_SQL = "SELECT $1::int AS id, 'x'::text AS name"
VALUE_SQL = "SELECT $1::int"
# The same statements as aiosql reads them: a name, its shape marker, a comment, the statement.
AIOSQL_TEXT = f"""
-- name: find_row^
-- One row or none: the shape of the hot key and user lookups.
{ROW_SQL};

-- name: find_value$
-- One value.
{VALUE_SQL};
"""


@dataclass(frozen=True)
class Summary:
    median: float
    low: float
    high: float

    def cells(self) -> str:
        return f"{self.median:9.2f}  {self.low:7.2f} - {self.high:<7.2f}"


def summarize(samples: Sequence[float]) -> Summary:
    """Median and range of per-call microseconds, one sample a round."""
    if not samples:
        raise ValueError("no samples")
    return Summary(statistics.median(samples), min(samples), max(samples))


def paired_differences(extra: Sequence[float], base: Sequence[float]) -> list[float]:
    """Round by round, what `extra` costs beyond `base` (both measured in the same round)."""
    if len(extra) != len(base):
        raise ValueError("the variants ran a different number of rounds")
    return [e - b for e, b in zip(extra, base, strict=True)]


def verdict(added_us: float, budget_us: float) -> str:
    share = 100.0 * added_us / budget_us
    return f"aiosql adds {added_us:.1f} µs CPU per query ({share:.0f} % of a {budget_us:g} µs request budget)"


# --- timing -----------------------------------------------------------------------------------------


def _cpu_us_per_call(run: Callable[[int], None], calls: int) -> float:
    gc.collect()
    gc.disable()
    try:
        start = time.process_time()
        run(calls)
        elapsed = time.process_time() - start
    finally:
        gc.enable()
    return elapsed / calls * 1e6


async def _acpu_us_per_call(run: Callable[[int], Awaitable[None]], calls: int) -> float:
    gc.collect()
    gc.disable()
    try:
        start = time.process_time()
        await run(calls)
        elapsed = time.process_time() - start
    finally:
        gc.enable()
    return elapsed / calls * 1e6


def _drive(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never suspends (a stub connection's) to its end, without a loop."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    raise RuntimeError("the stub suspended")


def _stub_like(real: object, name: str) -> object:
    """An object whose dir() lists what the real connection's does, whose queries return at once."""

    async def fetchrow(self: object, sql: str, *args: Any) -> Any:
        return None

    async def fetchval(self: object, sql: str, *args: Any) -> Any:
        return None

    names = {attr: None for attr in dir(real) if not attr.startswith("__")}
    names.pop("acquire", None)  # neither asyncpg's Connection nor its pool proxy has one
    cls = type(name, (), {**names, "fetchrow": fetchrow, "fetchval": fetchval})
    return cls()


# --- variants -----------------------------------------------------------------------------------------


def _round_trip_variants(queries: Any, conns: dict[str, Any]) -> dict[str, Callable[[int], Awaitable[None]]]:
    from aiosql.adapters import asyncpg as adapter

    class NoDirTest(adapter.MaybeAcquire):  # type: ignore[misc]
        """MaybeAcquire for a caller that never passes a pool: the connection as it is."""

        async def __aenter__(self) -> Any:
            self._managed_conn = None
            return self.client

    variants: dict[str, Callable[[int], Awaitable[None]]] = {}
    proxy = conns["pool proxy"]

    # Attribution, on the pool proxy only: the dir() test alone, and aiosql without it.
    async def direct_row_dir(calls: int) -> None:
        for i in range(calls):
            "acquire" in dir(proxy)  # noqa: B015
            await proxy.fetchrow(ROW_SQL, i)

    async def aiosql_row_no_dir(calls: int) -> None:
        original = adapter.MaybeAcquire
        adapter.MaybeAcquire = NoDirTest
        try:
            for i in range(calls):
                await queries.find_row(proxy, i)
        finally:
            adapter.MaybeAcquire = original

    for where, conn in conns.items():

        async def direct_row(calls: int, conn: Any = conn) -> None:
            for i in range(calls):
                await conn.fetchrow(ROW_SQL, i)

        async def aiosql_row(calls: int, conn: Any = conn) -> None:
            for i in range(calls):
                await queries.find_row(conn, i)

        async def direct_value(calls: int, conn: Any = conn) -> None:
            for i in range(calls):
                await conn.fetchval(VALUE_SQL, i)

        async def aiosql_value(calls: int, conn: Any = conn) -> None:
            for i in range(calls):
                await queries.find_value(conn, i)

        variants[f"{where} ^ direct conn.fetchrow"] = direct_row
        variants[f"{where} ^ aiosql queries.find_row"] = aiosql_row
        variants[f"{where} $ direct conn.fetchval"] = direct_value
        variants[f"{where} $ aiosql queries.find_value"] = aiosql_value
    variants['pool proxy ^ direct + "acquire" in dir(conn)'] = direct_row_dir
    variants["pool proxy ^ aiosql, dir() test taken out"] = aiosql_row_no_dir
    return variants


def _pure_variants(queries: Any, conns: dict[str, Any]) -> dict[str, Callable[[int], None]]:
    variants: dict[str, Callable[[int], None]] = {}
    for where, conn in conns.items():
        stub = _stub_like(conn, f"{where.strip()}_stub")

        def acquire_test(calls: int, conn: Any = conn) -> None:
            for _ in range(calls):
                "acquire" in dir(conn)  # noqa: B015  # MaybeAcquire.__aenter__'s test, the measured cost

        def direct_stub(calls: int, stub: Any = stub) -> None:
            for i in range(calls):
                _drive(stub.fetchrow(ROW_SQL, i))

        def aiosql_row_stub(calls: int, stub: Any = stub) -> None:
            for i in range(calls):
                _drive(queries.find_row(stub, i))

        def aiosql_value_stub(calls: int, stub: Any = stub) -> None:
            for i in range(calls):
                _drive(queries.find_value(stub, i))

        variants[f'{where} "acquire" in dir(conn)'] = acquire_test
        variants[f"{where} ^ direct call, stub conn"] = direct_stub
        variants[f"{where} ^ aiosql call, stub conn"] = aiosql_row_stub
        variants[f"{where} $ aiosql call, stub conn"] = aiosql_value_stub
    return variants


async def _measure(args: argparse.Namespace, aiosql: Any) -> int:
    import asyncpg

    # The service's SQL names no parameter list and passes $1.. positionally; aiosql allows it so.
    queries = aiosql.from_str(AIOSQL_TEXT, "asyncpg", kwargs_only=False, mandatory_parameters=False)
    try:
        plain = await asyncpg.connect(args.database_url)
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"cannot connect to {args.database_url}: {exc}", file=sys.stderr)
        return 1
    try:
        async with asyncpg.create_pool(args.database_url, min_size=1, max_size=1) as pool:
            async with pool.acquire() as proxy:
                conns = {"pool proxy": proxy, "plain conn": plain}
                trips = _round_trip_variants(queries, conns)
                pure = _pure_variants(queries, conns)
                for run in trips.values():  # warm-up: statement caches, code paths, the allocator
                    await run(args.warmup)
                for call in pure.values():
                    call(args.warmup)
                trip_samples: dict[str, list[float]] = {name: [] for name in trips}
                pure_samples: dict[str, list[float]] = {name: [] for name in pure}
                for round_ in range(args.rounds):
                    names = list(trips)
                    shift = round_ % len(names)
                    for name in names[shift:] + names[:shift]:
                        trip_samples[name].append(await _acpu_us_per_call(trips[name], args.calls))
                    names = list(pure)
                    shift = round_ % len(names)
                    for name in names[shift:] + names[:shift]:
                        pure_samples[name].append(_cpu_us_per_call(pure[name], args.pure_calls))
    finally:
        await plain.close()
    _report(args, aiosql, trip_samples, pure_samples)
    return 0


def _report(
    args: argparse.Namespace,
    aiosql: Any,
    trips: dict[str, list[float]],
    pure: dict[str, list[float]],
) -> None:
    import asyncpg

    print(
        f"aiosql {aiosql.__version__}, asyncpg {asyncpg.__version__}, Python {sys.version.split()[0]}, "
        f"{type(asyncio.get_running_loop()).__module__.split('.')[0]} loop; "
        f"{args.rounds} rounds x {args.calls} calls (pure: {args.pure_calls})"
    )
    header = f"{'CPU µs per call':52} {'median':>9}  {'range (min - max)':<17}"
    print(header)
    print("-" * len(header))
    print("with the round trip to PostgreSQL")
    for name, samples in trips.items():
        print(f"  {name:50} {summarize(samples).cells()}")
    for where in ("pool proxy", "plain conn"):
        for shape, direct, wrapped in (
            ("^", "direct conn.fetchrow", "aiosql queries.find_row"),
            ("$", "direct conn.fetchval", "aiosql queries.find_value"),
        ):
            added = paired_differences(trips[f"{where} {shape} {wrapped}"], trips[f"{where} {shape} {direct}"])
            print(f"  {where + ' ' + shape + ' aiosql adds (paired per round)':50} {summarize(added).cells()}")
    print("pure Python (no round trip)")
    for name, samples in pure.items():
        print(f"  {name:50} {summarize(samples).cells()}")
    for where in ("pool proxy", "plain conn"):
        added = paired_differences(pure[f"{where} ^ aiosql call, stub conn"], pure[f"{where} ^ direct call, stub conn"])
        print(f"  {where + ' ^ aiosql adds (paired per round)':50} {summarize(added).cells()}")
    added_proxy = summarize(
        paired_differences(trips["pool proxy ^ aiosql queries.find_row"], trips["pool proxy ^ direct conn.fetchrow"])
    )
    pure_proxy = summarize(
        paired_differences(pure["pool proxy ^ aiosql call, stub conn"], pure["pool proxy ^ direct call, stub conn"])
    )
    by_dir = summarize(
        paired_differences(
            trips['pool proxy ^ direct + "acquire" in dir(conn)'], trips["pool proxy ^ direct conn.fetchrow"]
        )
    )
    without_dir = summarize(
        paired_differences(
            trips["pool proxy ^ aiosql, dir() test taken out"], trips["pool proxy ^ direct conn.fetchrow"]
        )
    )
    print(f"  {'pool proxy ^ the dir() test adds (paired)':50} {by_dir.cells()}")
    print(f"  {'pool proxy ^ aiosql without it adds (paired)':50} {without_dir.cells()}")
    print()
    print(f"{verdict(added_proxy.median, args.budget_us)}, on a pool connection with the round trip.")
    print(
        f'MaybeAcquire\'s `"acquire" in dir(conn)` alone costs {by_dir.median:.1f} µs between round trips '
        f"({pure_proxy.median:.1f} µs in a tight loop, caches warm); aiosql without that test would add "
        f"{without_dir.median:.1f} µs."
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--rounds", type=int, default=9, help="rounds of every variant (default 9)")
    parser.add_argument("--calls", type=int, default=3000, help="queries a variant a round (default 3000)")
    parser.add_argument("--pure-calls", type=int, default=50_000, help="calls a pure variant a round")
    parser.add_argument("--warmup", type=int, default=1000, help="calls of every variant before timing")
    parser.add_argument("--budget-us", type=float, default=DEFAULT_BUDGET_US, help="CPU µs of one request")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.calls < 1 or args.pure_calls < 1:
        parser.error("--rounds, --calls and --pure-calls must be positive")
    try:
        import aiosql
    except ImportError:
        print(
            "aiosql is not importable: install it into a scratch venv or set PYTHONPATH to an unpacked "
            "wheel (this benchmark installs nothing)",
            file=sys.stderr,
        )
        return 2
    try:
        import uvloop
    except ImportError:
        return asyncio.run(_measure(args, aiosql))
    return uvloop.run(_measure(args, aiosql))


if __name__ == "__main__":
    sys.exit(main())
