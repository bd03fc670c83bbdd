"""Turning asyncpg records into frozen dataclasses whose fields are the query's column names."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Generic, TypeAlias, TypeVar

import asyncpg

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

T = TypeVar("T")

# (dataclass, column names) -> whether the columns are exactly the fields, in order
_POSITIONAL: dict[tuple[type, tuple[str, ...]], bool] = {}


def _builder(cls: type[T], record: asyncpg.Record) -> Any:
    columns = tuple(record.keys())
    positional = _POSITIONAL.get((cls, columns))
    if positional is None:
        positional = _POSITIONAL[(cls, columns)] = columns == tuple(f.name for f in fields(cls))  # type: ignore[arg-type]
    if positional:
        # Same names in the same order: skip building a dict per row (wide rows on hot paths).
        return lambda rec: cls(*rec)
    return lambda rec: cls(**dict(rec.items()))


def row(cls: type[T], record: asyncpg.Record | None) -> T | None:
    return None if record is None else _builder(cls, record)(record)


def rows(cls: type[T], records: list[asyncpg.Record]) -> list[T]:
    if not records:
        return []
    build = _builder(cls, records[0])
    return [build(record) for record in records]


@dataclass(frozen=True)
class Paged(Generic[T]):
    """One page of a list plus the total count, for the pagination headers."""

    total: int
    items: list[T]


def paged(cls: type[T], records: list[asyncpg.Record]) -> Paged[T]:
    """The admin list queries LEFT JOIN the page onto the count, so they always return at least one
    row: the count is read from it even when the page itself is empty (its item columns are NULL)."""
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    total = records[0]["total"] if records else 0
    items = [cls(**{name: record[name] for name in names}) for record in records if record["id"] is not None]
    return Paged(int(total), items)


# What every query function takes: a connection of its own or one borrowed from the pool.
# Strings: asyncpg's classes are generic only in its stubs, not at run time.
Pool: TypeAlias = "asyncpg.Pool[asyncpg.Record]"
Conn: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"
