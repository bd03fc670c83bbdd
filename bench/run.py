"""Load benchmark: the hot internal endpoints as ratios of a bare aiohttp JSON handler, measured so that it cannot flatter.

    python3 dev.py bench                        # every topology whose binaries are installed (about 25 min)
    python3 dev.py bench --topologies unix --only authorized_keys,allowed_any --rounds 3 --duration 2
    python3 dev.py bench --smoke                # 1 s rounds, unix only, no verdict (about 1 min): does it work?
    python3 dev.py bench --profile allowed_any  # py-spy under load: bench/results/profile-*.speedscope.json

The first row, framework_floor, is bench/bare.py --floor: the bare handler plus the service's access
logger and one pass-through middleware, answering with the service's one-write response
(service/wire.py), the most any endpoint can reach. post_receive queues each
push's job, and no job worker runs during the rounds (production runs them in `worker` processes);
one job worker's rate is measured afterwards (the `post_receive jobs` line).

Method. The bare handler (bench/bare.py: aiohttp + uvloop, one process, no middleware, no I/O) and the
service (`gitlab-internal-api serve`, gunicorn's arbiter, one worker unless the topology says otherwise,
access log on, written to /dev/null) run side by side; `wrk -t1 -c64` on loopback drives one of them
at a time. Rounds alternate: bare, service(endpoint 1), bare, service(endpoint 2), ... bare, repeated
`--rounds` times, so that every service round sits between two bare rounds. Each service round's ratio
is its req/s divided by the mean of those two neighbours; a row shows the median ratio over the rounds
and its range (min-max), and next to it the bare handler's absolute req/s (median and range) over the
bare rounds adjacent to that row. When those bare rates spread by more than `--noise-bound` (max/min)
the machine was too noisy to judge: the row says "noisy: no verdict" instead of ok/MISS.

A machine that is slow for the whole run does not spread: it flatters instead (a run whose bare
handler did 5.8 k req/s read authorized_keys 0.77, a rerun at 18 k read 0.43; on a slowed machine
the kernel's share of a request, which the bare handler is mostly made of, grows more than the
service's Python work). So every row's bare median is also compared with a bare reference:
`--bare-reference RPS` (the bare handler's rate on this machine when quiet), else the best of the
earlier runs in bench/results on a machine with the same cores and CPU model and with as many
connections (a topology's bare median, when its bare rounds spread within the noise bound, or
the --bare-reference a run was given). Below `--slow-bound` of it the row says "slow machine: no
verdict". Without a reference the header says that a slow machine would go unnoticed. The run
exits 1 when a target was missed, else 3 when a row gave no verdict, else 0.

Latency ("paced"): at saturation a closed loop's latency is connections / throughput whatever the code
does, so p99 is judged at 70 % of each endpoint's own median saturated rate. wrk2 is not packaged:
pacing uses wrk's Lua delay() hook, each connection pausing an exponentially distributed time before
each request (a paced closed loop per connection, not a true open loop: a stalled server is not sent
new requests, so a stall is under-reported). A 2 s calibration round measures the per-request cycle and
shortens the pauses by it so that the achieved rate meets the offered one; both are printed.

Topologies (--topologies, default: all whose binaries are installed):
  unix       the embedded default: PostgreSQL and Redis (Valkey) over unix sockets (the targets apply here)
  nocache    the unix backends with GITLAB_LOOKUP_CACHE_SECONDS=0: the bench repeats one key, one user
             and one project, so under `unix` the lookups are answered from the workers' memory; here
             every one asks the database (what a worker does for a key it has not seen this half second)
  tcp        PostgreSQL 15 (tests/topology PostgresServer) and redis-server, both over TCP on loopback
  workers2   the unix backends, `serve --workers 2` beside `--workers 1`: aggregate rate of 2 / 1 worker
  pgbouncer  the tcp backends, the service through PgBouncer (transaction mode) with
             DATABASE_PREPARED_STATEMENTS=false

The raw rounds go to bench/results/bench-<time>.json (gitignored). Needs `wrk` (apt-get install wrk);
tcp/pgbouncer need postgresql, redis-server and pgbouncer; --profile needs py-spy (the `bench` extra).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import dataclasses
import datetime
import json
import math
import os
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import jwt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service.db.migrate import migrate  # noqa: E402

RESULTS = ROOT / "bench" / "results"
SHELL_SECRET = b"bench-shell-secret-0123456789abcd"
KAS_SECRET = bytes(range(32))

# The framework floor: bench/bare.py --floor, the bare handler plus the service's access logger and
# one no-op middleware (aiohttp then adds one of its own), the least the service's structure costs:
# the ratio no endpoint can beat. Measured like an endpoint, no target.
FLOOR = "framework_floor"
# The service's own floor: a route of the service that answers a constant after the path every
# request of GitLab Shell takes (the shell JWT checked, the correlation id, the request counts, the
# access log). What the hot endpoints add to it is their own work; what it adds to the framework
# floor is the service's common path. Measured like an endpoint, no target.
SERVICE_FLOOR = "service_floor"
ENDPOINTS = (FLOOR, SERVICE_FLOOR, "authorized_keys", "allowed_any", "pre_receive", "post_receive", "usage_metrics", "agent_info")
# issue 12: median ratio to the bare handler, default topology, one worker, 64 connections
TARGETS = {
    "authorized_keys": 0.80,
    "pre_receive": 0.70,
    "post_receive": 0.60,
    "allowed_any": 0.50,
    "usage_metrics": 0.60,
    "agent_info": 0.40,
}
SCALING_TARGET = 1.5  # 2 workers / 1 worker, aggregate req/s
SCALING_ENDPOINTS = ("authorized_keys", "allowed_any")
P99_LIMIT_MS = 15.0
LOAD_FACTOR = 0.7  # latency is judged at 70 % of each endpoint's own median saturated rate
RSS_LIMIT_MB = 150.0
SLOW_BOUND = 0.85  # a row's bare median under this share of the bare reference: no verdict
NO_VERDICT = "no verdict"
PACING_TOLERANCE = (0.85, 1.15)  # achieved / offered rate of the paced rounds for their p99 to count
TOPOLOGIES = ("unix", "nocache", "tcp", "workers2", "pgbouncer")


# ---------------------------------------------------------------------------------------------
# load generation


@dataclass
class Round:
    topology: str
    target: str  # "bare", "service", "service-2w"
    endpoint: str  # the service endpoint this round belongs to (for a bare round: the next one's)
    kind: str  # "saturated", "paced", "calibration", "warmup"
    seconds: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    started: float
    offered: float = 0.0  # paced rounds: the rate asked for
    worker_rss_mb: float = 0.0  # service rounds: the largest worker's peak RSS (VmHWM) after it


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(f"wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(out: str) -> tuple[float, float, float, int]:
    """req/s, p50 ms, p99 ms, errors (non-2xx/3xx answers + socket errors) from `wrk --latency` output."""
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not rate:
        raise ValueError("no Requests/sec in wrk output:\n" + out)
    distribution = out[out.index("Latency Distribution") :]
    p50 = re.search(r"^\s+50%\s+(\S+)", distribution, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", distribution, re.MULTILINE)
    assert p50 and p99, out
    errors = 0
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        errors += int(non2xx.group(1))
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if socket_errors:
        errors += sum(int(g) for g in socket_errors.groups())
    return float(rate.group(1)), _ms(p50.group(1)), _ms(p99.group(1)), errors


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    headers: dict[str, str]
    body: str | None

    def lua(self, mean_delay_ms: float | None = None) -> str:
        lines = [f'wrk.method = "{self.method}"']
        for name, value in self.headers.items():
            lines.append(f'wrk.headers["{name}"] = "{value}"')
        if self.body is not None:
            lines.append("wrk.body = [[" + self.body + "]]")
        if mean_delay_ms is not None:
            # exponential pauses: a Poisson arrival process per connection (integer ms, rounded)
            lines += [
                "math.randomseed(os.time())",
                f"function delay() return math.floor(-math.log(1 - math.random()) * {mean_delay_ms:.3f} + 0.5) end",
            ]
        return "\n".join(lines) + "\n"


def run_wrk(
    request: Request, seconds: int, connections: int, mean_delay_ms: float | None = None
) -> tuple[float, float, float, int]:
    fd, name = tempfile.mkstemp(suffix=".lua")
    script = Path(name)
    os.close(fd)
    script.write_text(request.lua(mean_delay_ms))
    try:
        out = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{seconds}s",
                "--timeout",
                "5s",
                "--latency",
                "-s",
                str(script),
                request.url,
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=seconds + 30,
        ).stdout
    finally:
        script.unlink()
    return parse_wrk(out)


# ---------------------------------------------------------------------------------------------
# the statistics (pure: tests/test_bench.py checks them)


def spread(values: list[float]) -> float:
    """max/min; infinite when a value is 0."""
    return max(values) / min(values) if values and min(values) > 0 else math.inf


@dataclass
class Summary:
    endpoint: str
    target: str
    rps: list[float] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)  # each service round / mean of its two bare neighbours
    bare: list[float] = field(default_factory=list)  # the bare rounds adjacent to this row's service rounds
    errors: int = 0

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios)


@dataclass(frozen=True)
class BareReference:
    rps: float  # the bare handler's req/s on this machine when quiet
    source: str  # "--bare-reference" or the results file it comes from


def this_machine() -> dict[str, Any]:
    """What a bare rate is comparable across runs by: the core count and the CPU model."""
    model = ""
    with contextlib.suppress(OSError):
        model = next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            "",
        )
    return {"nproc": os.cpu_count(), "cpu": model}


def bare_reference(
    results: Path, machine: dict[str, Any], connections: int, noise_bound: float, given: float | None = None
) -> BareReference | None:
    """`given` (--bare-reference), else the best of the earlier runs on this machine with as many
    connections (smoke runs aside): the median of a topology's bare rounds, when there were at least
    5 and they spread within the noise bound, or the --bare-reference a run was given."""
    if given is not None:
        return BareReference(given, "--bare-reference")
    best: BareReference | None = None

    def consider(rps: float, source: str) -> None:
        nonlocal best
        if best is None or rps > best.rps:
            best = BareReference(rps, source)

    for path in sorted(results.glob("bench-*.json")):
        try:
            raw = json.loads(path.read_text())
            if raw.get("machine") != machine or raw.get("smoke") or raw["options"]["connections"] != connections:
                continue
            earlier = raw.get("bare_reference") or {}
            if earlier.get("source") == "--bare-reference":
                consider(float(earlier["rps"]), f"the --bare-reference of {path.name}")
            for topology in raw["topologies"].values():
                bare = [r["rps"] for r in topology["rounds"] if r["target"] == "bare" and r["kind"] == "saturated"]
                if len(bare) >= 5 and spread(bare) <= noise_bound:
                    consider(statistics.median(bare), path.name)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue  # a run still being written, cut short, or not this script's
    return best


def reference_line(reference: BareReference | None, slow_bound: float) -> str:
    if reference is None:
        return (
            "bare reference: none (no earlier steady run with these connections on this machine in "
            "bench/results): a machine slowed for the whole run would flatter every ratio unnoticed; "
            "pass --bare-reference RPS, the bare handler's rate here when quiet"
        )
    return (
        f"bare reference: {reference.rps:,.0f} req/s ({reference.source}); a row whose bare median is under "
        f"{slow_bound:.0%} of it ({slow_bound * reference.rps:,.0f} req/s) gives no verdict (slow machine)"
    )


def any_refused(lines: list[str]) -> bool:
    """Whether a table refused a verdict somewhere (noisy or slow machine): the run exits 3."""
    return any(NO_VERDICT in line for line in lines)


def summarise(rounds: list[Round]) -> dict[tuple[str, str], Summary]:
    """Pair every saturated service round with the bare rounds just before and after it (the run
    order alternates them, so both exist)."""
    sequence = [r for r in rounds if r.kind == "saturated"]
    out: dict[tuple[str, str], Summary] = {}
    for i, r in enumerate(sequence):
        if r.target == "bare":
            continue
        before = next((b for b in reversed(sequence[:i]) if b.target == "bare"), None)
        after = next((b for b in sequence[i + 1 :] if b.target == "bare"), None)
        neighbours = [b.rps for b in (before, after) if b is not None]
        if not neighbours:
            raise ValueError(f"service round {i} has no bare neighbour")
        s = out.setdefault((r.target, r.endpoint), Summary(r.endpoint, r.target))
        s.rps.append(r.rps)
        s.ratios.append(r.rps / statistics.mean(neighbours))
        s.bare.extend(neighbours)
        s.errors += r.errors
    return out


def scaling(rounds: list[Round]) -> dict[str, list[float]]:
    """workers2: per endpoint, each round's 2-worker req/s over the same round's 1-worker req/s."""
    one: dict[str, list[float]] = {}
    two: dict[str, list[float]] = {}
    for r in rounds:
        if r.kind == "saturated" and r.target in {"service", "service-2w"}:
            (one if r.target == "service" else two).setdefault(r.endpoint, []).append(r.rps)
    return {e: [b / a for a, b in zip(one[e], two.get(e, [])) if a > 0] for e in one}


def fmt_range(values: list[float], digits: int = 0) -> str:
    if not values:
        return "-"
    f = f"{{:,.{digits}f}}"
    return f"{f.format(statistics.median(values))} ({f.format(min(values))}-{f.format(max(values))})"


# ---------------------------------------------------------------------------------------------
# servers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def stop_process(process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def peak_rss_mb(pid: int) -> float:
    """Peak resident set size (VmHWM) of one process."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class Service:
    """`gitlab-internal-api serve`: its PID is gunicorn's master; the workers are its children.

    The PostReceive jobs that post_receive queues are not run during the rounds: production runs
    them in `gitlab-internal-api worker` processes (GitLab's Sidekiq beside Puma), usually on other
    machines, and on these two shared cores a job worker would take its CPU from the worker being
    measured. How fast one job worker then runs them is measured on its own (drain_jobs).
    """

    def __init__(self, env: dict[str, str], workers: int, workdir: Path, log: Path | None) -> None:
        self.port = free_port()
        self.workers_wanted = workers
        state = workdir / f"service-{self.port}"
        state.mkdir()
        self._log = open(log, "ab") if log else None  # noqa: SIM115 (closed in stop())
        env = {**env, "GITLAB_INTERNAL_API_JOBS_IN_PROCESS": "false"}
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "service",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(workers),
                "--no-migrate",
            ],
            cwd=ROOT,
            env={**env, "GITLAB_INTERNAL_API_STATE_DIR": str(state)},
            stdout=self._log or subprocess.DEVNULL,
            stderr=self._log or subprocess.DEVNULL,
        )

    def workers(self) -> list[Any]:
        import psutil  # type: ignore[import-untyped]

        try:
            return list(psutil.Process(self.process.pid).children())
        except psutil.NoSuchProcess:
            return []

    def worker_pid(self) -> int:
        """The largest child of the master: the (first) worker."""
        children = self.workers()
        if not children:
            raise RuntimeError("the service has no worker")
        return int(max(children, key=lambda p: p.memory_info().rss).pid)

    def worker_peak_rss_mb(self) -> float:
        return max((peak_rss_mb(p.pid) for p in self.workers()), default=0.0)

    def wait_ready(self, probe: Request, timeout: float = 90.0) -> None:
        """Until every worker has booted and the probe request answers 200 (the arbiter binds the port
        before the workers boot, so a listening port proves nothing)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the service exited with {self.process.returncode} (rerun with --service-log FILE)")
            if len(self.workers()) >= self.workers_wanted:
                try:
                    req = urllib.request.Request(
                        probe.url,
                        method=probe.method,
                        headers=probe.headers,
                        data=probe.body.encode() if probe.body else None,
                    )
                    with urllib.request.urlopen(req, timeout=2) as answer:
                        if answer.status == 200:
                            time.sleep(0.5)
                            return
                except (urllib.error.URLError, OSError):
                    pass
            time.sleep(0.2)
        raise RuntimeError(f"the service did not answer {probe.url} in {timeout:.0f} s (rerun with --service-log FILE)")

    def stop(self) -> None:
        stop_process(self.process)
        if self._log:
            self._log.close()


class RedisServer:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        data = workdir / f"redis-{self.port}"
        data.mkdir()
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(data),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)
        self.url = f"redis://127.0.0.1:{self.port}/0"


# ---------------------------------------------------------------------------------------------
# data


async def seed(database_url: str) -> dict[str, str]:
    """One user with a key, a public project, an agent with a token: the data the requests touch."""
    from service.db import ssh_keys as ssh_keys_db
    from service.db import projects as projects_db
    from service.db import routes as routes_db
    from service.domain.ssh_keys import parse_public_key
    from service.domain.tokens import token_digest

    conn = await asyncpg.connect(database_url)
    try:
        user_id = await conn.fetchval(
            "INSERT INTO users (username, email, name) VALUES ('bench', 'bench@example.com', 'Bench') RETURNING id"
        )
        namespace_id = await conn.fetchval(
            "INSERT INTO namespaces (name, path, type, owner_id) VALUES ('bench', 'bench', 'User', $1) RETURNING id",
            user_id,
        )
        await conn.execute("UPDATE namespaces SET traversal_ids = ARRAY[id] WHERE id = $1", namespace_id)
        await routes_db.insert_route(conn, "Namespace", namespace_id, "bench", "Bench")
        project_id = await projects_db.insert_project(
            conn,
            name="hot",
            path="hot",
            namespace_id=namespace_id,
            namespace_full_path="bench",
            creator_id=user_id,
            visibility_level=20,
            default_branch="main",
        )
        blob = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + os.urandom(32)
        parsed = parse_public_key("ssh-ed25519 " + base64.b64encode(blob).decode())
        key = await ssh_keys_db.insert_key(
            conn,
            user_id=user_id,
            deploy_key=False,
            key=parsed.text,
            title="bench",
            key_type=parsed.key_type,
            bits=parsed.bits,
            fingerprint_md5=parsed.fingerprint_md5,
            fingerprint_sha256=parsed.fingerprint_sha256,
        )
        # The rate limiter stays on (its Redis call is part of every /allowed), with a limit the
        # benchmark's single actor cannot reach.
        await conn.execute("UPDATE application_settings SET gitlab_shell_operation_limit = 1000000000")
        agent_token = "glagent-" + uuid.uuid4().hex
        agent_id = await conn.fetchval(
            "INSERT INTO cluster_agents (name, project_id, created_by_user_id) VALUES ('bench', $1, $2) RETURNING id",
            project_id,
            user_id,
        )
        await conn.execute(
            "INSERT INTO cluster_agent_tokens (agent_id, token_digest) VALUES ($1, $2)",
            agent_id,
            token_digest(agent_token),
        )
    finally:
        await conn.close()
    return {
        "key_id": str(key.id),
        "key_blob": base64.b64encode(parsed.blob).decode(),
        "project_id": str(project_id),
        "user_id": str(user_id),
        "agent_token": agent_token,
    }


async def create_database(admin_url: str, name: str) -> str:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return admin_url.rsplit("/", 1)[0] + "/" + name


def prepare(database_url: str) -> dict[str, str]:
    asyncio.run(migrate(database_url))
    return asyncio.run(seed(database_url))


def scenarios(port: int, data: dict[str, str], floor_port: int = 0) -> dict[str, Request]:
    now = int(time.time())
    shell = jwt.encode({"iss": "gitlab-shell", "iat": now, "exp": now + 6 * 3600}, SHELL_SECRET, algorithm="HS256")
    kas = jwt.encode(
        {"iss": "gitlab-kas", "aud": ["gitlab"], "iat": now, "exp": now + 6 * 3600}, KAS_SECRET, algorithm="HS256"
    )
    json_headers = {"Content-Type": "application/json"}
    shell_headers = {"Gitlab-Shell-Api-Request": shell, **json_headers}
    kas_headers = {"Gitlab-Kas-Api-Request": kas, **json_headers}
    base = f"http://127.0.0.1:{port}/api/v4/internal"
    key_blob = data["key_blob"].replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
    gl_repository = "project-" + data["project_id"]
    return {
        FLOOR: Request(
            "GET", f"http://127.0.0.1:{floor_port}/api/v4/internal/authorized_keys?key={key_blob}", shell_headers, None
        ),
        # GitLab FOSS's answer to an EE-only OTP check: a constant, read from no backend
        SERVICE_FLOOR: Request("POST", f"{base}/two_factor_push_otp_check", shell_headers, "{}"),
        "authorized_keys": Request("GET", f"{base}/authorized_keys?key={key_blob}", shell_headers, None),
        "allowed_any": Request(
            "POST",
            f"{base}/allowed",
            shell_headers,
            '{"action":"git-upload-pack","project":"bench/hot.git","changes":"_any","protocol":"ssh","key_id":"'
            + data["key_id"]
            + '"}',
        ),
        "pre_receive": Request(
            "POST", f"{base}/pre_receive", shell_headers, '{"gl_repository":"' + gl_repository + '"}'
        ),
        "post_receive": Request(
            "POST",
            f"{base}/post_receive",
            shell_headers,
            '{"gl_repository":"'
            + gl_repository
            + '","identifier":"user-'
            + data["user_id"]
            + '","changes":"'
            + "a" * 40
            + " "
            + "b" * 40
            + ' refs/heads/main\\n","push_options":null}',
        ),
        "usage_metrics": Request(
            "POST",
            f"{base}/kubernetes/usage_metrics",
            kas_headers,
            '{"counters":{"k8s_api_proxy_request":3,"flux_git_push_notifications_total":1},'
            '"unique_counters":{"k8s_api_proxy_requests_unique_users_via_ci_access":[1,2,3]}}',
        ),
        "agent_info": Request(
            "GET",
            f"{base}/kubernetes/agent_info",
            {**kas_headers, "Authorization": "Bearer " + data["agent_token"]},
            None,
        ),
    }


def bare_request(port: int) -> Request:
    return Request("POST", f"http://127.0.0.1:{port}/", {"Content-Type": "application/json"}, '{"status":true}')


# ---------------------------------------------------------------------------------------------
# one topology


@dataclass
class Backends:
    name: str  # shown in the table's title
    database_url: str
    redis_url: str
    data: dict[str, str]
    env: dict[str, str] = field(default_factory=dict)  # extra service environment


@dataclass
class Options:
    rounds: int
    seconds: int
    paced_rounds: int
    paced_seconds: int
    connections: int
    noise_bound: float
    endpoints: list[str]
    service_log: Path | None
    floor_port: int = 0  # bench/bare.py --floor
    bare_reference: BareReference | None = None
    slow_bound: float = SLOW_BOUND

    def verdict_refused(self, bare: list[float]) -> str | None:
        """Why the bare rounds beside a row allow no verdict, if they do not."""
        if spread(bare) > self.noise_bound:
            return f"noisy: {NO_VERDICT} (bare spread {spread(bare):.2f} > {self.noise_bound:.2f})"
        reference = self.bare_reference
        if reference is not None and statistics.median(bare) < self.slow_bound * reference.rps:
            return (
                f"slow machine: {NO_VERDICT} (bare {statistics.median(bare):,.0f} req/s < {self.slow_bound:.0%}"
                f" of the reference {reference.rps:,.0f})"
            )
        return None


def service_env(workdir: Path, backends: Backends) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))}
    env.update(
        {
            "DATABASE_URL": backends.database_url,
            "REDIS_URL": backends.redis_url,
            "GITLAB_SHELL_SECRET_FILE": str(workdir / "shell"),
            "GITLAB_KAS_SECRET_FILE": str(workdir / "kas"),
            "GITLAB_DB_KEY_BASE_FILE": str(workdir / "db_key_base"),
            **backends.env,
        }
    )
    return env


def measure(
    topology: str,
    backends: Backends,
    workdir: Path,
    options: Options,
    bare_port: int,
    worker_counts: tuple[int, ...] = (1,),
    paced: bool = True,
    say: Callable[[str], None] = print,
) -> list[Round]:
    """Alternating bare and service rounds for every endpoint, then the paced rounds; all rounds, in order."""
    env = service_env(workdir, backends)
    targets = {1: "service", 2: "service-2w"}
    services = {targets[n]: Service(env, n, workdir, options.service_log) for n in worker_counts}
    bare = bare_request(bare_port)
    rounds: list[Round] = []

    def one(
        target: str,
        endpoint: str,
        kind: str,
        request: Request,
        seconds: int,
        delay: float | None = None,
        offered: float = 0.0,
    ) -> Round:
        started = time.time()
        rps, p50, p99, errors = run_wrk(request, seconds, options.connections, delay)
        r = Round(topology, target, endpoint, kind, seconds, rps, p50, p99, errors, started, offered)
        if target in services:
            r.worker_rss_mb = services[target].worker_peak_rss_mb()
        rounds.append(r)
        return r

    try:
        requests = {t: scenarios(s.port, backends.data, options.floor_port) for t, s in services.items()}
        for target, service in list(services.items()):
            try:
                service.wait_ready(requests[target]["authorized_keys"])
            except RuntimeError:
                # once more, its output kept this time, to say why (the tree may be mid-edit)
                service.stop()
                log = workdir / f"{target}-boot.log"
                services[target] = service = Service(env, service.workers_wanted, workdir, log)
                requests[target] = scenarios(service.port, backends.data, options.floor_port)
                try:
                    service.wait_ready(requests[target]["authorized_keys"])
                except RuntimeError as exc:
                    tail = log.read_text(errors="replace").strip().splitlines()[-6:]
                    raise RuntimeError(f"{exc}; its last lines:\n" + "\n".join(tail)) from None
        say(f"[{topology}] warm-up")
        one("bare", "-", "warmup", bare, 1)
        for target in services:
            for endpoint in options.endpoints:
                one(target, endpoint, "warmup", requests[target][endpoint], 1)
        total = options.rounds * len(options.endpoints) * len(services)
        done = 0
        for _ in range(options.rounds):
            for endpoint in options.endpoints:
                for target in services:
                    one("bare", endpoint, "saturated", bare, options.seconds)
                    one(target, endpoint, "saturated", requests[target][endpoint], options.seconds)
                    done += 1
            say(f"[{topology}] {done}/{total} service rounds")
        one("bare", "-", "saturated", bare, options.seconds)
        if paced and options.paced_rounds:
            summary = summarise(rounds)
            for target in services:
                for endpoint in options.endpoints:
                    rate = LOAD_FACTOR * statistics.median(summary[(target, endpoint)].rps)
                    cycle_ms = options.connections * 1000.0 / rate  # per connection, between request starts
                    # calibration: what each request adds to the pause (latency, wrk's own turn-around)
                    calibration = one(target, endpoint, "calibration", requests[target][endpoint], 2, cycle_ms, rate)
                    achieved_cycle = options.connections * 1000.0 / max(calibration.rps, 1.0)
                    # at most half the pause: a calibration round slowed by a neighbour's burst must
                    # not turn the paced rounds into a closed loop
                    delay = max(0.5 * cycle_ms, cycle_ms - max(0.0, achieved_cycle - cycle_ms))
                    for _ in range(options.paced_rounds):
                        one(target, endpoint, "paced", requests[target][endpoint], options.paced_seconds, delay, rate)
            say(f"[{topology}] paced rounds done")
    finally:
        for service in services.values():
            service.stop()
    return rounds


def drain_jobs(
    env: dict[str, str],
    database_url: str,
    workdir: Path,
    log: Path | None,
    seconds: float = 5.0,
    startup_timeout: float = 60.0,
) -> str:
    """The PostReceive jobs the post_receive rounds queued, and how fast one job worker runs them
    afterwards (alone on the machine but for PostgreSQL): the capacity to plan next to the request
    rate. Every bench push is to the same repository, and the jobs of one repository run one at a
    time (in push order), so this is the rate of one repository's pushes, with the rounds' backlog
    queued in front of it (the drain after a worker outage).

    The worker's start-up (interpreter, imports, connections, registration) is measured apart: the
    clock for the rate starts when the first job has left 'todo', and runs `seconds` (or until the
    backlog is gone)."""
    import asyncpg

    async def watch(worker: subprocess.Popen[bytes], started: float) -> tuple[int, float | None, int, float]:
        """(queued before, start-up seconds or None, jobs run in the timed interval, its length)."""
        conn = await asyncpg.connect(database_url)
        try:

            async def todo() -> int:
                return int(await conn.fetchval("SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo'"))

            before = await todo()
            first = before
            while first >= before and before > 0 and worker.poll() is None:
                if time.monotonic() - started > startup_timeout:
                    return before, None, 0, 0.0
                await asyncio.sleep(0.02)
                first = await todo()
            if first >= before:
                return before, None, 0, 0.0
            t0 = time.monotonic()
            startup = t0 - started
            left = first
            while time.monotonic() - t0 < seconds and left > 0 and worker.poll() is None:
                await asyncio.sleep(0.05)
                left = await todo()
            return before, startup, first - left, time.monotonic() - t0
        finally:
            await conn.close()

    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
    started = time.monotonic()
    worker = subprocess.Popen(
        [sys.executable, "-m", "service", "worker"],
        cwd=ROOT,
        env={**env, "GITLAB_INTERNAL_API_STATE_DIR": str(workdir / "jobs-worker")},
        stdout=out,
        stderr=out,
    )
    try:
        before, startup, ran, elapsed = asyncio.run(watch(worker, started))
    finally:
        stop_process(worker)
        if log:
            out.close()  # type: ignore[union-attr]
    head = (
        f"post_receive jobs: {before:,} queued by the rounds (not run during them: production runs them in "
        "`worker` processes); one `worker` then"
    )
    if before == 0:
        return f"{head} had none to run"
    if startup is None:
        return f"{head} ran none within {startup_timeout:.0f} s of its start (exit code {worker.returncode})"
    rate = ran / elapsed if elapsed > 0 else math.nan
    return (
        f"{head} started in {startup:.2f} s (to its first job) and ran {ran:,} in the next {elapsed:.1f} s "
        f"({rate:,.0f} jobs/s, one repository, so one at a time)"
    )


# ---------------------------------------------------------------------------------------------
# reports


def table(topology: str, title: str, rounds: list[Round], options: Options, verdicts: bool) -> tuple[list[str], bool]:
    """The table's lines and whether it missed a target (never when noisy: then no verdict at all)."""
    summary = summarise(rounds)
    lines = [f"== {topology}: {title}"]
    bare_all = [r.rps for r in rounds if r.target == "bare" and r.kind == "saturated"]
    lines.append(
        f"bare aiohttp handler, all {len(bare_all)} bare rounds: {fmt_range(bare_all)} req/s, "
        f"spread (max/min) {spread(bare_all):.2f}"
    )
    head = (
        f"{'endpoint':<16}{'bare req/s med (min-max)':>27}{'service req/s':>15}{'ratio med (min-max)':>22}"
        f"{'target':>7} {'paced req/s':>15}{'p50':>6}{'p99':>7}{'err':>5}  verdict"
    )
    lines += [head, "-" * len(head)]
    missed = False
    for endpoint in options.endpoints:
        s = summary.get(("service", endpoint))
        if s is None:
            continue
        paced = [r for r in rounds if r.target == "service" and r.endpoint == endpoint and r.kind == "paced"]
        p50 = statistics.median(r.p50_ms for r in paced) if paced else math.nan
        p99 = max(r.p99_ms for r in paced) if paced else math.nan  # the worst paced round
        offered = paced[0].offered if paced else 0.0
        achieved = statistics.median(r.rps for r in paced) if paced else 0.0
        errors = sum(r.errors for r in rounds if r.target == "service" and r.endpoint == endpoint)  # warm-up too
        target = TARGETS.get(endpoint)
        ratio_text = f"{s.ratio:.2f} ({min(s.ratios):.2f}-{max(s.ratios):.2f})"
        if endpoint == FLOOR:
            verdict = "- (the most any endpoint can reach: the bare handler + access log + 1 middleware, answering as the service does)"
        elif endpoint == SERVICE_FLOOR:
            verdict = "- (the service's common path (shell JWT, correlation id, counts, access log), a constant answer)"
        elif not verdicts:
            verdict = "-"
        elif refused := options.verdict_refused(s.bare):
            verdict = refused
        elif paced and not PACING_TOLERANCE[0] <= achieved / offered <= PACING_TOLERANCE[1]:
            verdict = f"noisy: no verdict (paced rounds reached {achieved / offered:.0%} of the offered rate)"
        else:
            why = []
            if target is not None and s.ratio < target:
                why.append("ratio")
            if paced and p99 > P99_LIMIT_MS:
                why.append("p99")
            if errors:
                why.append("errors")
            if why:
                verdict = "MISS (" + ", ".join(why) + ")"
                missed = True
            elif not paced:  # the ratio held, but the p99 limit was not measured (--paced-rounds 0)
                verdict = f"ratio ok, p99 not measured: {NO_VERDICT}"
            else:
                verdict = "ok"
        lines.append(
            f"{endpoint:<16}{fmt_range(s.bare):>27}{statistics.median(s.rps):>15,.0f}{ratio_text:>22}"
            f"{(f'{target:.2f}' if target and verdicts else '-'):>7} "
            f"{(f'{achieved:,.0f}/{offered:,.0f}' if paced else '-'):>15}{p50:>6.1f}{p99:>7.1f}{errors:>5}  {verdict}"
        )
    if summary.get(("service", "post_receive")):
        lines.append(
            "post_receive: each push's PostReceive job is queued, but no job worker runs during the rounds (the "
            "default, `jobs.in_process`, runs them in every web worker; production runs `worker` processes, as "
            "GitLab runs Sidekiq): the job worker's rate is the `post_receive jobs` line"
        )
    peak = max((r.worker_rss_mb for r in rounds), default=0.0)
    rss_ok = peak <= RSS_LIMIT_MB
    lines.append(
        f"worker peak RSS (VmHWM of the largest child of the master): {peak:.0f} MB "
        f"(limit {RSS_LIMIT_MB:.0f} MB){'  ok' if rss_ok else '  OVER' if verdicts else ''}"
    )
    if verdicts and not rss_ok:
        missed = True
    return lines, missed


