"""Instance settings, cached per process like GitLab's ApplicationSetting.current.

GitLab keeps them 60 s per process. Here the cache lives `settings_cache_seconds` (0.5 s by default):
a change made through one worker reaches every worker of every instance within a second, with no
invalidation message to lose, and it works behind PgBouncer (where LISTEN/NOTIFY does not).
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, fields
from datetime import datetime
from types import TracebackType
from typing import Any


from service.db.rows import Pool
from service.db import application_settings as settings_db


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
    """The instance settings of this process, re-read at most every `ttl_seconds`.

    Re-reads are single-flight: requests arriving meanwhile share the one query and its outcome.
    When it fails (the database is down), the last good settings keep serving for `stale_seconds`
    (GitLab's own cache lifetime), and the next attempt waits `retry_seconds`, so requests neither
    queue behind one another's connect timeouts nor stop on a short outage.
    """

    def __init__(self, ttl_seconds: float, stale_seconds: float = 60.0, retry_seconds: float = 1.0) -> None:
        self.ttl = ttl_seconds
        self.stale = stale_seconds
        self.retry = retry_seconds
        self._value: AppSettings | None = None
        self._loaded_at = -math.inf
        self._loading: asyncio.Future[AppSettings] | None = None
        self._failure: Exception | None = None
        self._failure_traceback: TracebackType | None = None
        self._failed_at = -math.inf

    def invalidate(self) -> None:
        self._loaded_at = -math.inf  # re-read on the next request

    async def get(self, pool: Pool) -> AppSettings:
        value = self._value
        if value is not None and time.monotonic() - self._loaded_at < self.ttl:
            return value
        if self._loading is None:
            if self._failure is not None and time.monotonic() - self._failed_at < self.retry:
                return self._stale_or_raise(self._failure)
            self._loading = asyncio.ensure_future(self._load(pool))
            # its failure is read even if every waiter was cancelled meanwhile (no "never retrieved")
            self._loading.add_done_callback(lambda done: done.cancelled() or done.exception())
        try:
            return await asyncio.shield(self._loading)
        except Exception as exc:
            return self._stale_or_raise(exc)

    async def _load(self, pool: Pool) -> AppSettings:
        try:
            async with pool.acquire() as conn:
                record = await settings_db.get_application_settings(conn)
            self._value = AppSettings.from_record(record)
            self._loaded_at = time.monotonic()
            self._failure = None
            return self._value
        except Exception as exc:
            self._failure, self._failed_at = exc, time.monotonic()
            self._failure_traceback = exc.__traceback__
            raise
        finally:
            self._loading = None

    def _stale_or_raise(self, failure: Exception) -> AppSettings:
        if self._value is not None and time.monotonic() - self._loaded_at < self.stale:
            return self._value
        # The one failure goes to every request of the retry window: raised as it is, its
        # traceback would grow by each request's frames and keep them alive. Raised from where it
        # was first raised instead (whether it is an outage is read from those frames, pool.py).
        if failure is self._failure:
            failure = failure.with_traceback(self._failure_traceback)
        raise failure
