"""PostgreSQL down, restarted under load, and failed over to a promoted standby, without a restart of the
service: every request that needs the database answers 503 with Retry-After meanwhile (GitLab Shell,
Gitaly and kas retry that; a 500 is shown to the user), never a 500 or a traceback per request."""

from __future__ import annotations

import asyncio
import base64
import logging
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import asyncpg
import pytest

from service.app import create_app
from service.db.migrate import migrate
from tests.factories import make_key, make_project, make_user
from tests.helpers import shell_headers
from tests.topology.postgres_servers import PostgresServer, free_port, require_postgres

INTERNAL = "/api/v4/internal"
BLANK = "0" * 40


@dataclass
class Load:
    """Requests sent continuously by a few clients; what came back, in order."""

    results: list[tuple[float, int, str | None]] = field(default_factory=list)

    def statuses(self, since: float = 0.0) -> Counter[int]:
        return Counter(status for at, status, _ in self.results if at >= since)

    def first_ok_after(self, moment: float) -> float | None:
        return next((at for at, status, _ in self.results if at > moment and status == 200), None)


async def _run_load(client, blob: str, stop: asyncio.Event, load: Load, clients: int = 8) -> None:
    async def one() -> None:
        while not stop.is_set():
            async with client.get(f"{INTERNAL}/authorized_keys", params={"key": blob}, headers=shell_headers()) as resp:
                body = await resp.json()
                if resp.status == 503:
                    assert body == {"message": "503 Service Unavailable"}
                load.results.append((time.monotonic(), resp.status, resp.headers.get("Retry-After")))
            await asyncio.sleep(0.005)

    await asyncio.gather(*(one() for _ in range(clients)))


def _assert_only_ok_or_retryable(load: Load) -> None:
    assert set(load.statuses()) <= {200, 503}, load.statuses()
    assert all(retry == "1" for _, status, retry in load.results if status == 503)


def _backend_log_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "gitlab_internal_api.backends"]


def _assert_logged_per_state_change(caplog: pytest.LogCaptureFixture, outages: int) -> None:
    states = [line.split(" ", 2)[1].rstrip(",") for line in _backend_log_lines(caplog)]
    assert states[:1] == ["unavailable"] and states[-1:] == ["available"], states
    assert all(a != b for a, b in zip(states, states[1:])), states  # down, up, down, up...
    assert 2 * outages <= len(states) <= 2 * outages + 2, states


async def test_database_down_answers_503_and_post_receive_keeps_the_counter(
    aiohttp_client, settings, secrets, redis, caplog
):
    """No server at all behind DATABASE_URL: every database path is a retryable 503, logged once, and a
    post_receive that could not finish leaves the reference counter as it was (Gitaly retries it)."""
    caplog.set_level(logging.INFO)
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/gitlab"
    client = await aiohttp_client(create_app(settings.with_overrides(database_url=dead), secrets))
    counter_key = None
    assert (await (await client.post(f"{INTERNAL}/pre_receive", json={"gl_repository": "project-3"},
                                     headers=shell_headers())).json())["reference_counter_increased"] is True
    counter_key = next(iter([key async for key in redis.scan_iter("*reference-counter*")]))
    calls = [
        client.get(f"{INTERNAL}/authorized_keys", params={"key": "AAAAC3NzaC1lZDI1NTE5AAAAIA"}, headers=shell_headers()),
        client.post(f"{INTERNAL}/allowed", headers=shell_headers(),
                    json={"action": "git-upload-pack", "project": "a/b.git", "changes": "_any", "protocol": "ssh",
                          "key_id": "1"}),
        client.post(f"{INTERNAL}/post_receive", headers=shell_headers(),
                    json={"gl_repository": "project-3", "identifier": "user-1",
                          "changes": f"{BLANK} {'a' * 40} refs/heads/main"}),
        client.get(f"{INTERNAL}/discover", params={"key_id": 1}, headers=shell_headers()),
        client.get("/api/v4/users", headers={"PRIVATE-TOKEN": "glpat-0123456789abcdefghij"}),
    ]
    for call in calls:
        async with call as resp:
            assert resp.status == 503, await resp.text()
            assert resp.headers["Retry-After"] == "1"
            assert await resp.json() == {"message": "503 Service Unavailable"}
    assert await redis.get(counter_key) == "1"  # the failed post_receive did not decrease it
    lines = _backend_log_lines(caplog)
    assert len(lines) == 1 and lines[0].startswith("database unavailable"), lines
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR and "unhandled" in r.getMessage()]
    # and the probe says so
    async with client.get("/-/readiness") as resp:
        assert resp.status == 503


