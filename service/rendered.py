"""JSON bodies of the hot read-only endpoints, kept with the objects they were computed from."""

from __future__ import annotations

import operator
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

Row = TypeVar("Row")


class KeptBodies:
    """Encoded answers kept per key, each with the objects it was computed from, served again only
    while the caller holds those very objects (and, optionally, until a given moment).

    A BatchLoader hands out the same row object while it remembers it (lookup_cache_seconds) and a
    new object after every fetch; the settings cache likewise. So a body kept with them is never
    older than what the computation would read anyway: a changed key, user, project or setting is a
    new object, which misses and replaces the entry. At most one body per key looked up lately.
    """

    MAX_BODIES = 10_000  # like BatchLoader.MAX_REMEMBERED; past it, all are dropped

    def __init__(self) -> None:
        self._bodies: dict[Hashable, tuple[tuple[object, ...], Any, bytes]] = {}

    def get(self, key: Hashable, sources: tuple[object, ...], now: Any = None) -> bytes | None:
        """The body kept for `key` if it was computed from exactly `sources` and, when it was kept
        with an `until`, `now` is before it."""
        hit = self._bodies.get(key)
        if hit is None:
            return None
        kept_sources, until, body = hit
        if until is not None and not now < until:
            return None
        if len(kept_sources) != len(sources) or not all(map(operator.is_, kept_sources, sources)):
            return None
        return body

    def keep(self, key: Hashable, sources: tuple[object, ...], body: bytes, until: Any = None) -> None:
        if key not in self._bodies and len(self._bodies) >= self.MAX_BODIES:
            self._bodies.clear()
        self._bodies[key] = (sources, until, body)


class RenderedBodies(KeptBodies, Generic[Row]):
    """The encoded answer built from one looked-up row, rendered once for as long as that row is served."""

    def __init__(self, render: Callable[[Row], bytes]) -> None:
        super().__init__()
        self.render = render

    def body(self, key: Hashable, row: Row) -> bytes:
        sources = (row,)
        kept = self.get(key, sources)
        if kept is not None:
            return kept
        rendered = self.render(row)
        self.keep(key, sources, rendered)
        return rendered
