"""Turning asyncpg records into frozen dataclasses whose fields are the query's column names."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, TypeVar

import asyncpg

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


Conn = Any  # asyncpg.Connection or a pool connection proxy
