"""`gitlab-internal-api serve` as ops run it: a real process, real workers, SIGTERM draining,
workers supervised by the master (gunicorn's arbiter)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import aiohttp
import asyncpg
import psutil
import pytest

from service.config import ROOT
from tests.conftest import _with_database
from tests.factories import add_member, make_project, make_user
from tests.helpers import shell_headers
from tests.topology.postgres_servers import free_port


async def _wait_ready(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(url) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"{url} never became ready")


class Served:
    """One `serve` master; every worker PID seen is remembered so that teardown can stop it."""

    def __init__(self, process: subprocess.Popen[bytes], port: int) -> None:
        self.process, self.port = process, port
        self.seen: set[int] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def workers(self) -> set[int]:
        try:
            pids = {child.pid for child in psutil.Process(self.process.pid).children()}
        except psutil.NoSuchProcess:
            return set()
        self.seen |= pids
        return pids

    async def wait_workers(self, count: int, timeout: float = 10.0, without: set[int] = frozenset()) -> set[int]:
        """The master's `count` workers, none of them in `without`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            workers = self.workers()
            if len(workers) == count and not workers & without:
                return workers
            await asyncio.sleep(0.02)
        raise AssertionError(f"expected {count} workers other than {without}, have {self.workers()}")

    async def stop(self, signum: int = signal.SIGTERM) -> int:
        self.process.send_signal(signum)
        return await asyncio.to_thread(self.process.wait, 60)  # 2 s when the machine is quiet


@pytest.fixture
def serve(backends, secret_files) -> Iterator[Callable[..., Served]]:
    started: list[Served] = []

    def start(*extra: str, timeout: str = "50", stdout: IO[bytes] | int = subprocess.DEVNULL, **env: str) -> Served:
        port = free_port()
        environ = {
            **os.environ,
            "DATABASE_URL": backends.database_url,
            "REDIS_URL": backends.redis_url,
            "GITLAB_SHELL_SECRET_FILE": str(secret_files["shell"]),
            "GITLAB_KAS_SECRET_FILE": str(secret_files["kas"]),
            "GITLAB_DB_KEY_BASE_FILE": str(secret_files["db_key_base"]),
            "GITLAB_ALLOWED_TIMEOUT": timeout,
            "LOG_LEVEL": "WARNING",
            **env,
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "service", "serve", "--port", str(port), "--no-migrate", *extra],
            cwd=ROOT,
            env=environ,
            stdout=stdout,
        )
        served = Served(process, port)
        started.append(served)
        return served

    yield start
    for served in started:
        leftovers = served.seen | served.workers()
        if served.process.poll() is None:
            served.process.kill()
            served.process.wait(10)
        for pid in leftovers:  # workers of a killed master would leave within a second; not waited for
            try:
                psutil.Process(pid).kill()
            except psutil.NoSuchProcess:
                pass


@pytest.mark.parametrize(("workers", "signum"), [("1", signal.SIGTERM), ("2", signal.SIGTERM), ("2", signal.SIGINT)])
async def test_serve_answers_and_stops_cleanly(serve, db, redis, workers, signum):
    served = serve("--workers", workers)
    await _wait_ready(f"{served.url}/-/readiness")
    running = await served.wait_workers(int(workers))
    async with aiohttp.ClientSession() as session:
        for _ in range(10):
            async with session.get(f"{served.url}/api/v4/internal/check", headers=shell_headers()) as resp:
                assert resp.status == 200 and (await resp.json())["redis"] is True
    assert await served.stop(signum) == 0
    assert not [pid for pid in running if psutil.pid_exists(pid)], "workers outlived the master"


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_sigterm_finishes_requests_in_flight(serve, backends, db, redis, workers):
    owner = await make_user(db)
    developer = await make_user(db)
    project = await make_project(db, owner=owner)
    await add_member(db, developer, project, 30)
    served = serve("--workers", workers, timeout="2")
    blocker = await asyncpg.connect(backends.database_url)
    try:
        await _wait_ready(f"{served.url}/-/readiness")
        transaction = blocker.transaction()
        await transaction.start()
        await blocker.execute("LOCK TABLE protected_branches IN ACCESS EXCLUSIVE MODE")  # the push check waits

        async def push() -> tuple[int, dict]:
            async with aiohttp.ClientSession() as session:
                async with session.post(
                    f"{served.url}/api/v4/internal/allowed",
                    json={
                        "action": "git-receive-pack",
                        "gl_repository": f"project-{project['id']}",
                        "changes": f"{'a' * 40} {'b' * 40} refs/heads/main",
                        "protocol": "ssh",
                        "user_id": str(developer["id"]),
                    },
                    headers=shell_headers(),
                ) as resp:
                    return resp.status, await resp.json()

        in_flight = asyncio.create_task(push())
        waiting = (
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'gitlab-internal-api'"
            " AND wait_event_type = 'Lock'"
        )
        for _ in range(200):  # until the push's check waits behind the lock
            if await db.fetchval(waiting):
                break
            await asyncio.sleep(0.02)
        assert await db.fetchval(waiting) == 1
        served.process.send_signal(signal.SIGTERM)  # while the request is still waiting
        status, body = await in_flight
        assert status == 503 and body["message"].startswith("Push operation timed out")
        await transaction.rollback()
        assert await asyncio.to_thread(served.process.wait, 30) == 0
    finally:
        await blocker.close()


