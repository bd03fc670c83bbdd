"""Load benchmark: the hot internal endpoints as ratios of a bare aiohttp JSON handler, same machine, same run.

    python3 dev.py bench [--duration 10] [--connections 64] [--only allowed_any,pre_receive]

Needs `wrk` (Debian: apt-get install wrk). Uses DATABASE_URL / REDIS_URL when set (a scratch
database is created next to the given one), otherwise the embedded servers. The service runs as one
worker process exactly as `gitlab-internal-api serve` runs it, access log included.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import jwt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service.db.migrate import migrate  # noqa: E402

SHELL_SECRET = b"bench-shell-secret-0123456789abcd"
KAS_SECRET = bytes(range(32))

TARGETS = {  # ratio of the bare handler's requests per second that each endpoint must reach
    "authorized_keys": 0.50,
    "pre_receive": 0.50,
    "post_receive": 0.40,
    "allowed_any": 0.30,
    "usage_metrics": 0.40,
    "agent_info": None,
}
P99_LIMIT_MS = 25.0
LOAD_FACTOR = 0.7  # latency is judged at 70% of each endpoint's own maximum throughput
RSS_LIMIT_MB = 150.0


@dataclass
class Result:
    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    rss_mb: float
    paced_rate: float = 0.0
    paced_p50_ms: float = 0.0
    paced_p99_ms: float = 0.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def rss_mb(pid: int) -> float:
    """Peak resident set size (VmHWM) of the process."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    assert match, text
    return float(match.group(1)) * _UNITS[match.group(2)]


def wrk(
    url: str,
    method: str,
    headers: dict[str, str],
    body: str | None,
    duration: int,
    connections: int,
    rate: float | None = None,
) -> tuple[float, float, float, int]:
    """Closed loop (each connection sends as fast as answers come) or, with `rate`, paced: every
    connection waits an exponentially distributed pause so that together they offer `rate`
    requests per second (wrk's delay() hook; wrk2 is not packaged)."""
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    lines = [f'wrk.method = "{method}"']
    if rate:
        mean_ms = connections * 1000.0 / rate
        lines += [
            "math.randomseed(os.time())",
            f"function delay() return math.floor(-math.log(1 - math.random()) * {mean_ms:.3f}) end",
        ]
    for name, value in headers.items():
        lines.append(f'wrk.headers["{name}"] = "{value}"')
    if body is not None:
        lines.append("wrk.body = [[" + body + "]]")
    script.write_text("\n".join(lines) + "\n")
    try:
        out = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), url],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    finally:
        script.unlink()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    distribution = out[out.index("Latency Distribution") :]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", distribution, re.MULTILINE).group(1))
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", distribution, re.MULTILINE).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = int(non2xx.group(1)) if non2xx else 0
    if socket_errors:
        errors += sum(int(g) for g in socket_errors.groups())
    return rps, p50, p99, errors


