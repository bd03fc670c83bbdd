"""Gitlab::ReferenceCounter and the one-shot push messages, each one Redis round trip (Lua)."""

from __future__ import annotations

from dataclasses import dataclass

from service.redis_pipe import PipelinedRedis, RedisReplyError, RedisUnavailable

REDIS_FAILURES = (RedisUnavailable, RedisReplyError)

REFERENCE_EXPIRE_TIME = 600  # seconds
MESSAGE_TTL = 300  # Gitlab::Checks::PostPushMessage: 5 minutes

# INCR, then EXPIRE 600 (every increase refreshes the expiry, as GitLab's does).
_INCREASE = """
local value = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1])
return value
"""

# DECR; below zero the key is deleted. Then each message key is read and deleted (GET + DEL).
_DECREASE_AND_TAKE_MESSAGES = """
local value = redis.call('DECR', KEYS[1])
if value < 0 then redis.call('DEL', KEYS[1]) end
local result = {value}
for i = 2, #KEYS do
  local message = redis.call('GET', KEYS[i])
  if message then redis.call('DEL', KEYS[i]) end
  result[i] = message or ''
end
return result
"""


def counter_key(gl_repository: str) -> str:
    return f"git-receive-pack-reference-counter:{gl_repository}"


def moved_keys(user_id: int, gl_repository: str, project_id: int | None) -> list[str]:
    """Legacy key (by project id) first: it wins when both exist."""
    keys = [f"redirect_namespace:{user_id}:{project_id}"] if project_id is not None else []
    return keys + [f"redirect_namespace:{user_id}:{gl_repository}"]


def created_keys(user_id: int, gl_repository: str, project_id: int | None) -> list[str]:
    keys = [f"project_created:{user_id}:{project_id}"] if project_id is not None else []
    return keys + [f"project_created:{user_id}:{gl_repository}"]


@dataclass(frozen=True)
class Decrease:
    decreased: bool
    moved_message: str | None
    created_message: str | None


class ReferenceCounter:
    def __init__(self, redis: PipelinedRedis) -> None:
        self.redis = redis

    async def increase(self, gl_repository: str) -> bool:
        try:
            await self.redis.evalsha(_INCREASE, [counter_key(gl_repository)], [REFERENCE_EXPIRE_TIME])
        except REDIS_FAILURES:
            return False
        return True

    async def decrease(self, gl_repository: str, user_id: int | None, project_id: int | None) -> Decrease:
        """Decrease the counter and, for a known pusher, take the moved/created notices in the same call."""
        moved = moved_keys(user_id, gl_repository, project_id) if user_id is not None else []
        created = created_keys(user_id, gl_repository, project_id) if user_id is not None else []
        try:
            result = await self.redis.evalsha(_DECREASE_AND_TAKE_MESSAGES, [counter_key(gl_repository), *moved, *created])
        except REDIS_FAILURES:
            return Decrease(False, None, None)
        messages = [m or None for m in result[1:]]
        moved_found = next((m for m in messages[: len(moved)] if m), None)
        created_found = next((m for m in messages[len(moved) :] if m), None)
        return Decrease(True, moved_found, created_found)

