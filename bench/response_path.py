"""What aiohttp's own response path costs, against service/wire.py's one write.

The decision it backs: the service answers with OneWriteResponse, which serialises the status line,
the headers and the body itself and hands them to aiohttp's writer in one piece, instead of
web.Response's path (a CIMultiDict of headers filled in by aiohttp, six nested coroutines from
prepare() to the socket). It is hand-written code inside aiohttp's response, kept only while this
shows it paying; rerun it when aiohttp or service/wire.py change:

    .venv/bin/python bench/response_path.py [--rounds 8] [--duration 3]

Method: two bare handlers (bench/bare.py, aiohttp + uvloop, one process, no middleware, no access
log) that differ only in the response class, driven in turn by `wrk -t1 -c64` on loopback. Each
round starts a new pair of processes and measures both, in an order alternating from round to
round; its ratio is one-write over web.Response. Printed: both rates (median and range) and the
ratio's median and range.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # noqa: E402  (bench/run.py: its wrk driver and process helpers)


def _started(one_write: bool, connections: int) -> tuple[subprocess.Popen[bytes], int]:
    port = bench.free_port()
    server = subprocess.Popen(
        [sys.executable, str(bench.ROOT / "bench" / "bare.py"), str(port)] + (["--one-write"] if one_write else []),
        cwd=bench.ROOT,
    )
    bench.wait_for_port(port)
    bench.run_wrk(bench.bare_request(port), 1, connections)  # warm-up
    return server, port


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--duration", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    rates: dict[str, list[float]] = {"web.Response": [], "OneWriteResponse": []}
    ratios = []
    for round_number in range(args.rounds):
        # New processes every round: two processes of the same code differ by up to 10 % here
        # (memory layout), which alternating rounds on one pair of processes would not average out.
        order = [False, True] if round_number % 2 == 0 else [True, False]
        measured = {}
        for one_write in order:
            server, port = _started(one_write, args.connections)
            try:
                measured[one_write] = bench.run_wrk(bench.bare_request(port), args.duration, args.connections)[0]
            finally:
                bench.stop_process(server)
        rates["web.Response"].append(measured[False])
        rates["OneWriteResponse"].append(measured[True])
        ratios.append(measured[True] / measured[False])
    print(
        f"bare handler, wrk -t1 -c{args.connections}, {args.rounds} rounds of {args.duration} s, "
        "a new pair of processes each round, the order alternating"
    )
    for name, values in rates.items():
        print(f"{name:18} {statistics.median(values):9,.0f} req/s  ({min(values):,.0f}-{max(values):,.0f})")
    print(f"OneWriteResponse / web.Response: {statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
