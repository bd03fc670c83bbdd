"""The hot paths' remembered answers (service/rendered.py, kept key fingerprints), and the access
log's clock and batched writes."""

from __future__ import annotations

import asyncio
import base64
import os
import random
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from service.domain.ssh_keys import fingerprint_sha256, lenient_b64decode
import orjson

from service.logs import LineBuffer, _log_time
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
    # at a millisecond's edge: the first rounds up to the next second, the second stays at .576
    moments += [1_764_547_199.9999996, 1_899_276_385.5769994]
    moments += [random.uniform(1e9, 2e9) for _ in range(20_000)]
    for now in sorted(moments):  # in order, as a worker logs, so the per-millisecond reuse is exercised
        assert _log_time(now) == datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="milliseconds")


def test_fingerprints_of_short_key_texts_are_kept_and_long_ones_computed_each_time():
    short = base64.b64encode(b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + os.urandom(32)).decode()
    long = base64.b64encode(os.urandom(KEPT_KEY_TEXT)).decode()  # what an anonymous client may offer
    before = _kept_fingerprint.cache_info().currsize
    assert fingerprint_of(short) == fingerprint_of(short) == fingerprint_sha256(lenient_b64decode(short))
    assert fingerprint_of(long) == fingerprint_sha256(lenient_b64decode(long))
    assert _kept_fingerprint.cache_info().currsize == before + 1


async def log_lines(buffer: LineBuffer, worker: int, count: int) -> None:
    for n in range(count):
        buffer.add(orjson.dumps({"worker": worker, "n": n, "path": "/" + "x" * 200}) + b"\n")
        if n % 50 == 0:
            await asyncio.sleep(0)  # the loop turns, as between requests
    buffer.flush()


def test_access_log_lines_of_several_workers_sharing_a_pipe_stay_whole():
    """Workers write their batches of lines to one pipe (standard output under a container runtime):
    a reader that lags must still read whole lines, never one cut by another worker's batch."""
    lines_per_worker, workers = 4000, 3
    read_end, write_end = os.pipe()
    children = []
    for worker in range(workers):
        pid = os.fork()
        if pid == 0:  # a worker: its own LineBuffer on the shared descriptor
            try:
                os.close(read_end)
                asyncio.run(log_lines(LineBuffer(fd=write_end), worker, lines_per_worker))
            finally:
                os._exit(0)
        children.append(pid)
    os.close(write_end)
    received = []
    while data := os.read(read_end, 8192):
        received.append(data)
        time.sleep(0.001)  # a slow reader: the pipe fills and the writers wait in the middle of a batch
    os.close(read_end)
    for pid in children:
        os.waitpid(pid, 0)
    lines = b"".join(received).split(b"\n")[:-1]
    assert len(lines) == workers * lines_per_worker
    assert sorted((entry["worker"], entry["n"]) for entry in map(orjson.loads, lines)) == [
        (worker, n) for worker in range(workers) for n in range(lines_per_worker)
    ]
