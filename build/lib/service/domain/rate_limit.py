"""ApplicationRateLimiter's fixed window for :gitlab_shell_operation, one Redis call per check."""

from __future__ import annotations

import hashlib
import logging

from service.redis_pipe import PipelinedRedis, RedisReplyError, RedisUnavailable

log = logging.getLogger("gitlab_internal_api.rate_limit")

PERIOD_SECONDS = 60

_HIT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
"""


class ShellOperationLimiter:
    def __init__(self, redis: PipelinedRedis) -> None:
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
            count = await self.redis.evalsha(_HIT, [self.key(action, project, actor)], [PERIOD_SECONDS])
        except (RedisUnavailable, RedisReplyError) as exc:
            # Fail open: an unreachable Redis must not stop every git operation on the instance.
            log.warning("rate limiter unavailable, not limiting: %s", exc)
            return False
        return int(count) > threshold