async def test_a_client_hanging_up_mid_upload_is_not_a_database_outage(client, db, caplog):
    """A socket error of the request itself (the client went away) must not be taken for the
    database going away: no "database unavailable" line, no pool flushed."""
    caplog.set_level(logging.INFO)
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(
        b"POST /api/v4/internal/pre_receive HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100000\r\n" + b"".join(f"{k}: {v}\r\n".encode() for k, v in shell_headers().items())
        + b"\r\n" + b'{"gl_repository": "project-1", "x": "' + b"y" * 1000
    )
    await writer.drain()
    await asyncio.sleep(0.2)
    writer.close()
    await asyncio.sleep(0.2)
    assert _backend_log_lines(caplog) == []
    async with client.post(f"{INTERNAL}/pre_receive", json={"gl_repository": "project-1"},
                           headers=shell_headers()) as resp:
        assert resp.status == 200


async def test_a_database_that_does_not_answer_gives_503s_in_about_one_timeout_not_one_each(
    aiohttp_client, settings, secrets, redis
):
    """A host that takes connections and never answers (a failed-over primary's address): requests
    arriving together share the one wait for it instead of queueing behind each other's timeouts."""
    with socket.socket() as blackhole:
        blackhole.bind(("127.0.0.1", 0))
        blackhole.listen(512)  # the kernel completes the handshakes; nobody ever reads
        url = f"postgresql://postgres@127.0.0.1:{blackhole.getsockname()[1]}/gitlab"
        client = await aiohttp_client(
            create_app(settings.with_overrides(database_url=url, connect_timeout=1.0, pool_min_size=1), secrets)
        )
        body = {"action": "git-upload-pack", "project": "a/b.git", "changes": "_any", "protocol": "ssh", "key_id": "1"}

        async def allowed() -> int:
            async with client.post(f"{INTERNAL}/allowed", json=body, headers=shell_headers()) as resp:
                return resp.status

        started = time.monotonic()
        statuses = await asyncio.gather(*(allowed() for _ in range(20)))
        elapsed = time.monotonic() - started
    assert statuses == [503] * 20
    assert elapsed < 8.0, elapsed  # one request after another would take 20 connect timeouts (20 s)


@pytest.fixture
def primary() -> Iterator[PostgresServer]:
    require_postgres()
    server = PostgresServer.primary()
    try:
        yield server
    finally:
        server.destroy()


async def _seed(url: str) -> tuple[str, int]:
    """A user with a key, and a project without a default branch; the key's blob and the project id."""
    await migrate(url)
    conn = await asyncpg.connect(url)
    try:
        user = await make_user(conn, username="root")
        _key, parsed = await make_key(conn, user)
        project = await make_project(conn, owner=user, path="empty", default_branch=None)
        return base64.b64encode(parsed.blob).decode(), project["id"]
    finally:
        await conn.close()


@pytest.fixture
async def loaded() -> AsyncIterator[tuple[asyncio.Event, Load, list[asyncio.Task[None]]]]:
    stop, load, tasks = asyncio.Event(), Load(), []
    yield stop, load, tasks
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_restart_under_load_answers_503_meanwhile_and_recovers(
    primary, aiohttp_client, settings, secrets, caplog, loaded
):
    caplog.set_level(logging.INFO)
    blob, _project_id = await _seed(primary.url())
    client = await aiohttp_client(create_app(settings.with_overrides(database_url=primary.url()), secrets))
    stop, load, tasks = loaded
    tasks.append(asyncio.create_task(_run_load(client, blob, stop, load)))
    await asyncio.sleep(0.5)
    for downtime in (0.6, 3.0):  # a quick restart, then a longer outage
        primary.stop("fast")
        stopped_at = time.monotonic()
        await asyncio.sleep(downtime)
        await asyncio.to_thread(primary.start)
        started_at = time.monotonic()
        await asyncio.sleep(2.0)
        assert load.statuses(since=stopped_at + 0.2)[503] > 0  # the outage was seen...
        first_ok = load.first_ok_after(started_at)
        assert first_ok is not None and first_ok - started_at < 5.0  # ...and it is over
    stop.set()
    await tasks[0]
    _assert_only_ok_or_retryable(load)
    assert load.statuses()[200] > 100
    # one line when it went away, one when it came back, per outage (a request on a connection
    # that broke just after the recovery may add a down/up pair; no line per request)
    _assert_logged_per_state_change(caplog, outages=2)