def _caught_signals(pid: int) -> int:
    """The signals a process has handlers for (SigCgt in /proc/<pid>/status), as a bit mask."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), 16)


def _hold_workers_as_they_fork(master: int, count: int, timeout: float = 30.0) -> list[int]:
    """SIGSTOP each of the master's workers the moment it is seen, a millisecond or so after its
    fork: before it has put its own signal handlers in place (that takes it ~10 ms).

    Only children forked once the arbiter runs (the master then catches SIGCHLD) are workers: the
    launcher also forks before it, while importing (`file`, run by the platform module, has the
    master's command line until it execs), and held, that one would stop the launcher itself."""
    command = psutil.Process(master).cmdline()
    arbiter_runs = 1 << (signal.SIGCHLD - 1)
    held: list[int] = []
    deadline = time.monotonic() + timeout
    while len(held) < count and time.monotonic() < deadline:
        try:
            if not _caught_signals(master) & arbiter_runs:
                continue
            children = psutil.Process(master).children()
        except (psutil.NoSuchProcess, FileNotFoundError):
            break
        for child in children:
            if child.pid in held:
                continue
            try:
                if child.cmdline() != command:
                    continue
                child.suspend()
            except psutil.NoSuchProcess:
                continue
            held.append(child.pid)
    return held


async def test_sigterm_while_workers_start_stops_them(serve, db, redis):
    """SIGTERM reaching a worker between its fork and its own signal handlers is not lost: the
    arbiter forks its next worker before it reads a SIGTERM it was sent, so this happens whenever
    the service is stopped while it starts. Lost, the worker served on until the arbiter killed it
    a graceful timeout (35 s) later."""
    served = serve("--workers", "2")
    held = await asyncio.to_thread(_hold_workers_as_they_fork, served.process.pid, 2)
    served.seen |= set(held)
    assert len(held) == 2
    served.process.send_signal(signal.SIGTERM)
    await asyncio.sleep(0.5)  # the arbiter sends its SIGTERM to the held workers
    for pid in held:
        psutil.Process(pid).resume()
    assert await asyncio.to_thread(served.process.wait, 15) == 0
    assert not [pid for pid in held if psutil.pid_exists(pid)], "workers outlived the master"


CLIENTS = 8


async def _load(url: str, stop: asyncio.Event, answers: list[tuple[float, bool]]) -> None:
    """CLIENTS clients each sending one request after another (keep-alive) until `stop`."""

    async def client() -> None:
        headers = shell_headers()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            while not stop.is_set():
                try:
                    async with session.get(url, headers=headers) as resp:
                        await resp.read()
                        answers.append((time.monotonic(), resp.status == 200))
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    answers.append((time.monotonic(), False))

    await asyncio.gather(*(client() for _ in range(CLIENTS)))


def _longest_silence(answers: list[tuple[float, bool]], start: float, end: float) -> float:
    """The longest time between two successful answers (or the window's edges) in [start, end]."""
    times = [start] + sorted(at for at, ok in answers if ok and start <= at <= end) + [end]
    return max(b - a for a, b in zip(times, times[1:]))


async def test_a_killed_worker_is_replaced_while_the_others_answer(serve, db, redis):
    served = serve("--workers", "2")
    await _wait_ready(f"{served.url}/-/readiness")
    first, second = sorted(await served.wait_workers(2))
    stop, answers = asyncio.Event(), []
    load = asyncio.create_task(_load(f"{served.url}/api/v4/internal/check", stop, answers))
    try:
        await asyncio.sleep(1.5)  # both workers booted and answering
        killed_at = time.monotonic()
        os.kill(first, signal.SIGKILL)
        replacement = (await served.wait_workers(2, timeout=5, without={first})) - {second}
        replaced_after = time.monotonic() - killed_at
        await asyncio.sleep(3)
    finally:
        stop.set()
        await load
    ended_at = time.monotonic()

    after_kill = [ok for at, ok in answers if at >= killed_at]
    failures = after_kill.count(False)
    silence = _longest_silence(answers, killed_at, ended_at)
    print(f"baseline silence {_longest_silence(answers, killed_at - 1.0, killed_at):.3f}s")
    print(
        f"replacement {replacement} after {replaced_after:.3f}s; after the kill: {len(after_kill)} answers, "
        f"{failures} failed, longest silence {silence:.3f}s; before: {len(answers) - len(after_kill)} answers"
    )
    # Only requests in flight on the killed worker's own connections can fail (a reset): at most
    # one per client. Connections waiting in the shared listen queue are accepted by the others.
    assert failures <= CLIENTS
    assert silence < 2.0, "the surviving worker stopped answering"  # measured 0.02-0.27 s
    assert after_kill.count(True) >= 100
    assert replaced_after < 5

    # The replacement serves: with the other original worker killed too, the service answers again.
    os.kill(second, signal.SIGKILL)
    await served.wait_workers(2, timeout=5, without={first, second})
    await _wait_ready(f"{served.url}/-/liveness", timeout=10)
    assert await served.stop() == 0


async def test_a_single_worker_is_supervised_too(serve, db, redis):
    served = serve("--workers", "1")
    await _wait_ready(f"{served.url}/-/readiness")
    (worker,) = await served.wait_workers(1)
    killed_at = time.monotonic()
    os.kill(worker, signal.SIGKILL)
    await served.wait_workers(1, timeout=5, without={worker})
    await _wait_ready(f"{served.url}/-/readiness", timeout=10)
    print(f"answering again {time.monotonic() - killed_at:.3f}s after the kill")
    assert served.process.poll() is None
    assert await served.stop() == 0


async def test_master_gives_up_with_non_zero_status_when_workers_cannot_boot(serve, backends, tmp_path: Path):
    # `--no-migrate` against a database without the migrations: every worker refuses to start
    # (it would answer 500s), and the master gives up. (A backend that is merely down does not stop
    # a worker: it answers 503 until the backend is back, see tests/topology.)
    name = "gia_unmigrated_" + uuid.uuid4().hex[:8]
    admin = await asyncpg.connect(backends.database_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        log_path = tmp_path / "serve.log"
        with log_path.open("wb") as log:
            served = serve("--workers", "2", stdout=log, DATABASE_URL=_with_database(backends.database_url, name))
            status = await asyncio.to_thread(served.process.wait, 60)
        assert status == 3  # gunicorn's WORKER_BOOT_ERROR: a supervisor restarting on failure restarts it
        records = [json.loads(line) for line in log_path.read_text().splitlines()]  # JSON lines, gunicorn's too
        messages = [record["message"] for record in records]
        assert "Reason: Worker failed to boot." in messages
        # one line says why (issue 11: no traceback for a start-up failure)
        assert any("run `gitlab-internal-api migrate`" in record["message"] for record in records)
        assert not [pid for pid in served.seen if psutil.pid_exists(pid)]
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


async def test_serve_seals_hook_urls_stored_in_plain_text_without_migrating(serve, db, redis):
    """Production runs `migrate` apart and starts `serve --no-migrate` (as this fixture does): the
    URLs an earlier version stored in plain text are sealed at that start all the same."""
    owner = await make_user(db)
    project = await make_project(db, owner=owner)
    plain = "http://hookuser:S3cret@hooks.example.com/x"
    hook_id = await db.fetchval(
        "INSERT INTO web_hooks (type, project_id, url) VALUES ('ProjectHook', $1, $2) RETURNING id", project["id"], plain
    )
    served = serve()
    await _wait_ready(f"{served.url}/-/readiness")
    stored = await db.fetchval("SELECT url FROM web_hooks WHERE id = $1", hook_id)
    assert stored.startswith("v1:") and "S3cret" not in stored
