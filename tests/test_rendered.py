"""The hot paths' remembered JSON bodies (service/rendered.py) and the access log's clock."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timezone

from service.logs import _log_time
from service.rendered import RenderedBodies


@dataclass(frozen=True)
class Row:
    title: str


def test_a_body_is_rendered_once_per_row_object_and_again_for_a_new_one():
    renders: list[str] = []

    def render(row: Row, host: str) -> bytes:
        renders.append(row.title)
        return f"{row.title}@{host}".encode()

    bodies: RenderedBodies[Row] = RenderedBodies()
    served = Row("a")
    assert [bodies.body(served, render, "h") for _ in range(3)] == [b"a@h"] * 3
    assert renders == ["a"]
    # A fetch hands out a new object, even for equal data: it is rendered from what it holds.
    assert bodies.body(Row("b"), render, "h") == b"b@h"
    assert bodies.body(Row("a"), render, "h") == b"a@h"
    assert renders == ["a", "b", "a"]


def test_the_bodies_kept_are_bounded():
    bodies: RenderedBodies[Row] = RenderedBodies()
    rows = [Row(str(n)) for n in range(RenderedBodies.MAX_BODIES + 5)]
    for row in rows:
        bodies.body(row, lambda r, _: r.title.encode(), "")
    assert len(bodies._bodies) <= RenderedBodies.MAX_BODIES
    assert bodies.body(rows[-1], lambda r, _: b"rendered again", "") == rows[-1].title.encode()


def test_the_access_log_time_is_isoformat_with_milliseconds():
    moments = [1_764_547_200.0, 1_764_547_200.999, 1_764_547_199.9995, 1_764_547_200.0005]
    moments += [random.uniform(1e9, 2e9) for _ in range(2000)]
    for now in sorted(moments):  # in order, as a worker logs, so the per-millisecond reuse is exercised
        expected = datetime.fromtimestamp(int(now * 1000) / 1000, timezone.utc).isoformat(timespec="milliseconds")
        assert _log_time(now) == expected
