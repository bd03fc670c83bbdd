"""kas usage metrics in Redis (reference sections 4.4 and 7).

Totals: `INCRBY {hll_counters}_USAGE_KUBERNETES_AGENT_<EVENT>`, no TTL: GitLab's KubernetesAgentCounter
key name (`USAGE_KUBERNETES_AGENT_<EVENT>`) with the HLLs' hash tag in front, NOT GitLab's name
itself. Unique counts: `PFADD {hll_counters}_<event>-<ISO year>-<ISO week>`, six weeks TTL, GitLab's
HLLRedisCounter names. Every key is in the `{hll_counters}` slot, so all the writes of one request
are ONE Lua script (one round trip, one slot on Redis Cluster) that applies all of them or none: it
refuses an overflowing total before writing anything, and a failure before it ran writes nothing.
A failed request is answered 503 and kas's retry cannot double-count half of it. A write that ran
but that replicas did not acknowledge (Sentinel's WAIT, service/redis_store.py) is answered 503
too, after its totals were taken back (its PFADDs need no undo: adding the same ids again on
kas's retry changes nothing).

Earlier versions of this service kept the totals under GitLab's untagged names; `read_usage` adds
those keys (LEGACY_COUNTER_KEYS), so totals do not restart from 0 on upgrade, and writes of
not-yet-upgraded workers during a rolling deploy still count.

POST /usage_metrics is kas's hottest call, so its parameters are checked here by hand against
tables built at import rather than by a marshmallow schema: the checks are few, and the messages
must be Grape's (including the order and the `mutually_exclusive` wording).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from typing import Any, NamedTuple

from service.domain.errors import BadRequest, InvalidParameter
from service.domain.ids import grape_integer
from service.redis_store import RedisError, RedisStore, Script, ScriptRefused
from service.unavailable import BackendUnavailable

# KubernetesAgentCounter::KNOWN_EVENTS over the eras (15.4+ adds the flux and *_via_* counters).
COUNTER_EVENTS = (
    "gitops_sync",
    "k8s_api_proxy_request",
    "flux_git_push_notifications_total",
    "k8s_api_proxy_requests_via_ci_access",
    "k8s_api_proxy_requests_via_user_access",
    "k8s_api_proxy_requests_via_pat_access",
)
# Era A: top-level `<event>_count` parameters, `_count` chopped off for the event name.
LEGACY_COUNTERS = {"gitops_sync_count": "gitops_sync", "k8s_api_proxy_request_count": "k8s_api_proxy_request"}
UNIQUE_EVENTS = (
    "agent_users_using_ci_tunnel",
    "k8s_api_proxy_requests_unique_users_via_ci_access",
    "k8s_api_proxy_requests_unique_users_via_user_access",
    "k8s_api_proxy_requests_unique_users_via_pat_access",
    "k8s_api_proxy_requests_unique_agents_via_ci_access",
    "k8s_api_proxy_requests_unique_agents_via_user_access",
    "k8s_api_proxy_requests_unique_agents_via_pat_access",
    "flux_git_push_notified_unique_projects",
)
# Fed by POST /agent_events only (service/domain/kas_events.py), never by usage_metrics.
AGENT_EVENT_UNIQUE_EVENTS = ("register_agent_at_kas",)
REPORTED_UNIQUE_EVENTS = UNIQUE_EVENTS + AGENT_EVENT_UNIQUE_EVENTS

COUNTER_KEYS = {event: f"{{hll_counters}}_USAGE_KUBERNETES_AGENT_{event.upper()}" for event in COUNTER_EVENTS}
# Read, never written: each in its own hash slot, so each is read by a command of its own.
LEGACY_COUNTER_KEYS = {event: f"USAGE_KUBERNETES_AGENT_{event.upper()}" for event in COUNTER_EVENTS}
# Gitlab::UsageDataCounters::HLLRedisCounter::REDIS_SLOT: one hash slot, so PFCOUNT over weeks works on a cluster.
HLL_KEY_PREFIXES = {event: f"{{hll_counters}}_{event}-" for event in REPORTED_UNIQUE_EVENTS}
HLL_TTL_SECONDS = int(timedelta(weeks=6).total_seconds())  # KEY_EXPIRY_LENGTH
REPORTED_WEEKS = 6  # older weekly keys have expired



class InvalidParameters(InvalidParameter):
    """Grape's parameter validation failure: 400 {"error": message}."""


