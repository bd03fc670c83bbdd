"""Gitlab::ReferenceCounter and the one-shot push notices, each one Redis round trip (Lua).

Every key of one repository carries the repository in a hash tag (`{project-5}`), so the decrease
script (DECR + take the "moved"/"created" notices) touches one hash slot and runs on Redis Cluster.
No GitLab component reads these keys; only this service writes and reads them.
"""

from __future__ import annotations

from typing import NamedTuple

from service.redis_store import RedisError, RedisStore, Script

REFERENCE_EXPIRE_TIME = 600  # seconds
MESSAGE_TTL = 300  # Gitlab::Checks::PostPushMessage: 5 minutes

# INCR, then EXPIRE 600 (every increase refreshes the expiry, as GitLab's does).
INCREASE = Script("""
local value = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1])
return value
""")

# DECR; below zero the key is deleted. Then each notice key is read and deleted (GET + DEL).
DECREASE_AND_TAKE_NOTICES = Script("""
local value = redis.call('DECR', KEYS[1])
if value < 0 then redis.call('DEL', KEYS[1]) end
local result = {value}
for i = 2, #KEYS do
  local message = redis.call('GET', KEYS[i])
  if message then redis.call('DEL', KEYS[i]) end
  result[i] = message or ''
end
return result
""")

# The undo of an increase that replicas did not acknowledge: DECR, and no key at zero (as before it).
UNDO_INCREASE = Script("""
local value = redis.call('DECR', KEYS[1])
if value <= 0 then redis.call('DEL', KEYS[1]) end
return value
""")

# One notice, written with its expiry.
STORE_NOTICE = Script("return redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])")


def _tag(gl_repository: str) -> str:
    """The hash tag of a repository's keys: never empty (`{}` would hash each whole key apart)."""
    return gl_repository if gl_repository[:1] not in ("", "}") else "~" + gl_repository


def counter_key(gl_repository: str) -> str:
    return f"git-receive-pack-reference-counter:{{{_tag(gl_repository)}}}"


def moved_key(user_id: int, gl_repository: str) -> str:
    """Gitlab::Checks::ContainerMoved's notice for this pusher, shown by their post-receive."""
    return f"redirect_namespace:{{{_tag(gl_repository)}}}:{user_id}"


def created_key(user_id: int, gl_repository: str) -> str:
    """Gitlab::Checks::ProjectCreated's notice for this pusher."""
    return f"project_created:{{{_tag(gl_repository)}}}:{user_id}"


class Decrease(NamedTuple):
    decreased: bool
    moved_message: str | None
    created_message: str | None


class ReferenceCounter:
    def __init__(self, redis: RedisStore) -> None:
        self.redis = redis

    async def increase(self, gl_repository: str) -> bool:
        """False when Redis did not confirm it (the store logs why): Gitaly then refuses the push.

        durable: under Sentinel the increase is answered only once a replica holds it, so a
        failover cannot lose a counter that a push in flight relies on. When no replica confirms
        it in time, the store undoes it: Gitaly refuses the push and will never decrease it.
        """
        key = counter_key(gl_repository)
        try:
            await self.redis.run_script(
                INCREASE, [key], [REFERENCE_EXPIRE_TIME], durable=True, undo=(UNDO_INCREASE, ())
            )
        except RedisError:
            return False
        return True

    async def decrease(self, gl_repository: str, user_id: int | None, project_id: int | None) -> Decrease:
        """Decrease the counter and, for a known pusher, take the moved/created notices in the same call."""
        keys = [counter_key(gl_repository)]
        if user_id is not None:
            keys += [moved_key(user_id, gl_repository), created_key(user_id, gl_repository)]
        try:
            result = await self.redis.run_script(DECREASE_AND_TAKE_NOTICES, keys)
        except RedisError:
            return Decrease(False, None, None)
        messages = [m or None for m in result[1:]] + [None, None]
        return Decrease(True, messages[0], messages[1])


async def store_notice(redis: RedisStore, key: str, message: str) -> None:
    """A notice for the pusher's post-receive (MESSAGE_TTL). Raises RedisError."""
    await redis.run_script(STORE_NOTICE, [key], [message, MESSAGE_TTL])
