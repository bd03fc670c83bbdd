"""Instance settings, cached per process like GitLab's ApplicationSetting.current (60 s)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from aiohttp import web

from service import keys
from service.db.queries import sql

_GET = sql("get_application_settings")


@dataclass(frozen=True)
class AppSettings:
    id: int
    enabled_git_access_protocol: str | None
    receive_max_input_size: int
    gitlab_shell_operation_limit: int
    require_personal_access_token_expiry: bool
    max_personal_access_token_lifetime: int | None
    personal_access_token_prefix: str
    error_tracking_enabled: bool
    error_tracking_access_token_digest: str | None
    admin_mode: bool
    enforce_terms: bool
    email_confirmation_setting: str
    two_factor_for_cli: bool
    default_branch_name: str
    rsa_key_restriction: int
    dsa_key_restriction: int
    ecdsa_key_restriction: int
    ed25519_key_restriction: int
    ecdsa_sk_key_restriction: int
    ed25519_sk_key_restriction: int
    updated_at: datetime

    @property
    def key_restrictions(self) -> dict[str, int]:
        """SSH key technology -> 0 (any size), -1 (forbidden) or the minimum number of bits."""
        return {
            "rsa": self.rsa_key_restriction,
            "dsa": self.dsa_key_restriction,
            "ecdsa": self.ecdsa_key_restriction,
            "ed25519": self.ed25519_key_restriction,
            "ecdsa_sk": self.ecdsa_sk_key_restriction,
            "ed25519_sk": self.ed25519_sk_key_restriction,
        }

    @classmethod
    def from_record(cls, record: Any) -> AppSettings:
        names = {f.name for f in fields(cls)}
        # Columns added by later migrations are ignored until this class learns them.
        return cls(**{name: record[name] for name in names})


class SettingsCache:
    def __init__(self, ttl_seconds: float) -> None:
        self.ttl = ttl_seconds
        self._value: AppSettings | None = None
        self._loaded_at = 0.0
        self._lock = asyncio.Lock()

    def invalidate(self) -> None:
        self._value = None

    async def get(self, pool: Any) -> AppSettings:
        value = self._value
        if value is not None and time.monotonic() - self._loaded_at < self.ttl:
            return value
        async with self._lock:
            if self._value is not None and time.monotonic() - self._loaded_at < self.ttl:
                return self._value
            async with pool.acquire() as conn:
                record = await conn.fetchrow(_GET)
            self._value = AppSettings.from_record(record)
            self._loaded_at = time.monotonic()
            return self._value


async def get_settings(app: web.Application) -> AppSettings:
    return await app[keys.APP_SETTINGS].get(app[keys.DB_POOL])
