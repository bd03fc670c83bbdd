"""ApplicationRateLimiter's fixed window for :gitlab_shell_operation, one Redis call per check."""

from __future__ import annotations

import hashlib

from service.redis_store import RedisError, RedisStore, Script

PERIOD_SECONDS = 60

_HIT = Script("""
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
""")


class ShellOperationLimiter:
    def __init__(self, redis: RedisStore) -> None:
        self.redis = redis

    @staticmethod
    def key(action: str, project: str, actor: str) -> str:
        scope = hashlib.sha256(f"{action}\0{project}\0{actor}".encode()).hexdigest()
        return f"application_rate_limiter:gitlab_shell_operation:{scope}"

    async def throttled(self, threshold: int, action: str, project: str, actor: str) -> bool:
        """Count this call; True when it is over `threshold` calls in the window (0 = no limit)."""
        if threshold <= 0:
            return False
        try:
            count = await self.redis.run_script(_HIT, [self.key(action, project, actor)], [PERIOD_SECONDS])
        except RedisError:
            # Fail open: an unreachable Redis must not stop every git operation on the instance.
            # The store logs why, once per change of state rather than once per request.
            return False
        return int(count) > threshold