class InvalidCount(BadRequest):
    """KubernetesAgentCounter.validate!'s ArgumentError (`rescue ArgumentError => e; bad_request!(e.message)`):
    400 {"message": "400 Bad request - <message>"}."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageUpdate(NamedTuple):
    counters: tuple[tuple[str, int], ...] = ()  # (event, increment > 0)
    unique: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (event, non-empty values)

    @property
    def empty(self) -> bool:
        return not self.counters and not self.unique


def _integer_list(value: Any) -> list[int] | None:
    if not isinstance(value, list):
        return None
    numbers: list[int] = []
    for item in value:
        number = grape_integer(item)
        if number is None:
            return None
        numbers.append(number)
    return numbers


def parse_usage_metrics(params: Mapping[str, Any]) -> UsageUpdate:
    """The increments of one POST /internal/kubernetes/usage_metrics, in any of its four forms.

    Raises InvalidParameters (types, mutual exclusion) before InvalidCount (a negative count),
    in the order GitLab checks them. Nothing is written when either is raised.

    kas's hottest call: plain loops, where comprehensions would each be a function call (Python 3.11).
    """
    errors: list[str] = []
    counts: dict[str, int] = {}
    legacy_given: list[str] = []
    for name, event in LEGACY_COUNTERS.items():
        value = params.get(name)
        if value is None:
            continue
        legacy_given.append(name)
        number = grape_integer(value)
        if number is None:
            errors.append(f"{name} is invalid")
        else:
            counts[event] = number
    counters = params.get("counters")
    if counters is not None:
        if not isinstance(counters, dict):  # a JSON object (params gives plain dicts)
            errors.append("counters is invalid")
        else:
            for event in COUNTER_EVENTS:
                value = counters.get(event)
                if value is None:
                    continue
                number = grape_integer(value)
                if number is None:
                    errors.append(f"counters[{event}] is invalid")
                else:
                    counts[event] = number
    unique: list[tuple[str, tuple[str, ...]]] = []
    unique_counters = params.get("unique_counters")
    if unique_counters is not None:
        if not isinstance(unique_counters, dict):
            errors.append("unique_counters is invalid")
        else:
            for event in UNIQUE_EVENTS:
                value = unique_counters.get(event)
                if value is None:
                    continue
                numbers = _integer_list(value)
                if numbers is None:
                    errors.append(f"unique_counters[{event}] is invalid")
                elif numbers:
                    unique.append((event, tuple(dict.fromkeys(map(str, numbers)))))
    if counters is not None:
        for name in legacy_given:
            errors.append(f"counters, {name} are mutually exclusive")
    if errors:
        raise InvalidParameters(", ".join(errors))
    increments: list[tuple[str, int]] = []
    for event, number in counts.items():
        if number < 0:
            raise InvalidCount(f"{event} count must be greater than or equal to zero")
        if number:  # a zero increment, like an empty id list above, is nothing to send to Redis
            increments.append((event, number))
    return UsageUpdate(tuple(increments), tuple(unique))


@functools.lru_cache(maxsize=16)  # every request of a day asks for the same week
def iso_week(day: date) -> str:
    """The weekly key suffix: ISO year and week, e.g. 2026-47 (strftime %G-%V)."""
    return day.strftime("%G-%V")


def hll_key(event: str, week: str) -> str:
    """GitLab's weekly HyperLogLog key, e.g. {hll_counters}_<event>-2026-47."""
    return HLL_KEY_PREFIXES[event] + week


# KEYS: the totals, then the weekly HLLs. ARGV: the number of totals, their increments, the HLL TTL,
# then per HLL the number of its values and the values. Every check comes before the first write.
# Lua numbers are doubles: 9.2e18 stays safely below INCRBY's limit of 2^63-1.
_RECORD_USAGE = Script("""
local totals = tonumber(ARGV[1])
for i = 1, totals do
  local current = tonumber(redis.call('GET', KEYS[i]) or '0')
  if current == nil or current + tonumber(ARGV[1 + i]) >= 9.2e18 then
    return redis.error_reply('REFUSED ' .. (i - 1))
  end
end
for i = 1, totals do redis.call('INCRBY', KEYS[i], ARGV[1 + i]) end
local ttl = ARGV[totals + 2]
local at = totals + 3
for k = totals + 1, #KEYS do
  local count = tonumber(ARGV[at])
  local first, last = at + 1, at + count
  while first <= last do  -- unpack() is limited to a few thousand values at once
    local upto = math.min(first + 999, last)
    redis.call('PFADD', KEYS[k], unpack(ARGV, first, upto))
    first = upto + 1
  end
  redis.call('EXPIRE', KEYS[k], ttl)  -- HLL.add refreshes the expiry on every add
  at = at + count + 1
end
return totals
""")

