"""The hot paths' remembered answers (service/rendered.py, kept key fingerprints) and the access log's clock."""

from __future__ import annotations

import base64
import os
import random
from dataclasses import dataclass
from datetime import datetime, timezone

from service.domain.ssh_keys import fingerprint_sha256, lenient_b64decode
from service.logs import _log_time
from service.rendered import RenderedBodies
from service.routes.shell import KEPT_KEY_TEXT, _kept_fingerprint, fingerprint_of


@dataclass(frozen=True)
class Row:
    title: str


def test_a_body_is_rendered_once_per_row_served_and_again_for_a_new_one():
    renders: list[str] = []

    def render(row: Row) -> bytes:
        renders.append(row.title)
        return row.title.encode()

    bodies: RenderedBodies[Row] = RenderedBodies(render)
    served = Row("a")
    assert [bodies.body("key", served) for _ in range(3)] == [b"a"] * 3
    assert renders == ["a"]
    # A fetch hands out a new object, even for equal data: it is rendered from what it holds,
    # and it replaces the entry of its key.
    assert bodies.body("key", Row("b")) == b"b"
    assert bodies.body("key", served) == b"a"
    assert renders == ["a", "b", "a"]
    assert len(bodies._bodies) == 1


def test_the_bodies_kept_are_bounded():
    renders: list[str] = []

    def render(row: Row) -> bytes:
        renders.append(row.title)
        return row.title.encode()

    bodies: RenderedBodies[Row] = RenderedBodies(render)
    rows = [Row(str(n)) for n in range(RenderedBodies.MAX_BODIES + 5)]
    for row in rows:
        bodies.body(row.title, row)
    assert len(bodies._bodies) <= RenderedBodies.MAX_BODIES
    # past the bound all were dropped; the rows kept since are answered without rendering again
    rendered = len(renders)
    assert bodies.body(rows[-1].title, rows[-1]) == rows[-1].title.encode()
    assert len(renders) == rendered
    assert bodies.body(rows[0].title, rows[0]) == rows[0].title.encode()
    assert len(renders) == rendered + 1


def test_the_access_log_time_is_isoformat_with_milliseconds():
    moments = [1_764_547_200.0, 1_764_547_200.999, 1_764_547_199.9995, 1_764_547_200.0005]
    moments += [random.uniform(1e9, 2e9) for _ in range(2000)]
    for now in sorted(moments):  # in order, as a worker logs, so the per-millisecond reuse is exercised
        expected = datetime.fromtimestamp(int(now * 1000) / 1000, timezone.utc).isoformat(timespec="milliseconds")
        assert _log_time(now) == expected


def test_fingerprints_of_short_key_texts_are_kept_and_long_ones_computed_each_time():
    short = base64.b64encode(b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + os.urandom(32)).decode()
    long = base64.b64encode(os.urandom(KEPT_KEY_TEXT)).decode()  # what an anonymous client may offer
    before = _kept_fingerprint.cache_info().currsize
    assert fingerprint_of(short) == fingerprint_of(short) == fingerprint_sha256(lenient_b64decode(short))
    assert fingerprint_of(long) == fingerprint_sha256(lenient_b64decode(long))
    assert _kept_fingerprint.cache_info().currsize == before + 1
