"""Turning asyncpg records into frozen dataclasses whose fields are the query's column names."""

from __future__ import annotations

from typing import Any, TypeVar

import asyncpg

T = TypeVar("T")


def row(cls: type[T], record: asyncpg.Record | None) -> T | None:
    return None if record is None else cls(**dict(record.items()))


def rows(cls: type[T], records: list[asyncpg.Record]) -> list[T]:
    return [cls(**dict(record.items())) for record in records]


Conn = Any  # asyncpg.Connection or a pool connection proxy