# The undo of a _RECORD_USAGE call (same KEYS and ARGV) whose write replicas did not acknowledge:
# its totals taken back. The HLLs stay: a retry re-adding the same ids leaves them as they are.
_UNDO_USAGE = Script("""
for i = 1, tonumber(ARGV[1]) do redis.call('DECRBY', KEYS[i], ARGV[1 + i]) end
return 0
""")


def usage_script_call(update: UsageUpdate, today: date) -> tuple[list[str], list[Any]]:
    """The keys and arguments of the one script call that applies an update."""
    week = iso_week(today)
    keys: list[str] = []
    args: list[Any] = [len(update.counters)]
    for event, number in update.counters:
        keys.append(COUNTER_KEYS[event])
        args.append(number)
    args.append(HLL_TTL_SECONDS)
    for event, values in update.unique:
        keys.append(hll_key(event, week))
        args.extend((len(values), *values))
    return keys, args


async def record_usage(redis: RedisStore, update: UsageUpdate, today: date) -> None:
    """All increments of one request, all or nothing, in one call; nothing at all when empty.

    Raises BackendUnavailable (503, kas retries) when Redis did not confirm the write; a write
    that ran but was not replicated in time has had its totals taken back by then.
    """
    if update.empty:
        return
    keys, args = usage_script_call(update, today)
    undo = (_UNDO_USAGE, args) if update.counters else None
    try:
        await redis.run_script(_RECORD_USAGE, keys, args, durable=True, undo=undo)
    except ScriptRefused as refused:
        # a total that would pass Redis's integer range: the request's input (a 400, which kas does
        # not retry), not an outage (a 503, retried for ever, and logged as Redis failing)
        event = update.counters[int(str(refused))][0]
        raise BadRequest(f"counters[{event}] would take its total past 9.2e18; nothing was written") from None
    except RedisError as exc:
        raise BackendUnavailable("redis", str(exc)) from None


def reported_weeks(today: date, count: int = REPORTED_WEEKS) -> list[str]:
    return [iso_week(today - timedelta(weeks=back)) for back in range(count)]


async def read_usage(redis: RedisStore, today: date) -> dict[str, Any]:
    """Totals (plus the legacy keys'), and unique counts per ISO week (newest first) with their union.

    One round trip for the {hll_counters} slot, concurrently one single-key GET per legacy total.
    """
    weeks = reported_weeks(today)
    commands: list[tuple[Any, ...]] = [("GET", COUNTER_KEYS[event]) for event in COUNTER_EVENTS]
    for event in REPORTED_UNIQUE_EVENTS:
        keys = [hll_key(event, week) for week in weeks]
        commands.extend(("PFCOUNT", key) for key in keys)
        commands.append(("PFCOUNT", *keys))  # the union: ids seen in any of these weeks, counted once
    try:
        replies = await asyncio.gather(
            redis.batch(commands),  # one slot: {hll_counters}
            *(redis.batch([("GET", LEGACY_COUNTER_KEYS[event])]) for event in COUNTER_EVENTS),
        )
    except RedisError as exc:
        raise BackendUnavailable("redis", str(exc)) from None
    results = iter(replies[0])
    legacy = {event: int(reply[0] or 0) for event, reply in zip(COUNTER_EVENTS, replies[1:], strict=True)}
    totals = {event: int(next(results) or 0) + legacy[event] for event in COUNTER_EVENTS}
    unique: dict[str, Any] = {}
    for event in REPORTED_UNIQUE_EVENTS:
        weekly = {week: int(next(results)) for week in weeks}
        unique[event] = {"weekly": weekly, f"last_{len(weeks)}_weeks": int(next(results))}
    return {"counters": totals, "unique_counters": unique, "weeks": weeks}


def unique_update(pairs: Iterable[tuple[str, Iterable[int]]]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(event, ids) pairs as UsageUpdate.unique, dropping empty ones."""
    result = []
    for event, ids in pairs:
        values = tuple(dict.fromkeys(str(i) for i in ids))
        if values:
            result.append((event, values))
    return tuple(result)