def scaling_options(options: Options) -> Options:
    """workers2 measures the scaling endpoints only (all of them when none was asked for)."""
    return dataclasses.replace(options, endpoints=[e for e in options.endpoints if e in SCALING_ENDPOINTS] or options.endpoints)


def scaling_table(rounds: list[Round], options: Options) -> tuple[list[str], bool]:
    summary = summarise(rounds)
    factors = scaling(rounds)
    lines = [
        "== workers2: the unix backends; `serve --workers 2` against `--workers 1`, rounds alternating "
        "bare, 1 worker, bare, 2 workers",
        f"{'endpoint':<16}{'bare req/s med (min-max)':>27}{'1 worker':>10}{'2 workers':>11}"
        f"{'2w/1w med (min-max)':>22}{'target':>8}  verdict",
    ]
    lines.append("-" * len(lines[-1]))
    missed = False
    for endpoint in options.endpoints:
        one, two = summary.get(("service", endpoint)), summary.get(("service-2w", endpoint))
        if one is None or two is None:
            continue
        f = factors.get(endpoint, [])
        bare = one.bare + two.bare
        target = SCALING_TARGET if endpoint in SCALING_ENDPOINTS else None
        if refused := options.verdict_refused(bare):
            verdict = refused
        elif target is None:
            verdict = "-"
        elif statistics.median(f) >= target and not (one.errors or two.errors):
            verdict = "ok"
        else:
            verdict = "MISS"
            missed = True
        lines.append(
            f"{endpoint:<16}{fmt_range(bare):>27}{statistics.median(one.rps):>10,.0f}"
            f"{statistics.median(two.rps):>11,.0f}"
            f"{f'{statistics.median(f):.2f} ({min(f):.2f}-{max(f):.2f})':>22}"
            f"{(f'{target:.2f}' if target else '-'):>8}  {verdict}"
        )
    return lines, missed


