"""Settings: service/default.toml, overlaid by an optional second file, overlaid by the environment.

Relative paths (secret files, the state directory, storage paths) resolve against one root:
GITLAB_INTERNAL_API_ROOT, else $XDG_DATA_HOME/gitlab-internal-api (~/.local/share/gitlab-internal-api),
never the working directory, so a command gives the same answer from any directory. `dev.py` sets the
root to the source checkout; the image sets /var/lib/gitlab-internal-api.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from service.redis_urls import as_list, compose_redis_url

# The source checkout (tests and tools find config/test.toml, bench/ through it); nothing in the
# service reads from it, so an installed wheel works from anywhere.
ROOT = Path(__file__).resolve().parent.parent
# Package data (pyproject.toml), installed with the wheel.
DEFAULT_CONFIG = Path(__file__).resolve().parent / "default.toml"
ROOT_VARIABLE = "GITLAB_INTERNAL_API_ROOT"

# environment variable -> (section, ..., key) in the TOML; every key of default.toml has one
# (tests/test_cli.py checks), and `gitlab-internal-api --help` lists them with their defaults.
ENVIRONMENT: dict[str, tuple[str, ...]] = {
    "GITLAB_INTERNAL_API_HOST": ("server", "host"),
    "GITLAB_INTERNAL_API_PORT": ("server", "port"),
    "GITLAB_INTERNAL_API_WORKERS": ("server", "workers"),
    "GITLAB_INTERNAL_API_SHUTDOWN_TIMEOUT": ("server", "shutdown_timeout"),
    "GITLAB_INTERNAL_API_BODY_READ_TIMEOUT": ("server", "body_read_timeout"),
    "DATABASE_URL": ("database", "url"),
    "DATABASE_MIGRATION_URL": ("database", "migration_url"),
    "DATABASE_PREPARED_STATEMENTS": ("database", "prepared_statements"),
    "DATABASE_POOL_MIN_SIZE": ("database", "pool_min_size"),
    "DATABASE_POOL_MAX_SIZE": ("database", "pool_max_size"),
    "DATABASE_CONNECT_TIMEOUT": ("database", "connect_timeout"),
    "DATABASE_COMMAND_TIMEOUT": ("database", "command_timeout"),
    "REDIS_URL": ("redis", "url"),
    "REDIS_SENTINELS": ("redis", "sentinels"),  # host:port,host:port
    "REDIS_MASTER_NAME": ("redis", "master_name"),
    "REDIS_SENTINEL_PASSWORD": ("redis", "sentinel_password"),
    "REDIS_CLUSTER_NODES": ("redis", "cluster_nodes"),  # host:port,host:port
    "REDIS_WAIT_REPLICAS": ("redis", "wait_replicas"),
    "GITLAB_SHELL_SECRET_FILE": ("paths", "shell_secret_file"),
    "GITLAB_KAS_SECRET_FILE": ("paths", "kas_secret_file"),
    "GITLAB_DB_KEY_BASE_FILE": ("paths", "db_key_base_file"),
    "GITLAB_INTERNAL_API_STATE_DIR": ("paths", "state_dir"),
    "GITLAB_URL": ("gitlab", "url"),
    "GITLAB_ACCEPT_LEGACY_SHELL_SECRET": ("auth", "accept_legacy_shell_secret"),
    "GITLAB_ALLOWED_TIMEOUT": ("access", "allowed_timeout"),
    "LOG_LEVEL": ("logging", "level"),
    "GITLAB_INTERNAL_API_ACCESS_LOG": ("logging", "access_log"),
    "REDIS_WAIT_TIMEOUT": ("redis", "wait_timeout"),
    "GITLAB_SSH_USER": ("gitlab", "ssh_user"),
    "GITLAB_SSH_HOST": ("gitlab", "ssh_host"),
    "GITLAB_SSH_PORT": ("gitlab", "ssh_port"),
    "GITLAB_VERSION": ("gitlab", "version"),
    "GITLAB_REVISION": ("gitlab", "revision"),
    "GITLAB_COM": ("gitlab", "gitlab_com"),
    "GITLAB_SETTINGS_CACHE_SECONDS": ("access", "settings_cache_seconds"),
    "GITLAB_LOOKUP_CACHE_SECONDS": ("access", "lookup_cache_seconds"),
    # the default storage; further storages only in a config file
    "GITALY_ADDRESS": ("repositories", "storages", "default", "gitaly_address"),
    "GITALY_TOKEN_FILE": ("repositories", "storages", "default", "gitaly_token_file"),
    "GITLAB_REPOSITORIES_PATH": ("repositories", "storages", "default", "path"),
    "MONITORING_IP_WHITELIST": ("monitoring", "ip_whitelist"),  # address/prefix,address/prefix
    "MONITORING_TOKEN_FILE": ("monitoring", "token_file"),
    "GITLAB_INTERNAL_API_JOBS_IN_PROCESS": ("jobs", "in_process"),
    "GITLAB_INTERNAL_API_JOBS_CONCURRENCY": ("jobs", "concurrency"),
    "GITLAB_INTERNAL_API_JOBS_STALLED_SECONDS": ("jobs", "stalled_seconds"),
    "GITLAB_INTERNAL_API_POST_RECEIVE_MAX_ATTEMPTS": ("jobs", "post_receive_max_attempts"),
    "GITLAB_WEBHOOK_TIMEOUT": ("jobs", "webhook_timeout"),
    "GITLAB_WEBHOOK_MAX_ATTEMPTS": ("jobs", "webhook_max_attempts"),
    "GITLAB_WEBHOOK_RETRY_SECONDS": ("jobs", "webhook_retry_seconds"),
    "GITLAB_GIT_TIMEOUT": ("jobs", "git_timeout"),
}


def default_root(environ: Mapping[str, str]) -> Path:
    """Where relative paths resolve: GITLAB_INTERNAL_API_ROOT, else the user's XDG data directory."""
    if environ.get(ROOT_VARIABLE):
        return Path(environ[ROOT_VARIABLE]).expanduser().resolve()
    data_home = environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home).expanduser().resolve() / "gitlab-internal-api"


