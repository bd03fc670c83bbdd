"""CPU per request, by process: the worker, Redis, PostgreSQL and wrk, for each hot endpoint.

    .venv/bin/python bench/cpu_split.py [--seconds 3] [--reps 4] [--only pre_receive,post_receive]

A throughput ratio says how far an endpoint is from the bare handler, not where the difference
goes. This starts what bench/run.py's `unix` topology starts (the bare handler, the floor, the
embedded PostgreSQL and Redis, one service worker), drives each endpoint with the same wrk load,
alternating with the bare handler, and divides each process's CPU time (user + system, from
/proc) by the requests served. The worker's share is what the endpoint's own code, aiohttp and the
client libraries cost; the servers' shares are what each request asks of them on the same cores.
Medians over the repetitions; the machine's noise shows as the spread between them.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil  # type: ignore[import-untyped]

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # noqa: E402  (bench/run.py: its servers, seed data and wrk driver)

GROUPS = ("server", "redis", "postgres", "wrk")


def cpu_seconds(pick: dict[int, str]) -> dict[str, float]:
    """CPU seconds so far of the processes named in `pick`, and of every PostgreSQL and Redis process."""
    totals = dict.fromkeys(("redis", "postgres", *pick.values()), 0.0)
    for process in psutil.process_iter(["name", "cpu_times"]):
        name, times = process.info["name"] or "", process.info["cpu_times"]
        if times is None:
            continue
        group = pick.get(process.pid)
        if group is None and "postgres" in name:
            group = "postgres"
        elif group is None and ("valkey" in name or "redis" in name):
            group = "redis"
        if group is not None:
            totals[group] += times.user + times.system
    return totals


def wrk_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk runs as this process's child
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--reps", type=int, default=4)
    parser.add_argument("--only", default=",".join(bench.ENDPOINTS))
    args = parser.parse_args(argv)
    endpoints = [e for e in args.only.split(",") if e]
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        workdir = Path(tmp)
        (workdir / "shell").write_bytes(bench.SHELL_SECRET)
        (workdir / "kas").write_text(base64.b64encode(bench.KAS_SECRET).decode())
        bare_port, floor_port = bench.free_port(), bench.free_port()
        bare = subprocess.Popen([sys.executable, str(bench.ROOT / "bench" / "bare.py"), str(bare_port)])
        stack.callback(bench.stop_process, bare)
        floor = subprocess.Popen(
            [sys.executable, str(bench.ROOT / "bench" / "bare.py"), str(floor_port), "--floor"],
            stdout=subprocess.DEVNULL,
        )
        stack.callback(bench.stop_process, floor)
        bench.wait_for_port(bare_port)
        bench.wait_for_port(floor_port)
        from service.embedded import start_postgres, start_redis

        server, database_url = start_postgres(workdir / "embedded", database="gia_bench", cleanup_mode="delete")
        stack.callback(server.cleanup)
        redis, redis_url = start_redis(workdir / "embedded", persist=False)
        stack.callback(redis.stop)
        backends = bench.Backends("unix", database_url, redis_url, bench.prepare(database_url))
        service = bench.Service(bench.service_env(workdir, backends), 1, workdir, None)
        stack.callback(service.stop)
        requests = bench.scenarios(service.port, backends.data, floor_port)
        service.wait_ready(requests["authorized_keys"])
        worker = service.worker_pid()
        plan = [("bare", bench.bare_request(bare_port), bare.pid)]
        plan += [(e, requests[e], floor.pid if e == bench.FLOOR else worker) for e in endpoints]
        for _, request, _ in plan:
            bench.run_wrk(request, 1, 64)  # warm-up
        samples: dict[str, list[tuple[float, dict[str, float]]]] = {name: [] for name, _, _ in plan}
        for _ in range(args.reps):
            for name, request, pid in plan:
                before, wrk_before = cpu_seconds({pid: "server"}), wrk_seconds()
                rate, _p50, _p99, errors = bench.run_wrk(request, args.seconds, 64)
                after, wrk_after = cpu_seconds({pid: "server"}), wrk_seconds()
                served = max(rate * args.seconds, 1.0)
                used = {g: after.get(g, 0.0) - before.get(g, 0.0) for g in GROUPS if g != "wrk"}
                used["wrk"] = wrk_after - wrk_before
                samples[name].append((rate, {g: 1e6 * s / served for g, s in used.items()}))
                if errors:
                    print(f"{name}: {errors} errors", file=sys.stderr)
    bare_rate = statistics.median(rate for rate, _ in samples["bare"])
    print(
        f"CPU µs per request, median of {args.reps} rounds of {args.seconds} s (wrk -t1 -c64), bare {bare_rate:,.0f} req/s"
    )
    print(f"{'endpoint':16} {'req/s':>7} {'ratio':>6} " + " ".join(f"{g:>9}" for g in GROUPS) + f" {'total':>9}")
    for name, rows in samples.items():
        rate = statistics.median(r for r, _ in rows)
        cells = [statistics.median(row[g] for _, row in rows) for g in GROUPS]
        print(
            f"{name:16} {rate:7,.0f} {rate / bare_rate:6.2f} "
            + " ".join(f"{c:9.1f}" for c in cells)
            + f" {sum(cells):9.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