# ---------------------------------------------------------------------------------------------
# profiling


# Frames that only pass the request on: a sample under them belongs to what they called.
PASS_THROUGH = frozenset({"request_middleware"})
CATEGORIES: list[tuple[str, Callable[[str, str], bool]]] = [
    # (category, test on (function name, file)); checked from the innermost frame outwards, the
    # specific ones first over the whole stack: a sample inside asyncpg that is deep in asyncio's
    # Future code is still database time.
    ("logging", lambda n, f: "/logging/" in f or f.endswith("service/logs.py")),
    ("JSON (orjson/json)", lambda n, f: "orjson" in f or "orjson" in n or "/json/" in f),
    (
        "auth/JWT",
        lambda n, f: (
            "/jwt/" in f
            or "hmac" in f
            or "hashlib" in f
            or "libcrypto" in f
            # the header checks and the consumers' checks; the handler runs in the middleware, not here
            or f.endswith("service/auth.py")
        ),
    ),
    (
        "database (asyncpg, psycopg/procrastinate jobs)",
        lambda n, f: (
            "asyncpg" in f
            or "asyncpg" in n
            or "/psycopg" in f
            or "/procrastinate/" in f
            or "/service/db/" in f
            or f.endswith("service/jobs.py")
        ),
    ),
    ("Redis", lambda n, f: "/redis/" in f or "hiredis" in f or "hiredis" in n or "service/redis_" in f),
    (
        "parsing/validation (marshmallow, params)",
        lambda n, f: "/marshmallow/" in f or "/schemas/" in f or f.endswith("service/params.py"),
    ),
    (
        "metrics (prometheus)",
        # not the Metered* wrappers: the Redis call they wrap is Redis time
        lambda n, f: "prometheus_client" in f
        or (f.endswith("service/metrics.py") and n not in PASS_THROUGH and not n.startswith("Metered")),
    ),
]
GENERIC: list[tuple[str, Callable[[str, str], bool]]] = [
    # aiohttp's writer hands the bytes to uvloop's transport, which send()s them at once: below this
    # Python frame is the kernel's loopback send (and, with --profile-native, uvloop's C)
    (
        "socket writes (send syscalls)",
        lambda n, f: f.endswith("aiohttp/http_writer.py") and n.endswith(("_writelines", "_write", "write_eof")),
    ),
    # native frames (--profile-native): the system calls themselves, wherever outside the database
    # and Redis clients they come from (HTTP responses, the access log's write to stdout)
    (
        "socket writes (send syscalls)",
        lambda n, f: "libc" in f and n in {"write", "writev", "send", "sendmsg", "__send"},
    ),
    (
        "socket reads, epoll (syscalls)",
        lambda n, f: "libc" in f and n in {"read", "recv", "recvmsg", "epoll_wait", "epoll_pwait"},
    ),
    # the worker's run() frame is uvloop's C loop: epoll, socket reads, scheduling callbacks
    (
        "event loop (uvloop/asyncio)",
        lambda n, f: f.endswith("aiohttp/worker.py") or "uvloop" in f or "uvloop" in n or "/asyncio/" in f,
    ),
    ("middleware (own code)", lambda n, f: "/service/" in f and "middleware" in n),
    ("handlers/domain (own code)", lambda n, f: "/service/" in f),
    (
        "aiohttp/yarl/multidict",
        lambda n, f: "/aiohttp/" in f or "/yarl/" in f or "/multidict/" in f or "_http_parser" in n or "llhttp" in n,
    ),
]