async def test_failover_to_the_promoted_standby_without_a_restart(
    primary, aiohttp_client, settings, secrets, caplog, loaded
):
    caplog.set_level(logging.INFO)
    blob, project_id = await _seed(primary.url())
    standby = await asyncio.to_thread(primary.standby)
    try:
        url = (
            f"postgresql://postgres@127.0.0.1:{primary.port},127.0.0.1:{standby.port}/postgres"
            "?target_session_attrs=read-write"
        )
        client = await aiohttp_client(create_app(settings.with_overrides(database_url=url), secrets))
        stop, load, tasks = loaded
        tasks.append(asyncio.create_task(_run_load(client, blob, stop, load)))
        await asyncio.sleep(0.5)
        primary.stop("immediate")  # the primary's host dies
        failed_at = time.monotonic()
        await asyncio.sleep(1.0)  # Patroni would take a few seconds to decide; the standby stays read-only meanwhile
        await asyncio.to_thread(standby.promote)
        promoted_at = time.monotonic()
        await asyncio.sleep(2.5)
        stop.set()
        await tasks[0]
        _assert_only_ok_or_retryable(load)
        assert load.statuses(since=failed_at + 0.2)[503] > 0
        first_ok = load.first_ok_after(promoted_at)
        assert first_ok is not None and first_ok - promoted_at < 5.0
        # the service writes to the new primary: the first push makes `main` the default branch
        async with client.post(
            f"{INTERNAL}/post_receive",
            headers=shell_headers(),
            json={"gl_repository": f"project-{project_id}", "identifier": "user-1",
                  "changes": f"{BLANK} {'a' * 40} refs/heads/main"},
        ) as resp:
            assert resp.status == 200, await resp.text()
        conn = await asyncpg.connect(standby.url())
        try:
            assert await conn.fetchval("SELECT default_branch FROM projects WHERE id = $1", project_id) == "main"
        finally:
            await conn.close()
        _assert_logged_per_state_change(caplog, outages=1)
    finally:
        standby.destroy()


async def test_a_frozen_database_holds_a_request_one_command_timeout_and_readiness_a_few_seconds(
    primary, aiohttp_client, settings, secrets
):
    """A server that stops answering with its connections open (a hung host, a partition): a request
    waits out command_timeout and answers 503, and /-/readiness answers 503 after its one-second
    probe, both within seconds of that. asyncpg's release waited as long again for a cancel request
    that the frozen server never answers; the pool now drops such a connection after 2 s."""
    blob, _project_id = await _seed(primary.url())
    command_timeout = 6.0  # long enough to tell one timeout and a half from two (asyncpg waited one more)
    client = await aiohttp_client(create_app(
        settings.with_overrides(database_url=primary.url(), command_timeout=command_timeout,
                                lookup_cache_seconds=0.0, pool_min_size=2),
        secrets,
    ))

    async def timed(call) -> tuple[int, float]:  # type: ignore[no-untyped-def]
        started = time.monotonic()
        async with call as resp:
            await resp.read()
            return resp.status, time.monotonic() - started

    def key_lookup():  # type: ignore[no-untyped-def]
        return client.get(f"{INTERNAL}/authorized_keys", params={"key": blob}, headers=shell_headers())

    assert (await timed(key_lookup()))[0] == 200
    assert (await timed(client.get("/-/readiness")))[0] == 200
    primary.freeze()
    try:
        (lookup_status, lookup_took), (ready_status, ready_took) = await asyncio.gather(
            timed(key_lookup()), timed(client.get("/-/readiness"))
        )
    finally:
        primary.thaw()
    assert (lookup_status, ready_status) == (503, 503)
    # the timeout, then RELEASE_TIMEOUT (2 s) for the cancel request; before, as long again (12 s)
    assert command_timeout <= lookup_took < command_timeout + 2.0 + 1.0, lookup_took
    # the one-second probe, then RELEASE_TIMEOUT; before, 1 s + command_timeout (7 s)
    assert ready_took < 1.0 + 2.0 + 1.0, ready_took
    # The dropped connections are replaced once the server answers again.
    deadline = time.monotonic() + 10
    while (await timed(key_lookup()))[0] != 200:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.2)
    assert (await timed(client.get("/-/readiness")))[0] == 200
