"""`gitlab-internal-api serve` as ops run it: a real process, real workers, SIGTERM draining."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from service.config import ROOT
from tests.factories import add_member, make_project, make_user
from tests.helpers import shell_headers


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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


def _start(backends, secret_files: dict[str, Path], port: int, *extra: str, timeout: str = "50") -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": backends.database_url,
        "REDIS_URL": backends.redis_url,
        "GITLAB_SHELL_SECRET_FILE": str(secret_files["shell"]),
        "GITLAB_KAS_SECRET_FILE": str(secret_files["kas"]),
        "GITLAB_DB_KEY_BASE_FILE": str(secret_files["db_key_base"]),
        "GITLAB_ALLOWED_TIMEOUT": timeout,
        "LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "service", "serve", "--port", str(port), "--no-migrate", *extra],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_serve_answers_and_stops_cleanly(backends, secret_files, db, redis, workers):
    port = _free_port()
    process = _start(backends, secret_files, port, "--workers", workers)
    try:
        await _wait_ready(f"http://127.0.0.1:{port}/-/readiness")
        async with aiohttp.ClientSession() as session:
            for _ in range(10):
                async with session.get(f"http://127.0.0.1:{port}/api/v4/internal/check", headers=shell_headers()) as resp:
                    assert resp.status == 200 and (await resp.json())["redis"] is True
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0


async def test_sigterm_finishes_requests_in_flight(backends, secret_files, db, redis):
    owner = await make_user(db)
    developer = await make_user(db)
    project = await make_project(db, owner=owner)
    await add_member(db, developer, project, 30)
    port = _free_port()
    process = _start(backends, secret_files, port, timeout="2")
    blocker = await asyncpg.connect(backends.database_url)
    try:
        await _wait_ready(f"http://127.0.0.1:{port}/-/readiness")
        transaction = blocker.transaction()
        await transaction.start()
        await blocker.execute("LOCK TABLE protected_branches IN ACCESS EXCLUSIVE MODE")  # the push check waits

        async def push() -> tuple[int, dict]:
            async with aiohttp.ClientSession() as session:
                async with session.post(
                    f"http://127.0.0.1:{port}/api/v4/internal/allowed",
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
        await asyncio.sleep(0.5)
        process.send_signal(signal.SIGTERM)  # while the request is still waiting
        status, body = await in_flight
        assert status == 503 and body["message"].startswith("Push operation timed out")
        await transaction.rollback()
        assert await asyncio.to_thread(process.wait, 30) == 0
    finally:
        await blocker.close()
        if process.poll() is None:
            process.kill()
