"""What aiohttp's own response path costs, against service/wire.py's one write.

The decision it backs: the service answers with OneWriteResponse, which serialises the status line,
the headers and the body itself and hands them to aiohttp's writer in one piece, instead of
web.Response's path (a CIMultiDict of headers filled in by aiohttp, six nested coroutines from
prepare() to the socket). It is hand-written code inside aiohttp's response, kept only while this
shows it paying; rerun it when aiohttp or service/wire.py change:

    .venv/bin/python bench/response_path.py [--rounds 5] [--duration 3]

Method: two bare handlers (bench/bare.py, aiohttp + uvloop, one process, no middleware, no access
log) that differ only in the response class, driven in turn by `wrk -t1 -c64` on loopback, the
order alternating round by round; each one-write round is divided by the mean of the two
web.Response rounds around it. Printed: both rates (median and range) and the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # noqa: E402  (bench/run.py: its wrk driver and process helpers)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    ports = {"web.Response": bench.free_port(), "OneWriteResponse": bench.free_port()}
    servers = [
        subprocess.Popen(
            [sys.executable, str(bench.ROOT / "bench" / "bare.py"), str(port)]
            + (["--one-write"] if name == "OneWriteResponse" else []),
            cwd=bench.ROOT,
        )
        for name, port in ports.items()
    ]
    try:
        for port in ports.values():
            bench.wait_for_port(port)
            bench.run_wrk(bench.bare_request(port), 1, args.connections)  # warm-up
        rates: dict[str, list[float]] = {name: [] for name in ports}

        def one_round(name: str) -> float:
            rps = bench.run_wrk(bench.bare_request(ports[name]), args.duration, args.connections)[0]
            rates[name].append(rps)
            return rps

        ratios = []
        before = one_round("web.Response")
        for _ in range(args.rounds):
            one_write = one_round("OneWriteResponse")
            after = one_round("web.Response")
            ratios.append(one_write / ((before + after) / 2))
            before = after
    finally:
        for server in servers:
            bench.stop_process(server)
    print(f"bare handler, wrk -t1 -c{args.connections}, {args.rounds} alternated rounds of {args.duration} s")
    for name, values in rates.items():
        print(
            f"{name:18} {statistics.median(values):9,.0f} req/s  ({min(values):,.0f}-{max(values):,.0f})"
        )
    print(f"OneWriteResponse / web.Response: {statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
