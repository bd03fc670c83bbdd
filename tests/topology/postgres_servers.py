"""Real PostgreSQL primaries, streaming standbys and PgBouncer, started by the tests on free ports.

Debian's PostgreSQL binaries (initdb, pg_ctl, pg_basebackup) and the `pgbouncer` package. Both
refuse to run as root, so as root (CI) they run as the `postgres` user. Each server lives in its
own temporary directory and is stopped by its PID.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest


def _pg_bindir() -> Path | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


PG_BIN = _pg_bindir()
PGBOUNCER = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if os.path.exists("/usr/sbin/pgbouncer") else None)


def require(what: str, found: object, install: str) -> None:
    """Skip on a developer machine without the binary; fail in CI, where the suite must run."""
    if found:
        return
    message = f"{what} is not installed: {install}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def require_postgres() -> None:
    require("PostgreSQL server binaries", PG_BIN, "apt-get install -y postgresql")


def require_pgbouncer() -> None:
    require_postgres()
    require("pgbouncer", PGBOUNCER, "apt-get install -y pgbouncer")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _as_server_user() -> dict[str, Any]:
    """Popen arguments that drop root to `postgres` (initdb, postgres and pgbouncer refuse root)."""
    if os.geteuid() != 0:
        return {}
    return {"user": "postgres", "group": "postgres"}


def _workdir(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return path


def _run(*command: str | Path, **kwargs: Any) -> None:
    subprocess.run([str(c) for c in command], check=True, capture_output=True, **_as_server_user(), **kwargs)


def _wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on port {port}")


class PostgresServer:
    """One PostgreSQL cluster on 127.0.0.1:<port>, trust authentication, superuser `postgres`."""

    def __init__(self, data: Path, port: int, root: Path) -> None:
        self.data = data
        self.port = port
        self.root = root

    @classmethod
    def primary(cls) -> PostgresServer:
        assert PG_BIN is not None
        root = _workdir("gia-pg-")
        data = root / "data"
        _run(PG_BIN / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        server = cls(data, free_port(), root)
        with open(data / "postgresql.conf", "a") as conf:
            conf.write(
                f"\nport = {server.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{root}'\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                "wal_level = replica\nmax_wal_senders = 5\nhot_standby = on\nmax_connections = 200\n"
                "shared_buffers = 16MB\n"
            )
        server.start()
        return server

    def standby(self) -> PostgresServer:
        """A streaming replica of this server, started."""
        assert PG_BIN is not None
        root = _workdir("gia-pg-standby-")
        data = root / "data"
        _run(PG_BIN / "pg_basebackup", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
             "-D", data, "-R", "-X", "stream", "--checkpoint=fast", "--no-sync")
        server = PostgresServer(data, free_port(), root)
        with open(data / "postgresql.conf", "a") as conf:
            conf.write(f"\nport = {server.port}\nunix_socket_directories = '{root}'\n")
        server.start()
        return server

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    @property
    def pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def start(self) -> None:
        assert PG_BIN is not None
        _run(PG_BIN / "pg_ctl", "-D", self.data, "-l", self.root / "server.log", "-w", "-t", "30", "start")
        _wait_port(self.port)

    def stop(self, mode: str = "fast") -> None:
        """Stop the postmaster by its PID: fast = SIGINT (disconnect everyone), immediate = SIGQUIT."""
        pid = self.pid
        if pid is None:
            return
        try:
            os.kill(pid, signal.SIGQUIT if mode == "immediate" else signal.SIGINT)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)

    def processes(self) -> list[int]:
        """The postmaster and every process it started (backends, checkpointer, walwriter...)."""
        postmaster = self.pid
        if postmaster is None:
            return []
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                # "pid (comm) state ppid ...": comm may hold spaces, the fields after it do not
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[1]) == postmaster:
                children.append(int(stat.parent.name))
        return [postmaster, *children]

    def freeze(self) -> None:
        """Stop every process of the server (SIGSTOP): connections stay open and nothing answers,
        as with a hung host or a network partition."""
        postmaster = self.pid
        if postmaster is None:
            return
        os.kill(postmaster, signal.SIGSTOP)  # first: no backend starts after its children are listed
        for pid in self.processes()[1:]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        for pid in self.processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def promote(self) -> None:
        assert PG_BIN is not None
        _run(PG_BIN / "pg_ctl", "-D", self.data, "-w", "promote")

    def destroy(self) -> None:
        self.thaw()  # a frozen postmaster would not act on the stop signal
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


class PgBouncer:
    """PgBouncer in transaction pooling mode in front of one PostgreSQL server."""

    def __init__(self, server_port: int, pool_size: int = 20) -> None:
        assert PGBOUNCER is not None
        self.root = _workdir("gia-pgbouncer-")
        self.port = free_port()
        (self.root / "userlist.txt").write_text('"postgres" ""\n')
        (self.root / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = host=127.0.0.1 port={server_port}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            "auth_type = trust\n"
            f"auth_file = {self.root / 'userlist.txt'}\n"
            "pool_mode = transaction\n"
            "max_client_conn = 1000\n"
            f"default_pool_size = {pool_size}\n"
            "server_reset_query =\n"
            f"logfile = {self.root / 'pgbouncer.log'}\n"
            "admin_users = postgres\n"
        )
        self.process = subprocess.Popen(
            [PGBOUNCER, str(self.root / "pgbouncer.ini")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            **_as_server_user(),
        )
        _wait_port(self.port)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        try:
            return (self.root / "pgbouncer.log").read_text()
        except OSError:
            return ""
