"""POST /internal/kubernetes/usage_metrics in its four historical forms, and the admin read path."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, date, datetime, timedelta

import pytest

from service.domain.usage_metrics import parse_usage_metrics, record_usage
from service.redis_store import create_store
from tests.factories import make_personal_access_token, make_user
from tests.helpers import kas_headers

USAGE = "/api/v4/internal/kubernetes/usage_metrics"
READ = "/api/v4/usage_data/kubernetes_agents"
SIX_WEEKS = 6 * 7 * 24 * 3600


def utc_today() -> date:
    return datetime.now(UTC).date()


def week(day: date | None = None) -> str:
    return (day or utc_today()).strftime("%G-%V")


def hll(event: str) -> str:
    return f"{{hll_counters}}_{event}-{week()}"


async def post(client, body):
    return await client.post(USAGE, json=body, headers=kas_headers())


async def admin_headers(db) -> dict[str, str]:
    admin = await make_user(db, admin=True)
    return {"PRIVATE-TOKEN": await make_personal_access_token(db, admin)}


async def test_era_a_top_level_counts(client, redis):
    resp = await post(client, {"gitops_sync_count": 3, "k8s_api_proxy_request_count": "2"})
    assert resp.status == 204
    assert await resp.read() == b""
    assert await redis.get("{hll_counters}_USAGE_KUBERNETES_AGENT_GITOPS_SYNC") == "3"
    assert await redis.get("{hll_counters}_USAGE_KUBERNETES_AGENT_K8S_API_PROXY_REQUEST") == "2"
    assert await redis.ttl("{hll_counters}_USAGE_KUBERNETES_AGENT_GITOPS_SYNC") == -1  # no expiry


async def test_counters_hash_and_unique_counters(client, redis):
    body = {
        "counters": {
            "gitops_sync": 1,
            "k8s_api_proxy_request": 5,
            "flux_git_push_notifications_total": 2,
            "k8s_api_proxy_requests_via_ci_access": 4,
            "k8s_api_proxy_requests_via_user_access": 6,
            "k8s_api_proxy_requests_via_pat_access": 7,
            "something_new": 9,  # undeclared: ignored, as Grape does
        },
        "unique_counters": {
            "agent_users_using_ci_tunnel": [10, 11, 10],
            "k8s_api_proxy_requests_unique_users_via_ci_access": [1, 2, 3],
            "k8s_api_proxy_requests_unique_agents_via_pat_access": [7],
            "flux_git_push_notified_unique_projects": ["42"],
        },
    }
    assert (await post(client, body)).status == 204
    assert await redis.get("{hll_counters}_USAGE_KUBERNETES_AGENT_K8S_API_PROXY_REQUEST") == "5"
    assert await redis.get("{hll_counters}_USAGE_KUBERNETES_AGENT_FLUX_GIT_PUSH_NOTIFICATIONS_TOTAL") == "2"
    assert await redis.get("{hll_counters}_USAGE_KUBERNETES_AGENT_K8S_API_PROXY_REQUESTS_VIA_PAT_ACCESS") == "7"
    assert await redis.get("{hll_counters}_USAGE_KUBERNETES_AGENT_SOMETHING_NEW") is None
    assert await redis.pfcount(hll("agent_users_using_ci_tunnel")) == 2
    assert await redis.pfcount(hll("k8s_api_proxy_requests_unique_users_via_ci_access")) == 3
    assert await redis.pfcount(hll("flux_git_push_notified_unique_projects")) == 1
    ttl = await redis.ttl(hll("agent_users_using_ci_tunnel"))
    assert SIX_WEEKS - 60 < ttl <= SIX_WEEKS


async def test_era_c_without_legacy_counters(client, redis):
    body = {
        "counters": {"k8s_api_proxy_request": 1},
        "unique_counters": {"k8s_api_proxy_requests_unique_agents_via_ci_access": [3]},
    }
    assert (await post(client, body)).status == 204
    assert sorted(await redis.keys("*")) == sorted(
        [
            "{hll_counters}_USAGE_KUBERNETES_AGENT_K8S_API_PROXY_REQUEST",
            hll("k8s_api_proxy_requests_unique_agents_via_ci_access"),
        ]
    )


async def test_counts_accumulate(client, redis):
    for _ in range(3):
        assert (await post(client, {"counters": {"gitops_sync": 2}})).status == 204
    assert await redis.get("{hll_counters}_USAGE_KUBERNETES_AGENT_GITOPS_SYNC") == "6"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"counters": {}},
        {"counters": {"gitops_sync": 0, "k8s_api_proxy_request": 0}},
        {"gitops_sync_count": 0},
        {"unique_counters": {"agent_users_using_ci_tunnel": []}},
        {"counters": None, "unique_counters": None},
    ],
)
async def test_zero_counts_and_empty_arrays_are_no_ops(client, redis, body):
    assert (await post(client, body)).status == 204
    assert await redis.dbsize() == 0


@pytest.mark.parametrize(
    "body, error",
    [
        (
            {"counters": {"gitops_sync": 1}, "gitops_sync_count": 1},
            "counters, gitops_sync_count are mutually exclusive",
        ),
        (
            {"counters": {}, "k8s_api_proxy_request_count": 1},
            "counters, k8s_api_proxy_request_count are mutually exclusive",
        ),
        (
            {"counters": {}, "gitops_sync_count": 1, "k8s_api_proxy_request_count": 1},
            (
                "counters, gitops_sync_count are mutually exclusive, "
                "counters, k8s_api_proxy_request_count are mutually exclusive"
            ),
        ),
        ({"counters": {"k8s_api_proxy_request": "many"}}, "counters[k8s_api_proxy_request] is invalid"),
        ({"counters": {"k8s_api_proxy_request": 1.5}}, "counters[k8s_api_proxy_request] is invalid"),
        ({"counters": {"gitops_sync": True}}, "counters[gitops_sync] is invalid"),
        ({"counters": {"gitops_sync": 2**64}}, "counters[gitops_sync] is invalid"),
        ({"counters": [1, 2]}, "counters is invalid"),
        ({"gitops_sync_count": "x"}, "gitops_sync_count is invalid"),
        (
            {"unique_counters": {"agent_users_using_ci_tunnel": 5}},
            "unique_counters[agent_users_using_ci_tunnel] is invalid",
        ),
        (
            {"unique_counters": {"agent_users_using_ci_tunnel": [1, "b"]}},
            "unique_counters[agent_users_using_ci_tunnel] is invalid",
        ),
        ({"unique_counters": "x"}, "unique_counters is invalid"),
        (
            {
                "counters": {"gitops_sync": "x", "k8s_api_proxy_request": -1},
                "unique_counters": {"flux_git_push_notified_unique_projects": {}},
            },
            "counters[gitops_sync] is invalid, unique_counters[flux_git_push_notified_unique_projects] is invalid",
        ),
    ],
)
async def test_parameter_errors_in_grape_shape(client, redis, body, error):
    resp = await post(client, body)
    assert resp.status == 400
    assert await resp.json() == {"error": error}
    assert await redis.dbsize() == 0


@pytest.mark.parametrize(
    "body, event",
    [
        ({"counters": {"gitops_sync": 5, "k8s_api_proxy_request": -1}}, "k8s_api_proxy_request"),
        ({"gitops_sync_count": -3}, "gitops_sync"),
        ({"counters": {"flux_git_push_notifications_total": "-2"}}, "flux_git_push_notifications_total"),
    ],
)
async def test_negative_counts(client, redis, body, event):
    resp = await post(client, {**body, "unique_counters": {"agent_users_using_ci_tunnel": [1]}})
    assert resp.status == 400
    assert await resp.json() == {
        "message": f"400 Bad request - {event} count must be greater than or equal to zero"
    }
    assert await redis.dbsize() == 0  # nothing half-written: the valid counts were not applied either


async def test_form_encoded_legacy_body(client, redis):
    resp = await client.post(
        USAGE,
        data={"gitops_sync_count": "4"},
        headers={"Gitlab-Kas-Api-Request": kas_headers()["Gitlab-Kas-Api-Request"]},
    )
    assert resp.status == 204
    assert await redis.get("{hll_counters}_USAGE_KUBERNETES_AGENT_GITOPS_SYNC") == "4"


async def test_concurrent_posts_sum_exactly(client, db, redis):
    async def one(n: int) -> int:
        body = {
            "counters": {"k8s_api_proxy_request": n, "gitops_sync": 1},
            "unique_counters": {"k8s_api_proxy_requests_unique_users_via_user_access": [n % 25]},
        }
        return (await post(client, body)).status

    statuses = await asyncio.gather(*(one(n) for n in range(1, 101)))
    assert statuses == [204] * 100
    assert await redis.get("{hll_counters}_USAGE_KUBERNETES_AGENT_K8S_API_PROXY_REQUEST") == str(sum(range(1, 101)))
    assert await redis.get("{hll_counters}_USAGE_KUBERNETES_AGENT_GITOPS_SYNC") == "100"
    assert await redis.pfcount(hll("k8s_api_proxy_requests_unique_users_via_user_access")) == 25

    resp = await client.get(READ, headers=await admin_headers(db))
    assert resp.status == 200
    body = await resp.json()
    assert body["counters"]["k8s_api_proxy_request"] == 5050
    assert body["counters"]["gitops_sync"] == 100
    unique = body["unique_counters"]["k8s_api_proxy_requests_unique_users_via_user_access"]
    assert unique["weekly"][week()] == 25
    assert unique["last_6_weeks"] == 25


async def test_read_path_shape_and_weeks(client, db, redis):
    today = utc_today()
    last_week = week(today - timedelta(weeks=1))
    # Earlier weeks, written the way GitLab writes them.
    await redis.pfadd(f"{{hll_counters}}_agent_users_using_ci_tunnel-{last_week}", "1", "2")
    await redis.pfadd(f"{{hll_counters}}_agent_users_using_ci_tunnel-{week(today - timedelta(weeks=9))}", "9")
    await redis.set("{hll_counters}_USAGE_KUBERNETES_AGENT_GITOPS_SYNC", 7)
    assert (await post(client, {"unique_counters": {"agent_users_using_ci_tunnel": [2, 3]}})).status == 204

    resp = await client.get(READ, headers=await admin_headers(db))
    assert resp.status == 200
    body = await resp.json()
    assert body["weeks"] == [week(today - timedelta(weeks=n)) for n in range(6)]
    assert body["counters"] == {
        "gitops_sync": 7,
        "k8s_api_proxy_request": 0,
        "flux_git_push_notifications_total": 0,
        "k8s_api_proxy_requests_via_ci_access": 0,
        "k8s_api_proxy_requests_via_user_access": 0,
        "k8s_api_proxy_requests_via_pat_access": 0,
    }
    tunnel = body["unique_counters"]["agent_users_using_ci_tunnel"]
    assert tunnel["weekly"][week()] == 2
    assert tunnel["weekly"][last_week] == 2
    assert tunnel["last_6_weeks"] == 3  # users 1, 2 and 3; the 9-week-old key is outside the window
    assert set(body["unique_counters"]) >= {
        "k8s_api_proxy_requests_unique_agents_via_ci_access",
        "flux_git_push_notified_unique_projects",
        "register_agent_at_kas",
    }


async def _script_calls(redis) -> int:
    stats = await redis.info("commandstats")
    return sum(stats.get(f"cmdstat_{name}", {}).get("calls", 0) for name in ("eval", "evalsha"))


async def test_one_request_is_one_script_call(backends, redis):
    """All increments of a request are one Lua script: one round trip, applied all or nothing."""
    update = parse_usage_metrics(
        {
            "counters": {
                "gitops_sync": 1,
                "k8s_api_proxy_request": 2,
                "flux_git_push_notifications_total": 3,
            },
            "unique_counters": {
                "agent_users_using_ci_tunnel": [1, 2],
                "flux_git_push_notified_unique_projects": [3],
            },
        }
    )
    store = create_store(backends.redis_url)
    await store.start()
    try:
        before = await _script_calls(redis)
        await record_usage(store, update, utc_today())
        assert await _script_calls(redis) - before == 1
    finally:
        await store.close()
    assert await redis.get("{hll_counters}_USAGE_KUBERNETES_AGENT_FLUX_GIT_PUSH_NOTIFICATIONS_TOTAL") == "3"
    assert await redis.pfcount(hll("agent_users_using_ci_tunnel")) == 2


async def test_an_overflowing_total_is_400_writes_nothing_and_is_no_outage(client, redis, caplog):
    """One total that would pass Redis's integer range: the request's input, so a 400 (not a 503,
    which kas would retry for ever, logged as Redis failing), and none of its increments applied."""
    caplog.set_level(logging.INFO)
    await redis.set("{hll_counters}_USAGE_KUBERNETES_AGENT_GITOPS_SYNC", 2**63 - 10)
    body = {"counters": {"k8s_api_proxy_request": 5, "gitops_sync": 100}, "unique_counters": {"agent_users_using_ci_tunnel": [1]}}
    resp = await post(client, body)
    assert (resp.status, await resp.json()) == (
        400,
        {"message": "400 Bad request - counters[gitops_sync] would take its total past 9.2e18; nothing was written"},
    )
    assert await redis.get("{hll_counters}_USAGE_KUBERNETES_AGENT_K8S_API_PROXY_REQUEST") is None
    assert await redis.exists(hll("agent_users_using_ci_tunnel")) == 0
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    resp = await post(client, {"counters": {"k8s_api_proxy_request": 5}})
    assert resp.status == 204
