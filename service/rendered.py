"""JSON bodies rendered once per remembered lookup answer, for the hot read-only endpoints."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

Row = TypeVar("Row")


class RenderedBodies(Generic[Row]):
    """The encoded answer built from a looked-up row, rendered once for as long as that row is served.

    A BatchLoader hands out the same row object while it remembers it (lookup_cache_seconds) and a
    new object after every fetch. Kept per lookup key together with the row it was rendered from,
    a body is reused only while that very object is served: a changed key, user or project is a
    new row, which replaces the entry. So there is at most one body per key looked up lately.
    """

    MAX_BODIES = 10_000  # like BatchLoader.MAX_REMEMBERED; past it, all are dropped

    def __init__(self, render: Callable[[Row], bytes]) -> None:
        self.render = render
        self._bodies: dict[Hashable, tuple[Row, bytes]] = {}

    def body(self, key: Hashable, row: Row) -> bytes:
        hit = self._bodies.get(key)
        if hit is not None and hit[0] is row:
            return hit[1]
        if hit is None and len(self._bodies) >= self.MAX_BODIES:
            self._bodies.clear()
        rendered = self.render(row)
        self._bodies[key] = (row, rendered)
        return rendered
