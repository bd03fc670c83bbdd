"""Instructions, cache misses and branch mispredictions per request, counted by valgrind (callgrind).

    apt-get install valgrind
    .venv/bin/python bench/instructions.py [--requests 1000] [--only service_floor,authorized_keys]

Throughput on a shared VM moves by 20 % between runs; what a request executes does not. This
drives each endpoint with N sequential requests on one kept-alive connection, under callgrind's
simulated caches and branch predictor, and divides by N:

- the bare handler and the framework floor (bench/bare.py): counts zeroed after a warm-up and dumped
  after the N requests (callgrind_control);
- the service: its worker is a fork of gunicorn's master, which callgrind_control cannot reach, so
  the service is run twice, with N requests and with none (idle as long) after the same warm-up, and
  the worker's counts at exit are subtracted: start-up (with PYTHONHASHSEED=0, the same each time),
  shutdown and the work done by the clock cancel out.

Ir: instructions; I1/D1: first-level instruction and data cache misses (simulated; each costs
roughly 10-20 cycles on the machines of bench/results); mispredicted: conditional and indirect
branches (roughly 15-20 cycles each). Served, a request's extra code costs far more than the same
code timed in a loop, where its instructions and branches stay in the caches and predictors; these
columns show that share, which `perf stat` would show on a machine with performance counters.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import psutil  # type: ignore[import-untyped]

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # noqa: E402  (bench/run.py: its servers, seed data and requests)

WARM_UP = 200
COLUMNS = (("Ir", ("Ir",)), ("I1 miss", ("I1mr",)), ("D1 miss", ("D1mr", "D1mw")), ("mispredicted", ("Bcm", "Bim")))


def callgrind(out_dir: Path) -> list[str]:
    # env PYTHONHASHSEED=0: with random string hashes, the same start-up differs by millions of
    # instructions between runs (4.3 G to import the service), which the subtraction would keep
    return [
        "env",
        "PYTHONHASHSEED=0",
        "valgrind",
        "--tool=callgrind",
        "--cache-sim=yes",
        "--branch-sim=yes",
        f"--callgrind-out-file={out_dir}/callgrind.%p",
    ]


def events(text: str) -> dict[str, int]:
    """The totals of a callgrind output file, by event name."""
    names = re.search(r"^events: (.*)$", text, re.M)
    totals = re.search(r"^summary: (.*)$", text, re.M) or re.search(r"^totals: (.*)$", text, re.M)
    if names is None or totals is None:
        raise ValueError("not a callgrind output file")
    return dict(zip(names.group(1).split(), map(int, totals.group(1).split()), strict=False))


def drive(request: bench.Request, count: int) -> None:
    url = urlsplit(request.url)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=300)
    body = request.body.encode() if request.body is not None else None
    path = url.path + (f"?{url.query}" if url.query else "")
    try:
        for _ in range(count):
            conn.request(request.method, path, body=body, headers=request.headers)
            response = conn.getresponse()
            answer = response.read()
            if response.status >= 300:
                raise RuntimeError(f"{request.url}: {response.status} {answer[:200]!r}")
    finally:
        conn.close()


def zeroed_and_dumped(pid: int, request: bench.Request, count: int, out_dir: Path) -> dict[str, int]:
    """A process callgrind_control reaches: its counts over `count` requests after the warm-up."""
    drive(request, WARM_UP)
    subprocess.run(["callgrind_control", "--zero", str(pid)], check=True, capture_output=True)
    drive(request, count)
    before = set(out_dir.glob(f"callgrind.{pid}.*"))
    subprocess.run(["callgrind_control", "--dump", str(pid)], check=True, capture_output=True)
    deadline = time.monotonic() + 60
    while not (dumped := set(out_dir.glob(f"callgrind.{pid}.*")) - before):
        if time.monotonic() > deadline:
            raise RuntimeError(f"callgrind wrote no dump for {pid}")
        time.sleep(0.2)
    time.sleep(0.5)  # the dump is written in one go, but let it finish
    return events(dumped.pop().read_text())


def service_worker_counts(
    endpoint: str,
    count: int,
    env: dict[str, str],
    data: dict[str, str],
    workdir: Path,
    out_dir: Path,
    idle: float = 0.0,
) -> tuple[dict[str, int], float]:
    """The service's worker's counts at exit after the warm-up and `count` requests to `endpoint`
    (then `idle` seconds without any), and how long the requests took."""
    port = bench.free_port()
    state = workdir / f"state-{port}"
    state.mkdir()
    served = subprocess.Popen(
        [*callgrind(out_dir), sys.executable, "-m", "service", "serve"]
        + ["--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--no-migrate"],
        cwd=bench.ROOT,
        env={**env, "GITLAB_INTERNAL_API_STATE_DIR": str(state)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        request = bench.scenarios(port, data)[endpoint]
        deadline = time.monotonic() + 300  # valgrind starts python some 50 times slower
        while True:
            try:
                drive(request, 1)
                break
            except (OSError, http.client.HTTPException):
                if time.monotonic() > deadline or served.poll() is not None:
                    raise
                time.sleep(1)
        (worker,) = psutil.Process(served.pid).children()
        drive(request, WARM_UP - 1)
        began = time.monotonic()
        drive(request, count)
        took = time.monotonic() - began
        time.sleep(idle)
        served.send_signal(signal.SIGTERM)
        served.wait(300)
        return events((out_dir / f"callgrind.{worker.pid}").read_text()), took
    finally:
        bench.stop_process(served)


def row(name: str, per_request: dict[str, float], bare_ir: float | None) -> str:
    cells = [sum(per_request.get(event, 0.0) for event in names) for _, names in COLUMNS]
    ratio = f"{per_request['Ir'] / bare_ir:9.2f}" if bare_ir else f"{'':9}"
    return f"{name:16} " + " ".join(f"{cell:12,.0f}" for cell in cells) + ratio


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--only", default=f"{bench.SERVICE_FLOOR},authorized_keys")
    args = parser.parse_args(argv)
    endpoints = [e for e in args.only.split(",") if e and e != bench.FLOOR]
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        workdir = Path(tmp)
        out_dir = workdir / "callgrind"
        out_dir.mkdir()
        (workdir / "shell").write_bytes(bench.SHELL_SECRET)
        (workdir / "kas").write_text(base64.b64encode(bench.KAS_SECRET).decode())
        bare_port, floor_port = bench.free_port(), bench.free_port()
        bare = subprocess.Popen(
            [*callgrind(out_dir), sys.executable, str(bench.ROOT / "bench" / "bare.py"), str(bare_port)],
            stderr=subprocess.DEVNULL,
        )
        stack.callback(bench.stop_process, bare)
        floor = subprocess.Popen(
            [*callgrind(out_dir), sys.executable, str(bench.ROOT / "bench" / "bare.py"), str(floor_port), "--floor"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        stack.callback(bench.stop_process, floor)
        from service.embedded import start_postgres, start_redis

        server, database_url = start_postgres(workdir / "embedded", database="gia_bench", cleanup_mode="delete")
        stack.callback(server.cleanup)
        redis, redis_url = start_redis(workdir / "embedded", persist=False)
        stack.callback(redis.stop)
        backends = bench.Backends("unix", database_url, redis_url, bench.prepare(database_url))
        env = {**bench.service_env(workdir, backends), "GITLAB_INTERNAL_API_JOBS_IN_PROCESS": "false"}
        bench.wait_for_port(bare_port, 300)
        bench.wait_for_port(floor_port, 300)

        print(
            f"per request, {args.requests} sequential requests on one connection after {WARM_UP} (valgrind callgrind)"
        )
        print(f"{'endpoint':16} " + " ".join(f"{title:>12}" for title, _ in COLUMNS) + f" {'Ir/bare':>8}")
        counted = zeroed_and_dumped(bare.pid, bench.bare_request(bare_port), args.requests, out_dir)
        bare_per_request = {event: value / args.requests for event, value in counted.items()}
        print(row("bare", bare_per_request, None), flush=True)
        counted = zeroed_and_dumped(
            floor.pid, bench.scenarios(0, backends.data, floor_port)[bench.FLOOR], args.requests, out_dir
        )
        print(row(bench.FLOOR, {e: v / args.requests for e, v in counted.items()}, bare_per_request["Ir"]), flush=True)
        for endpoint in endpoints:
            with_requests, took = service_worker_counts(endpoint, args.requests, env, backends.data, workdir, out_dir)
            # as long without requests: what runs by the clock (the metrics' publishing, gunicorn's
            # heartbeat) cancels out too
            without, _ = service_worker_counts(endpoint, 0, env, backends.data, workdir, out_dir, idle=took)
            per_request = {e: (with_requests[e] - without.get(e, 0)) / args.requests for e in with_requests}
            print(row(endpoint, per_request, bare_per_request["Ir"]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
