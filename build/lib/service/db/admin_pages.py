"""One page of a list query plus the total count, for the pagination headers.

The admin list queries (sql/admin_*.sql) LEFT JOIN the page onto the count, so they always return
at least one row: the count is read from it even when the page itself is empty.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Generic, TypeVar

import asyncpg

T = TypeVar("T")


@dataclass(frozen=True)
class Paged(Generic[T]):
    total: int
    items: list[T]


def paged(cls: type[T], records: list[asyncpg.Record]) -> Paged[T]:
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    total = records[0]["total"] if records else 0
    items = [cls(**{name: record[name] for name in names}) for record in records if record["id"] is not None]
    return Paged(int(total), items)
