"""Who may call kas's routes: the kas JWT on all of them, an agent token on the agent routes."""

from __future__ import annotations

import base64
import time
import warnings
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from service import auth
from service.routes import kas
from tests.conftest import KAS_SECRET, SHELL_SECRET
from tests.factories import make_personal_access_token, make_user
from tests.helpers import kas_headers, kas_jwt, shell_headers
from tests.kas_factories import agent_headers, make_agent, make_agent_token

KAS_INVALID = {"message": "KAS JWT authentication invalid"}
UNAUTHORIZED = {"message": "401 Unauthorized"}
USAGE = "/api/v4/internal/kubernetes/usage_metrics"
AGENT_INFO = "/api/v4/internal/kubernetes/agent_info"


def _valid_claims() -> dict[str, object]:
    now = int(time.time())
    return {"iss": "gitlab-kas", "aud": ["gitlab"], "iat": now, "nbf": now - 5, "exp": now + 30}


def _other_algorithm(algorithm: str) -> str:
    """A valid kas token but for its algorithm (PyJWT warns about the key length)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return jwt.encode(_valid_claims(), KAS_SECRET, algorithm=algorithm)


def _headers(token: str) -> dict[str, str]:
    return {"Gitlab-Kas-Api-Request": token, "Content-Type": "application/json"}


async def test_a_valid_kas_jwt_is_accepted(client):
    resp = await client.post(USAGE, json={}, headers=kas_headers())
    assert resp.status == 204


# Each case is made when it runs, from a token valid but for one defect: made at collection, every
# token would be past its 30 s `exp` in a long run and refused for that alone, whatever it tests.
@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(lambda: None, id="missing"),
        pytest.param(lambda: kas_jwt(iss="gitlab-shell"), id="wrong issuer"),
        pytest.param(lambda: kas_jwt(iss=None), id="no issuer"),
        pytest.param(lambda: kas_jwt(aud=["gitlab-workhorse"]), id="wrong audience"),
        pytest.param(lambda: kas_jwt(aud="kas"), id="wrong audience string"),
        pytest.param(lambda: kas_jwt(exp=int(time.time()) - 2), id="expired, no leeway"),
        pytest.param(lambda: kas_jwt(nbf=int(time.time()) + 30), id="not yet valid"),
        pytest.param(lambda: kas_jwt(key=base64.b64encode(KAS_SECRET)), id="signed with the undecoded secret"),
        pytest.param(lambda: kas_jwt(key=base64.b64encode(KAS_SECRET) + b"\n"), id="undecoded secret with newline"),
        pytest.param(lambda: kas_jwt(key=SHELL_SECRET), id="signed with the shell secret"),
        pytest.param(lambda: _other_algorithm("HS512"), id="HS512"),
        pytest.param(lambda: jwt.encode(_valid_claims(), None, algorithm="none"), id="alg none"),
        pytest.param(lambda: "not.a.jwt", id="garbage"),
        # stricter than Rails: kas always sends aud, exp and a current iat
        pytest.param(lambda: kas_jwt(aud=None), id="no audience"),
        pytest.param(lambda: kas_jwt(aud={"gitlab": True}), id="audience object"),
        pytest.param(lambda: kas_jwt(exp=None), id="no exp"),
        pytest.param(lambda: kas_jwt(iat=int(time.time()) + 1_000_000), id="iat far in the future"),
        pytest.param(lambda: kas_jwt(iat=int(time.time()) + 120), id="iat past the 60 s leeway"),
        pytest.param(lambda: kas_jwt(iat="yesterday"), id="iat not a number"),
    ],
)
async def test_bad_kas_jwts_are_refused(client, make_token):
    token = make_token()
    headers = {"Content-Type": "application/json"} if token is None else _headers(token)
    resp = await client.post(USAGE, json={"counters": {"gitops_sync": 1}}, headers=headers)
    assert resp.status == 401
    assert await resp.json() == KAS_INVALID


async def test_a_shell_jwt_is_not_a_kas_jwt(client, redis):
    resp = await client.post(USAGE, json={"counters": {"gitops_sync": 1}}, headers=shell_headers())
    assert resp.status == 401
    assert await resp.json() == KAS_INVALID
    assert await redis.get("{hll_counters}_USAGE_KUBERNETES_AGENT_GITOPS_SYNC") is None


async def test_a_kas_jwt_is_not_a_shell_jwt(client):
    resp = await client.get("/api/v4/internal/check", headers=kas_headers())
    assert resp.status == 401


@pytest.mark.parametrize("aud", ["gitlab", ["gitlab", "other"]], ids=["string", "list"])
async def test_audience_may_be_a_string_or_a_list(client, aud):
    resp = await client.post(USAGE, json={}, headers=_headers(kas_jwt(aud=aud)))
    assert resp.status == 204


async def test_iat_within_the_leeway_is_accepted(client):
    """Clock skew between the kas and GitLab hosts: an iat up to 60 s ahead is fine."""
    resp = await client.post(USAGE, json={}, headers=_headers(kas_jwt(iat=int(time.time()) + 30)))
    assert resp.status == 204


async def test_a_token_refused_for_a_future_iat_is_not_cached_as_valid(client):
    token = kas_jwt(iat=int(time.time()) + 1_000_000, exp=int(time.time()) + 2_000_000)
    for _ in range(2):
        assert (await client.post(USAGE, json={}, headers=_headers(token))).status == 401


@pytest.mark.parametrize("header", ["Authorization", "Gitlab-Agentk-Api-Request", "Gitlab-Agent-Api-Request"])
async def test_each_agent_token_header_works(client, db, header):
    agent = await make_agent(db)
    token, _ = await make_agent_token(db, agent)
    resp = await client.get(AGENT_INFO, headers=agent_headers(token, header))
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["agent_id"] == agent["id"]


async def test_agent_route_without_agent_token(client, db):
    resp = await client.get(AGENT_INFO, headers=kas_headers())
    assert resp.status == 401
    assert await resp.json() == UNAUTHORIZED


async def test_unknown_agent_token(client, db):
    resp = await client.get(AGENT_INFO, headers=agent_headers("glagent-nothing-like-this"))
    assert resp.status == 401
    assert await resp.json() == UNAUTHORIZED


async def test_revoked_agent_token(client, db):
    agent = await make_agent(db)
    token, _ = await make_agent_token(db, agent, status="revoked")
    resp = await client.get(AGENT_INFO, headers=agent_headers(token))
    assert resp.status == 401
    assert await resp.json() == UNAUTHORIZED


async def test_agent_token_without_kas_jwt(client, db):
    agent = await make_agent(db)
    token, _ = await make_agent_token(db, agent)
    resp = await client.get(AGENT_INFO, headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 401
    assert await resp.json() == KAS_INVALID


async def test_agent_token_with_bad_kas_jwt(client, db):
    agent = await make_agent(db)
    token, _ = await make_agent_token(db, agent)
    headers = {**_headers(kas_jwt(iss="gitlab-shell")), "Authorization": f"Bearer {token}"}
    resp = await client.get(AGENT_INFO, headers=headers)
    assert resp.status == 401
    assert await resp.json() == KAS_INVALID


async def test_first_use_records_last_used_at(client, db):
    agent = await make_agent(db)
    token, record = await make_agent_token(db, agent)
    assert record["last_used_at"] is None
    resp = await client.get(AGENT_INFO, headers=agent_headers(token))
    assert resp.status == 200
    used = await db.fetchval("SELECT last_used_at FROM cluster_agent_tokens WHERE id = $1", record["id"])
    assert used is not None and datetime.now(UTC) - used < timedelta(minutes=1)


async def test_recent_use_is_not_written_again(client, db):
    agent = await make_agent(db)
    recently = datetime.now(UTC) - timedelta(minutes=39)
    token, record = await make_agent_token(db, agent, last_used_at=recently)
    for _ in range(3):
        assert (await client.get(AGENT_INFO, headers=agent_headers(token))).status == 200
    used = await db.fetchval("SELECT last_used_at FROM cluster_agent_tokens WHERE id = $1", record["id"])
    assert used == recently


async def test_use_older_than_the_window_is_written(client, db):
    agent = await make_agent(db)
    long_ago = datetime.now(UTC) - timedelta(minutes=56)
    token, record = await make_agent_token(db, agent, last_used_at=long_ago)
    assert (await client.get(AGENT_INFO, headers=agent_headers(token))).status == 200
    used = await db.fetchval("SELECT last_used_at FROM cluster_agent_tokens WHERE id = $1", record["id"])
    assert datetime.now(UTC) - used < timedelta(minutes=1)


async def test_jwt_only_routes_do_not_need_an_agent_token(client, db):
    resp = await client.post(
        "/api/v4/internal/kubernetes/agent_configuration",
        json={"agent_id": 1, "agent_config": {}},
        headers=kas_headers(),
    )
    assert resp.status == 404  # authenticated; the agent does not exist


async def test_usage_data_needs_an_admin_token(client, db):
    path = "/api/v4/usage_data/kubernetes_agents"
    assert (await client.get(path)).status == 401
    assert (await client.get(path, headers=kas_headers())).status == 401
    user = await make_user(db)
    resp = await client.get(path, headers={"PRIVATE-TOKEN": await make_personal_access_token(db, user)})
    assert resp.status == 403
    admin = await make_user(db, admin=True)
    resp = await client.get(path, headers={"PRIVATE-TOKEN": await make_personal_access_token(db, admin)})
    assert resp.status == 200


def test_every_kas_route_has_the_intended_consumer():
    consumers = {id(table): consumer for table, consumer in kas.ROUTE_TABLES}
    assert consumers[id(kas.routes)] is auth.KAS
    assert consumers[id(kas.agent_routes)] is auth.KAS_AGENT
    assert consumers[id(kas.usage_data_routes)] is auth.ADMIN
    jwt_only = {d.path for d in kas.routes}
    assert jwt_only == {
        "/api/v4/internal/kubernetes/agent_configuration",
        "/api/v4/internal/kubernetes/usage_metrics",
        "/api/v4/internal/kubernetes/agent_events",
    }
    assert all("/modules/" in d.path or "info" in d.path or "verify" in d.path for d in kas.agent_routes)