async def seed(database_url: str) -> dict[str, str]:
    """One user with a key, a public project, an agent with a token: the data the requests touch."""
    from service.db import keys as keys_db
    from service.db import projects as projects_db
    from service.domain.ssh_keys import parse_public_key
    from service.domain.tokens import token_digest

    conn = await asyncpg.connect(database_url)
    try:
        user_id = await conn.fetchval(
            "INSERT INTO users (username, email, name) VALUES ('bench', 'bench@example.com', 'Bench') RETURNING id"
        )
        namespace_id = await conn.fetchval(
            "INSERT INTO namespaces (name, path, type, owner_id) VALUES ('bench', 'bench', 'User', $1) RETURNING id", user_id
        )
        await conn.execute("UPDATE namespaces SET traversal_ids = ARRAY[id] WHERE id = $1", namespace_id)
        await projects_db.insert_route(conn, "Namespace", namespace_id, "bench", "Bench")
        project_id = await projects_db.insert_project(
            conn, name="hot", path="hot", namespace_id=namespace_id, namespace_full_path="bench",
            creator_id=user_id, visibility_level=20, default_branch="main",
        )
        blob = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + os.urandom(32)
        parsed = parse_public_key("ssh-ed25519 " + base64.b64encode(blob).decode())
        key = await keys_db.insert_key(
            conn, user_id=user_id, deploy_key=False, key=parsed.text, title="bench", key_type=parsed.key_type,
            bits=parsed.bits, fingerprint_md5=parsed.fingerprint_md5, fingerprint_sha256=parsed.fingerprint_sha256,
        )
        # The rate limiter stays on (its Redis call is part of every /allowed), with a limit the
        # benchmark's single actor cannot reach.
        await conn.execute("UPDATE application_settings SET gitlab_shell_operation_limit = 1000000000")
        agent_token = "glagent-" + uuid.uuid4().hex
        agent_id = await conn.fetchval(
            "INSERT INTO cluster_agents (name, project_id, created_by_user_id) VALUES ('bench', $1, $2) RETURNING id",
            project_id, user_id,
        )
        await conn.execute(
            "INSERT INTO cluster_agent_tokens (agent_id, token_digest) VALUES ($1, $2)", agent_id, token_digest(agent_token)
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


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--only", default="", help="comma-separated endpoint names")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("bench: `wrk` is not installed (Debian/Ubuntu: apt-get install wrk)", file=sys.stderr)
        return 2

    workdir = Path(tempfile.mkdtemp(prefix="gia-bench-"))
    started = []
    processes: list[subprocess.Popen[bytes]] = []
    admin_url = os.environ.get("DATABASE_URL")
    database = "gia_bench_" + uuid.uuid4().hex[:8]
    try:
        if admin_url:
            async def create() -> None:
                conn = await asyncpg.connect(admin_url)
                await conn.execute(f'CREATE DATABASE "{database}"')
                await conn.close()

            asyncio.run(create())
            database_url = with_database(admin_url, database)
        else:
            from service.embedded import start_postgres

            server, database_url = start_postgres(workdir / "state", database=database, cleanup_mode="delete")
            started.append(server.cleanup)
        redis_url = os.environ.get("REDIS_URL")
        if not redis_url:
            from service.embedded import start_redis

            redis_server, redis_url = start_redis(workdir / "state", persist=False)
            started.append(redis_server.stop)
        asyncio.run(migrate(database_url))
        data = asyncio.run(seed(database_url))

        (workdir / "shell").write_bytes(SHELL_SECRET)
        (workdir / "kas").write_text(base64.b64encode(KAS_SECRET).decode())
        service_port, bare_port = free_port(), free_port()
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "GITLAB_SHELL_SECRET_FILE": str(workdir / "shell"),
            "GITLAB_KAS_SECRET_FILE": str(workdir / "kas"),
            "GITLAB_DB_KEY_BASE_FILE": str(workdir / "db_key_base"),
            "GITLAB_INTERNAL_API_STATE_DIR": str(workdir / "state"),
        }
        service = subprocess.Popen(
            [sys.executable, "-m", "service", "serve", "--port", str(service_port), "--no-migrate"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
        )
        bare = subprocess.Popen([sys.executable, str(ROOT / "bench" / "bare.py"), str(bare_port)], cwd=ROOT)
        processes += [service, bare]
        wait_for_port(service_port)
        wait_for_port(bare_port)

        now = int(time.time())
        shell = jwt.encode({"iss": "gitlab-shell", "iat": now, "exp": now + 3600}, SHELL_SECRET, algorithm="HS256")
        kas = jwt.encode(
            {"iss": "gitlab-kas", "aud": ["gitlab"], "iat": now, "exp": now + 3600}, KAS_SECRET, algorithm="HS256"
        )
        json_headers = {"Content-Type": "application/json"}
        shell_headers = {"Gitlab-Shell-Api-Request": shell, **json_headers}
        kas_headers = {"Gitlab-Kas-Api-Request": kas, **json_headers}
        base = f"http://127.0.0.1:{service_port}/api/v4/internal"
        key_blob = data["key_blob"].replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
        scenarios = {
            "authorized_keys": ("GET", f"{base}/authorized_keys?key={key_blob}", shell_headers, None),
            "allowed_any": (
                "POST", f"{base}/allowed", shell_headers,
                '{"action":"git-upload-pack","project":"bench/hot.git","changes":"_any","protocol":"ssh","key_id":"'
                + data["key_id"] + '"}',
            ),
            "pre_receive": ("POST", f"{base}/pre_receive", shell_headers, '{"gl_repository":"project-' + data["project_id"] + '"}'),
            "post_receive": (
                "POST", f"{base}/post_receive", shell_headers,
                '{"gl_repository":"project-' + data["project_id"] + '","identifier":"user-' + data["user_id"]
                + '","changes":"' + "a" * 40 + " " + "b" * 40 + ' refs/heads/main\\n","push_options":null}',
            ),
            "usage_metrics": (
                "POST", f"{base}/kubernetes/usage_metrics", kas_headers,
                '{"counters":{"k8s_api_proxy_request":3,"flux_git_push_notifications_total":1},'
                '"unique_counters":{"k8s_api_proxy_requests_unique_users_via_ci_access":[1,2,3]}}',
            ),
            "agent_info": (
                "GET", f"{base}/kubernetes/agent_info",
                {**kas_headers, "Authorization": "Bearer " + data["agent_token"]}, None,
            ),
        }
        wanted = [name for name in scenarios if not args.only or name in args.only.split(",")]

        # warm-up: connections, prepared statements, caches
        for name in wanted:
            method, url, headers, body = scenarios[name]
            wrk(url, method, headers, body, 2, args.connections)
        bare_rps, bare_p50, bare_p99, _ = wrk(
            f"http://127.0.0.1:{bare_port}/", "POST", json_headers, '{"status":true}', args.duration, args.connections
        )
        results = []
        for name in wanted:
            method, url, headers, body = scenarios[name]
            rps, p50, p99, errors = wrk(url, method, headers, body, args.duration, args.connections)
            result = Result(name, rps, p50, p99, errors, rss_mb(service.pid))
            # Latency at a sustainable load: 70% of what this endpoint just reached. At saturation a
            # closed loop's latency is connections / throughput (Little's law) whatever the code does.
            result.paced_rate = LOAD_FACTOR * rps
            _, result.paced_p50_ms, result.paced_p99_ms, paced_errors = wrk(
                url, method, headers, body, args.duration, args.connections, rate=result.paced_rate
            )
            result.errors += paced_errors
            result.rss_mb = rss_mb(service.pid)
            results.append(result)

        print(f"\none worker, {args.connections} connections, {args.duration}s per run, wrk on loopback, "
              f"{os.cpu_count()} cores")
        print("saturated: every connection sends as fast as answers come (throughput, ratio to bare)")
        print(f"paced: the same connections offering {LOAD_FACTOR:.0%} of that endpoint's saturated rate "
              "(latency target)\n")
        print(f"{'endpoint':<16}{'req/s':>8}{'p50':>7}{'p99':>7}{'ratio':>7}{'target':>7}"
              f"{'paced/s':>9}{'p50':>7}{'p99':>7}{'errors':>7}  verdict")
        print(f"{'bare aiohttp':<16}{bare_rps:>8.0f}{bare_p50:>7.1f}{bare_p99:>7.1f}{1:>7.2f}")
        failed = False
        for r in results:
            ratio = r.rps / bare_rps
            target = TARGETS.get(r.name)
            ok = (target is None or ratio >= target) and r.paced_p99_ms <= P99_LIMIT_MS and r.errors == 0
            failed |= not ok
            print(f"{r.name:<16}{r.rps:>8.0f}{r.p50_ms:>7.1f}{r.p99_ms:>7.1f}{ratio:>7.2f}"
                  f"{(f'{target:.2f}' if target else '-'):>7}{r.paced_rate:>9.0f}{r.paced_p50_ms:>7.1f}"
                  f"{r.paced_p99_ms:>7.1f}{r.errors:>7}  {'ok' if ok else 'MISSED'}")
        print("(latencies in ms)")
        peak = max((r.rss_mb for r in results), default=0.0)
        print(f"\nworker peak RSS: {peak:.0f} MB (limit {RSS_LIMIT_MB:.0f} MB) {'ok' if peak <= RSS_LIMIT_MB else 'OVER'}")
        return 1 if failed or peak > RSS_LIMIT_MB else 0
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
        if admin_url:
            async def drop() -> None:
                conn = await asyncpg.connect(admin_url)
                await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
                await conn.close()

            asyncio.run(drop())
        for stop in reversed(started):
            stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