@dataclass(frozen=True)
class Storage:
    name: str
    gitaly_address: str
    gitaly_token: str | None
    path: Path | None


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    shutdown_timeout: float = 30.0
    body_read_timeout: float = 30.0
    database_url: str = ""
    # Direct to the primary (not through PgBouncer), for migrations and one-off commands; "" = database_url.
    database_migration_url: str = ""
    # False behind PgBouncer in transaction mode (GitLab's database.yml `prepared_statements: false`).
    database_prepared_statements: bool = True
    pool_min_size: int = 2
    pool_max_size: int = 10
    connect_timeout: float = 5.0
    command_timeout: float = 60.0
    # standalone, redis+sentinel:// or redis+cluster:// (service/redis_store.py); the lists of
    # sentinels / cluster nodes in the config are folded into it by load_settings
    redis_url: str = ""
    redis_sentinel_password: str = ""
    # replicas that must hold a counter increase before it is answered; -1: 1 under Sentinel, else 0
    redis_wait_replicas: int = -1
    redis_wait_timeout: float = 0.5
    state_dir: Path = Path(".state")
    shell_secret_file: Path = Path(".gitlab_shell_secret")
    kas_secret_file: Path = Path(".gitlab_kas_secret")
    db_key_base_file: Path = Path(".gitlab_db_key_base")
    accept_legacy_shell_secret: bool = True
    gitlab_url: str = "http://localhost"
    ssh_user: str = "git"
    ssh_host: str = "localhost"
    ssh_port: int = 22
    gitlab_version: str = "18.6.0"
    gitlab_revision: str = "gitlab-internal-api"
    gitlab_com: bool = True
    allowed_timeout: float = 50.0
    settings_cache_seconds: float = 0.5
    lookup_cache_seconds: float = 0.5
    storages: Mapping[str, Storage] = field(default_factory=dict)
    log_level: str = "INFO"
    access_log: bool = True
    # /-/metrics: clients in these networks, or with the token of this file (GitLab's monitoring.ip_whitelist)
    monitoring_ip_whitelist: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    monitoring_token_file: Path | None = None
    migrate_on_start: bool = True
    # the PostReceive worker (service/jobs.py; [jobs] in default.toml)
    jobs_in_process: bool = True
    jobs_concurrency: int = 4
    jobs_stalled_seconds: float = 30.0
    post_receive_max_attempts: int = 5
    webhook_timeout: float = 10.0
    git_timeout: float = 55.0
    webhook_max_attempts: int = 3
    webhook_retry_seconds: float = 10.0

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @property
    def direct_database_url(self) -> str:
        """Where session-level work goes (migrations' lock, one-off commands): never PgBouncer."""
        return self.database_migration_url or self.database_url


