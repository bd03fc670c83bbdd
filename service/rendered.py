"""JSON bodies rendered once per remembered lookup answer, for the hot read-only endpoints."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

Row = TypeVar("Row")


class RenderedBodies(Generic[Row]):
    """The encoded answer built from a row, rendered once for as long as that row is served.

    A BatchLoader hands out the same row object while it remembers it (lookup_cache_seconds) and a
    new object after every fetch, so keyed by the object's identity a body is reused exactly while
    its row is, and never outlives it: a changed key, user or project is a new row and a new body.
    The row is kept beside its body, so its id() cannot be reused by another object meanwhile.
    """

    MAX_BODIES = 10_000  # like BatchLoader.MAX_REMEMBERED; past it, all are dropped

    def __init__(self) -> None:
        self._bodies: dict[int, tuple[Row, bytes]] = {}

    def body(self, row: Row, render: Callable[[Row, str], bytes], context: str) -> bytes:
        """`render(row, context)`, remembered per row; `context` must be the same for every call
        on one instance (the instance's host name, say)."""
        hit = self._bodies.get(id(row))
        if hit is not None and hit[0] is row:
            return hit[1]
        if len(self._bodies) >= self.MAX_BODIES:
            self._bodies.clear()
        rendered = render(row, context)
        self._bodies[id(row)] = (row, rendered)
        return rendered
