"""Settings: config/default.toml, overlaid by an optional second file, overlaid by the environment."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = ROOT / "config" / "default.toml"

# environment variable -> (section, key)
ENVIRONMENT = {
    "DATABASE_URL": ("database", "url"),
    "REDIS_URL": ("redis", "url"),
    "GITLAB_SHELL_SECRET_FILE": ("paths", "shell_secret_file"),
    "GITLAB_KAS_SECRET_FILE": ("paths", "kas_secret_file"),
    "GITLAB_DB_KEY_BASE_FILE": ("paths", "db_key_base_file"),
    "GITLAB_INTERNAL_API_STATE_DIR": ("paths", "state_dir"),
    "GITLAB_URL": ("gitlab", "url"),
    "GITLAB_ACCEPT_LEGACY_SHELL_SECRET": ("auth", "accept_legacy_shell_secret"),
    "GITLAB_ALLOWED_TIMEOUT": ("access", "allowed_timeout"),
    "LOG_LEVEL": ("logging", "level"),
}


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
    database_url: str = ""
    pool_min_size: int = 2
    pool_max_size: int = 10
    command_timeout: float = 60.0
    redis_url: str = ""
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
    settings_cache_seconds: float = 60.0
    storages: Mapping[str, Storage] = field(default_factory=dict)
    log_level: str = "INFO"
    access_log: bool = True
    migrate_on_start: bool = True

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **changes)


def _merge(base: dict[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


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
    for variable, (section, key) in ENVIRONMENT.items():
        if environ.get(variable) is not None:
            raw.setdefault(section, {})[key] = environ[variable]

    base = Path(environ.get("GITLAB_INTERNAL_API_ROOT", os.getcwd()))
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
        database_url=database["url"],
        pool_min_size=int(database["pool_min_size"]),
        pool_max_size=int(database["pool_max_size"]),
        command_timeout=float(database["command_timeout"]),
        redis_url=raw["redis"]["url"],
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
        storages=storages,
        log_level=str(raw["logging"]["level"]).upper(),
        access_log=_as_bool(raw["logging"]["access_log"]),
    )