def _merge(base: dict[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


# The promise made for lookup_cache_seconds: what was revoked is refused everywhere within a second.
MAX_LOOKUP_CACHE_SECONDS = 1.0


def _cache_seconds(value: Any) -> float:
    seconds = float(value)
    if not 0 <= seconds <= MAX_LOOKUP_CACHE_SECONDS:
        raise ValueError(f"lookup_cache_seconds must be between 0 and {MAX_LOOKUP_CACHE_SECONDS}, not {value}")
    return seconds


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def _resolve(path: str, base: Path) -> Path:
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() else base / candidate


def _read_optional(path: str, base: Path) -> str | None:
    if not path:
        return None
    return _resolve(path, base).read_text().strip() or None


def load_settings(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read the default config, then `path` (if given), then the environment variables."""
    environ = os.environ if environ is None else environ
    raw = tomllib.loads(DEFAULT_CONFIG.read_text())
    extra = path or (Path(environ["GITLAB_INTERNAL_API_CONFIG"]) if environ.get("GITLAB_INTERNAL_API_CONFIG") else None)
    if extra is not None:
        raw = _merge(raw, tomllib.loads(Path(extra).read_text()))
    for variable, (*sections, key) in ENVIRONMENT.items():
        if environ.get(variable) is not None:
            table = raw
            for section in sections:
                table = table.setdefault(section, {})
            table[key] = environ[variable]

    base = default_root(environ)
    server, database, paths = raw["server"], raw["database"], raw["paths"]
    storages = {
        name: Storage(
            name=name,
            gitaly_address=cfg["gitaly_address"],
            gitaly_token=_read_optional(cfg.get("gitaly_token_file", ""), base),
            path=_resolve(cfg["path"], base) if cfg.get("path") else None,
        )
        for name, cfg in raw.get("repositories", {}).get("storages", {}).items()
    }
    if "default" not in storages:
        raise ValueError("config: repositories.storages.default is required")
    for storage in storages.values():
        if not storage.gitaly_address.strip():
            # GitLab Shell dials it and kas refuses an agent_info without it.
            raise ValueError(f"config: repositories.storages.{storage.name}.gitaly_address is empty")
    return Settings(
        host=server["host"],
        port=int(server["port"]),
        workers=int(server["workers"]),
        shutdown_timeout=float(server["shutdown_timeout"]),
        body_read_timeout=float(server["body_read_timeout"]),
        database_url=database["url"],
        database_migration_url=database.get("migration_url", ""),
        database_prepared_statements=_as_bool(database.get("prepared_statements", True)),
        pool_min_size=int(database["pool_min_size"]),
        pool_max_size=int(database["pool_max_size"]),
        connect_timeout=float(database.get("connect_timeout", 5)),
        command_timeout=float(database["command_timeout"]),
        redis_url=compose_redis_url(raw["redis"]),
        redis_sentinel_password=str(raw["redis"].get("sentinel_password", "")),
        redis_wait_replicas=int(raw["redis"].get("wait_replicas", -1)),
        redis_wait_timeout=float(raw["redis"].get("wait_timeout", 0.5)),
        state_dir=_resolve(paths["state_dir"], base),
        shell_secret_file=_resolve(paths["shell_secret_file"], base),
        kas_secret_file=_resolve(paths["kas_secret_file"], base),
        db_key_base_file=_resolve(paths["db_key_base_file"], base),
        accept_legacy_shell_secret=_as_bool(raw["auth"]["accept_legacy_shell_secret"]),
        gitlab_url=raw["gitlab"]["url"].rstrip("/"),
        ssh_user=raw["gitlab"]["ssh_user"],
        ssh_host=raw["gitlab"]["ssh_host"],
        ssh_port=int(raw["gitlab"]["ssh_port"]),
        gitlab_version=raw["gitlab"]["version"],
        gitlab_revision=raw["gitlab"]["revision"],
        gitlab_com=_as_bool(raw["gitlab"]["gitlab_com"]),
        allowed_timeout=float(raw["access"]["allowed_timeout"]),
        settings_cache_seconds=float(raw["access"]["settings_cache_seconds"]),
        lookup_cache_seconds=_cache_seconds(raw["access"]["lookup_cache_seconds"]),
        storages=storages,
        log_level=str(raw["logging"]["level"]).upper(),
        access_log=_as_bool(raw["logging"]["access_log"]),
        monitoring_ip_whitelist=as_list(raw["monitoring"]["ip_whitelist"]),
        monitoring_token_file=(
            _resolve(raw["monitoring"]["token_file"], base) if raw["monitoring"].get("token_file") else None
        ),
        jobs_in_process=_as_bool(raw.get("jobs", {}).get("in_process", True)),
        jobs_concurrency=int(raw.get("jobs", {}).get("concurrency", 4)),
        jobs_stalled_seconds=float(raw.get("jobs", {}).get("stalled_seconds", 30)),
        post_receive_max_attempts=int(raw.get("jobs", {}).get("post_receive_max_attempts", 5)),
        webhook_timeout=float(raw.get("jobs", {}).get("webhook_timeout", 10)),
        git_timeout=float(raw.get("jobs", {}).get("git_timeout", 55)),
        webhook_max_attempts=int(raw.get("jobs", {}).get("webhook_max_attempts", 3)),
        webhook_retry_seconds=float(raw.get("jobs", {}).get("webhook_retry_seconds", 10)),
    )