def classify(stack: list[tuple[str, str]]) -> str:
    """One category for one sample; `stack` is root first, (function, file) per frame."""
    for rules in (CATEGORIES, GENERIC):
        for name, file in reversed(stack):
            for category, test in rules:
                if test(name, file):
                    return category
    return "other (interpreter, gc, ...)"


def summarise_profile(path: Path) -> tuple[Counter[str], Counter[str], float]:
    """Categories and the hottest leaf functions of a py-spy speedscope file."""
    doc = json.loads(path.read_text())
    frames = [(f.get("name", "?"), f.get("file", "") or "") for f in doc["shared"]["frames"]]
    categories: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0.0
    for profile in doc["profiles"]:
        for sample, weight in zip(profile["samples"], profile["weights"]):
            stack = [frames[i] for i in sample]
            categories[classify(stack)] += weight
            if stack:
                name, file = stack[-1]
                leaves[f"{name} ({Path(file).name if file else '?'})"] += weight
            total += weight
    return categories, leaves, total


def profile(
    endpoints: list[str], workdir: Path, options: Options, seconds: int, native: bool, stamp: str, backends: Backends
) -> int:
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        print("bench: py-spy is not installed (pip install -e '.[bench]')", file=sys.stderr)
        return 2
    service = Service(service_env(workdir, backends), 1, workdir, options.service_log)
    try:
        requests = scenarios(service.port, backends.data)
        service.wait_ready(requests["authorized_keys"])
        for endpoint in endpoints:
            run_wrk(requests[endpoint], 2, options.connections)  # warm-up
            out = RESULTS / f"profile-{endpoint}-{stamp}.speedscope.json"
            fd, name = tempfile.mkstemp(suffix=".lua")
            os.close(fd)
            Path(name).write_text(requests[endpoint].lua())
            load = subprocess.Popen(
                ["wrk", "-t1", f"-c{options.connections}", f"-d{seconds + 3}s", "-s", name, requests[endpoint].url],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            try:
                time.sleep(1)
                command = [
                    py_spy,
                    "record",
                    "--pid",
                    str(service.worker_pid()),
                    "--duration",
                    str(seconds),
                    "--rate",
                    "200",
                    "--format",
                    "speedscope",
                    "--output",
                    str(out),
                ]
                command += ["--native"] if native else ["--nonblocking"]
                subprocess.run(command, check=True, capture_output=True)
            finally:
                wrk_out, _ = load.communicate(timeout=seconds + 30)
                Path(name).unlink()
            rate = re.search(r"Requests/sec:\s+([\d.]+)", wrk_out)
            categories, leaves, total = summarise_profile(out)
            print(
                f"\n== profile {endpoint}: {total:.1f} s of busy samples of the worker over {seconds} s "
                f"({'native frames, process paused per sample' if native else 'Python frames only, non-blocking'}), "
                f"{float(rate.group(1)) if rate else 0:,.0f} req/s under the profiler; {out.relative_to(ROOT)}"
            )
            for category, count in categories.most_common():
                print(f"  {100.0 * count / total:5.1f}%  {category}")
            print("  hottest leaf functions:")
            for leaf, count in leaves.most_common(12):
                print(f"  {100.0 * count / total:5.1f}%  {leaf}")
    finally:
        service.stop()
    return 0


# ---------------------------------------------------------------------------------------------
# main


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def available(topology: str) -> str | None:
    """Why a topology cannot run here, or None."""
    if topology in {"tcp", "pgbouncer"}:
        try:
            from tests.topology import postgres_servers
        except ImportError as exc:
            return f"tests/topology/postgres_servers.py cannot be imported ({exc})"
        if postgres_servers.PG_BIN is None:
            return "no PostgreSQL server binaries (apt-get install postgresql)"
        if shutil.which("redis-server") is None:
            return "no redis-server (apt-get install redis-server)"
        if topology == "pgbouncer" and postgres_servers.PGBOUNCER is None:
            return "no pgbouncer (apt-get install pgbouncer)"
    return None


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:  # NaN too
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def _share(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not a share in (0, 1]")
    return value


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--topologies", default="", help=f"comma-separated, of {','.join(TOPOLOGIES)} (default: all available)"
    )
    parser.add_argument("--only", default="", help="comma-separated endpoints (default: all)")
    parser.add_argument("--rounds", type=int, default=5, help="service rounds per endpoint and topology (default 5)")
    parser.add_argument(
        "--duration", "--seconds", dest="duration", type=int, default=3, help="seconds per round (default 3)"
    )
    parser.add_argument("--paced-rounds", type=int, default=2, help="paced latency rounds per endpoint (default 2)")
    parser.add_argument("--paced-duration", type=int, default=4, help="seconds per paced round (default 4)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--noise-bound", type=float, default=1.25, help="max/min of the bare rounds beyond which no verdict"
    )
    parser.add_argument(
        "--bare-reference",
        type=_positive,
        metavar="RPS",
        help="the bare handler's req/s on this machine when quiet (default: the best of earlier runs here)",
    )
    parser.add_argument(
        "--slow-bound",
        type=_share,
        default=SLOW_BOUND,
        help=f"share of the bare reference under which a row gives no verdict (default {SLOW_BOUND})",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="1 round of 1 s per endpoint, unix only, no verdict: checks the harness (CI)",
    )
    parser.add_argument(
        "--profile",
        default="",
        metavar="ENDPOINT[,ENDPOINT]",
        help="instead of the benchmark: py-spy record the worker under load (unix topology)",
    )
    parser.add_argument("--profile-duration", type=int, default=10)
    parser.add_argument(
        "--profile-native",
        action="store_true",
        help="native frames too (uvloop, asyncpg's Cython, orjson); pauses the worker per sample",
    )
    parser.add_argument("--service-log", type=Path, help="append the services' output (access log included) here")
    args = parser.parse_args(argv)
    if args.smoke:
        args.rounds, args.duration, args.paced_rounds, args.paced_duration = 1, 1, 1, 1
        args.topologies = args.topologies or "unix"
    return args


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one must not cut the clean-up short
    sys.exit(128 + signum)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    # Stopped with SIGTERM (kill, a CI timeout): unwind as for Ctrl-C, so that the servers it
    # started (bare handlers, services, PostgreSQL, Redis, PgBouncer) are stopped with it.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    if shutil.which("wrk") is None:
        print("bench: `wrk` is not installed (Debian/Ubuntu: apt-get install wrk)", file=sys.stderr)
        return 2
    endpoints = [e for e in ENDPOINTS if not args.only or e in args.only.split(",")]
    unknown = set(filter(None, args.only.split(","))) - set(ENDPOINTS)
    wanted = [t for t in TOPOLOGIES if not args.topologies or t in args.topologies.split(",")]
    unknown |= set(filter(None, args.topologies.split(","))) - set(TOPOLOGIES)
    if unknown or not endpoints:
        print(f"bench: unknown endpoint or topology: {', '.join(sorted(unknown)) or args.only}", file=sys.stderr)
        return 2
    options = Options(
        args.rounds,
        args.duration,
        args.paced_rounds,
        args.paced_duration,
        args.connections,
        args.noise_bound,
        endpoints,
        args.service_log,
        slow_bound=args.slow_bound,
    )
    machine = this_machine()
    options.bare_reference = bare_reference(
        RESULTS, machine, args.connections, args.noise_bound, given=args.bare_reference
    )
    command = shlex.join(["python3", "dev.py", "bench", *argv])
    started = datetime.datetime.now(datetime.timezone.utc)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    header = [
        f"command: {command}",
        f"date: {started.isoformat(timespec='seconds')}; nproc {os.cpu_count()}; loadavg at start {loadavg()}",
        f"method: wrk -t1 -c{args.connections} on loopback; per endpoint {args.rounds} service rounds of "
        f"{args.duration} s, each between two bare rounds; ratio = service / mean of its two bare neighbours; "
        f"verdict only when those bare rounds spread <= {args.noise_bound:.2f} (max/min) and their median is at "
        f"least {args.slow_bound:.0%} of the bare reference",
        f"paced: {args.paced_rounds} round(s) of {args.paced_duration} s at {LOAD_FACTOR:.0%} of the endpoint's "
        "median rate (wrk Lua delay(): exponential pauses per connection, calibrated; not open-loop), "
        f"p50 median and p99 worst of them, limit {P99_LIMIT_MS:.0f} ms; achieved/offered req/s shown",
        f"machine: {machine['nproc']} cores, {machine['cpu'] or 'CPU model unknown'}",
        reference_line(options.bare_reference, args.slow_bound),
    ]
    skipped = []
    for topology in list(wanted):
        reason = available(topology)
        if reason:
            wanted.remove(topology)
            skipped.append(f"{topology} skipped: {reason}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="gia-bench-"))
    (workdir / "shell").write_bytes(SHELL_SECRET)
    (workdir / "kas").write_text(base64.b64encode(KAS_SECRET).decode())
    say = lambda line: print(line, file=sys.stderr, flush=True)
    raw: dict[str, Any] = {
        "command": command,
        "date": started.isoformat(),
        "nproc": os.cpu_count(),
        "machine": machine,
        "smoke": args.smoke,
        "bare_reference": asdict(options.bare_reference) if options.bare_reference else None,
        "loadavg_start": os.getloadavg(),
        "options": {**asdict(options), "service_log": None, "bare_reference": None},
        "topologies": {},
    }
    missed = noisy = False
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, workdir, True)
        bare_port = free_port()
        bare = subprocess.Popen([sys.executable, str(ROOT / "bench" / "bare.py"), str(bare_port)], cwd=ROOT)
        stack.callback(stop_process, bare)
        wait_for_port(bare_port)
        options.floor_port = free_port()
        floor = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "bare.py"), str(options.floor_port), "--floor"],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,  # its access log, as the service's
        )
        stack.callback(stop_process, floor)
        wait_for_port(options.floor_port)

        def unix_backends() -> Backends:
            from service.embedded import start_postgres, start_redis

            say("starting the embedded PostgreSQL and Redis (unix sockets)")
            server, database_url = start_postgres(workdir / "embedded", database="gia_bench", cleanup_mode="delete")
            stack.callback(server.cleanup)
            redis, redis_url = start_redis(workdir / "embedded", persist=False)
            stack.callback(redis.stop)
            return Backends(
                "embedded PostgreSQL + Redis (Valkey) over unix sockets", database_url, redis_url, prepare(database_url)
            )

        def tcp_backends() -> Backends:
            from tests.topology.postgres_servers import PostgresServer

            say("starting PostgreSQL (tests/topology PostgresServer) and redis-server on TCP")
            primary = PostgresServer.primary()
            stack.callback(primary.destroy)
            redis = RedisServer(workdir)
            stack.callback(stop_process, redis.process)
            database_url = asyncio.run(create_database(primary.url(), "gia_bench"))
            return Backends(
                f"PostgreSQL 127.0.0.1:{primary.port} + redis-server 127.0.0.1:{redis.port} over TCP",
                database_url,
                redis.url,
                prepare(database_url),
            )

        made: dict[str, Backends] = {}

        def backends_for(kind: str) -> Backends:
            if kind not in made:
                made[kind] = unix_backends() if kind == "unix" else tcp_backends()
            return made[kind]

        if args.profile:
            wanted_profiles = [e for e in args.profile.split(",") if e]
            if set(wanted_profiles) - set(ENDPOINTS) or FLOOR in wanted_profiles:
                print(f"bench: unknown endpoint in --profile {args.profile}", file=sys.stderr)
                return 2
            return profile(
                wanted_profiles,
                workdir,
                options,
                args.profile_duration,
                args.profile_native,
                stamp,
                backends_for("unix"),
            )

        def run_topology(topology: str) -> tuple[list[Round], list[str], bool]:
            if topology == "unix":
                b = backends_for("unix")
                rounds = measure(topology, b, workdir, options, bare_port, say=say)
                lines, miss = table(
                    topology, f"{b.name}, 1 worker (the targets apply here)", rounds, options, verdicts=not args.smoke
                )
            elif topology == "nocache":
                b = backends_for("unix")
                nocache = Backends(
                    f"{b.name}, GITLAB_LOOKUP_CACHE_SECONDS=0 (every lookup asks the database)",
                    b.database_url,
                    b.redis_url,
                    b.data,
                    {"GITLAB_LOOKUP_CACHE_SECONDS": "0"},
                )
                rounds = measure(topology, nocache, workdir, options, bare_port, say=say)
                lines, miss = table(
                    topology, f"{nocache.name}, 1 worker (informative: no targets)", rounds, options, verdicts=False
                )
            elif topology == "tcp":
                b = backends_for("tcp")
                tcp = Backends(b.name, b.database_url, b.redis_url, b.data)
                rounds = measure(topology, tcp, workdir, options, bare_port, say=say)
                lines, miss = table(
                    topology, f"{b.name}, 1 worker (informative: no targets)", rounds, options, verdicts=False
                )
            elif topology == "pgbouncer":
                from tests.topology.postgres_servers import PgBouncer

                b = backends_for("tcp")
                primary_port = int(urlsplit_port(b.database_url))
                bouncer = PgBouncer(primary_port, pool_size=20)
                stack.callback(bouncer.stop)
                pgb = Backends(
                    f"PgBouncer 1.18 (transaction mode, pool 20) 127.0.0.1:{bouncer.port} in front of the tcp "
                    "PostgreSQL, DATABASE_PREPARED_STATEMENTS=false, redis-server over TCP",
                    bouncer.url("gia_bench"),
                    b.redis_url,
                    b.data,
                    {"DATABASE_PREPARED_STATEMENTS": "false", "DATABASE_MIGRATION_URL": b.database_url},
                )
                rounds = measure(topology, pgb, workdir, options, bare_port, say=say)
                lines, miss = table(
                    topology, pgb.name + ", 1 worker (informative: no targets)", rounds, options, verdicts=False
                )
            else:  # workers2
                b = backends_for("unix")
                scaled = scaling_options(options)
                rounds = measure(topology, b, workdir, scaled, bare_port, worker_counts=(1, 2), paced=False, say=say)
                lines, miss = scaling_table(rounds, scaled)
                return rounds, lines, miss
            if "post_receive" in options.endpoints:
                direct = backends_for("unix" if topology in ("unix", "nocache") else "tcp")
                lines.append(
                    drain_jobs(service_env(workdir, direct), direct.database_url, workdir, options.service_log)
                )
            return rounds, lines, miss

        print("\n".join([*header, *skipped]), flush=True)
        for topology in wanted:
            try:
                rounds, lines, miss = run_topology(topology)
            except Exception as exc:  # the other topologies still run; the run fails
                rounds, lines, miss = [], [f"== {topology}: FAILED: {type(exc).__name__}: {exc}"], True
            missed |= miss
            noisy |= any_refused(lines)
            raw["topologies"][topology] = {"rounds": [asdict(r) for r in rounds], "table": lines}
            (RESULTS / f"bench-{stamp}.json").write_text(json.dumps(raw, indent=1))
            print("\n".join(["", *lines]), flush=True)  # as it goes: a later failure loses nothing
            say(f"[{topology}] done")

    ended = datetime.datetime.now(datetime.timezone.utc)
    footer = [
        f"finished {ended.isoformat(timespec='seconds')} ({(ended - started).total_seconds() / 60:.1f} min); "
        f"loadavg at end {loadavg()}; raw rounds: bench/results/bench-{stamp}.json"
    ]
    raw["loadavg_end"] = os.getloadavg()
    (RESULTS / f"bench-{stamp}.json").write_text(json.dumps(raw, indent=1))
    print("\n".join(["", *footer]))
    if args.smoke:
        # the harness works when every endpoint answered 2xx, with a rate
        bad = [r for rs in raw["topologies"].values() for r in rs["rounds"] if r["errors"] or r["rps"] <= 0]
        return 1 if bad else 0
    return 1 if missed else 3 if noisy else 0


def urlsplit_port(url: str) -> int:
    from urllib.parse import urlsplit

    port = urlsplit(url).port
    assert port is not None, url
    return port


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
