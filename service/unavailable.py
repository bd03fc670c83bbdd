"""A backend (PostgreSQL or Redis) that cannot serve a request right now.

GitLab Shell, Gitaly and kas retry a 503; a 500 is shown to the user as a failure. So every
connection-level failure of a backend becomes `BackendUnavailable`, which the error middleware
renders as 503 `{"message": ...}` with `Retry-After`, and logs once per change of state rather than
once per request (an outage under load would otherwise write thousands of tracebacks).
"""

from __future__ import annotations

import logging
import time

log = logging.getLogger("gitlab_internal_api.backends")

RETRY_AFTER_SECONDS = 1


class BackendUnavailable(Exception):
    """`backend` ("database", "redis") cannot serve this request; `reason` says why (no secrets)."""

    def __init__(self, backend: str, reason: str) -> None:
        super().__init__(f"{backend} unavailable: {reason}")
        self.backend = backend
        self.reason = reason


class OutageLog:
    """One log line when a backend goes down, one when it answers again (per process)."""

    def __init__(self) -> None:
        self._down_since: dict[str, float] = {}

    def down(self, backend: str, reason: str) -> None:
        if backend not in self._down_since:
            self._down_since[backend] = time.monotonic()
            log.error("%s unavailable, answering 503 until it is back: %s", backend, reason)

    def up(self, backend: str) -> None:
        since = self._down_since.pop(backend, None)
        if since is not None:
            log.warning("%s available again after %.1f s", backend, time.monotonic() - since)
