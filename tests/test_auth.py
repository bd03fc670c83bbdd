"""Who may call what: the router walk and the GitLab Shell credential matrix."""

from __future__ import annotations

import base64
import time

import jwt
import pytest
from aiohttp.web_urldispatcher import SystemRoute

from service import auth, app_keys
from service.app import create_app
from tests.conftest import KAS_SECRET, SHELL_SECRET
from tests.helpers import kas_headers, legacy_shell_headers, shell_headers, shell_jwt

UNAUTHORIZED = {"message": "401 Unauthorized"}
KAS_INVALID = {"message": "KAS JWT authentication invalid"}


def _concrete_path(path: str) -> str:
    """Fill route placeholders with plausible values."""
    import re

    return re.sub(r"\{[^}]+\}", "1", path)


async def test_every_route_has_a_consumer(app):
    consumers = app[app_keys.ROUTE_CONSUMERS]
    routes = [route for route in app.router.routes() if not isinstance(route, SystemRoute)]
    assert routes
    missing = [route for route in routes if route not in consumers]
    assert missing == []


async def test_no_route_answers_without_credentials(aiohttp_client, settings, secrets, db, redis):
    """Every route except the load-balancer probes refuses a request that carries no credentials."""
    # the test client's 127.0.0.1 outside the monitoring allow-list
    app = create_app(settings.with_overrides(monitoring_ip_whitelist=("10.0.0.0/8",)), secrets)
    client = await aiohttp_client(app)
    checked = 0
    for route, consumer in app[app_keys.ROUTE_CONSUMERS].items():
        if consumer is auth.PUBLIC:
            continue
        info = route.resource.get_info()
        path = _concrete_path(info.get("path") or info.get("formatter"))
        resp = await client.request(route.method, path, json={})
        if consumer is auth.MONITORING:
            expected_answer = (404, {"message": "404 Not Found"})  # GitLab's MetricsController: no such page
        elif consumer in (auth.KAS, auth.KAS_AGENT):
            expected_answer = (401, KAS_INVALID)
        else:
            expected_answer = (401, UNAUTHORIZED)
        assert (resp.status, await resp.json()) == expected_answer, (route.method, path)
        checked += 1
    assert checked >= 12


async def test_health_probes_need_no_credentials(client):
    assert (await client.get("/-/liveness")).status == 200
    resp = await client.get("/-/readiness")
    assert resp.status == 200
    body = await resp.json()
    assert body["db_check"] == [{"status": "ok"}] and body["redis_check"] == [{"status": "ok"}]


CHECK = "/api/v4/internal/check"


async def test_valid_shell_jwt(client):
    resp = await client.get(CHECK, headers=shell_headers())
    assert resp.status == 200


def _valid_shell_claims() -> dict[str, object]:
    """What shell_jwt() signs: each case below differs from a valid token in one thing only."""
    now = int(time.time())
    return {"iss": "gitlab-shell", "iat": now, "exp": now + 60}


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(lambda: shell_jwt(iss="gitlab-workhorse"), id="wrong-issuer"),
        pytest.param(lambda: shell_jwt(iss=None), id="no-issuer"),
        pytest.param(lambda: shell_jwt(exp=int(time.time()) - 61), id="expired-past-leeway"),
        pytest.param(lambda: shell_jwt(nbf=int(time.time()) + 120), id="not-yet-valid"),
        pytest.param(lambda: jwt.encode(_valid_shell_claims(), b"other-secret-xxxxxxxxxxxxxxxxxxxx", algorithm="HS256"), id="wrong-secret"),
        pytest.param(lambda: jwt.encode(_valid_shell_claims(), SHELL_SECRET * 2, algorithm="HS512"), id="hs512"),
        pytest.param(lambda: jwt.encode(_valid_shell_claims(), None, algorithm="none"), id="alg-none"),
        pytest.param(lambda: "not-a-jwt", id="garbage"),
        pytest.param(lambda: kas_headers()["Gitlab-Kas-Api-Request"], id="kas-token"),
        # stricter than Rails: a token without exp never expires; gitlab-shell and Gitaly always send one
        pytest.param(lambda: shell_jwt(exp=None), id="no-exp"),
        pytest.param(lambda: shell_jwt(iat=int(time.time()) + 1_000_000), id="iat-far-in-the-future"),
        pytest.param(lambda: shell_jwt(iat=int(time.time()) + 61 + 60), id="iat-past-the-leeway"),
        pytest.param(lambda: shell_jwt(iat=True), id="iat-not-a-number"),
        # signed, but past any float: refused, not a 500
        pytest.param(lambda: shell_jwt(nbf=-(10**400)), id="nbf-of-400-digits"),
        pytest.param(lambda: shell_jwt(iat=-(10**400)), id="iat-of-400-digits"),
    ],
)
async def test_rejected_shell_jwts(client, token):
    resp = await client.get(CHECK, headers={"Gitlab-Shell-Api-Request": token()})
    assert resp.status == 401
    assert await resp.json() == UNAUTHORIZED


async def test_expired_within_leeway_and_future_iat_are_accepted(client):
    now = int(time.time())
    for token in (shell_jwt(exp=now - 30), shell_jwt(iat=now + 10)):
        resp = await client.get(CHECK, headers={"Gitlab-Shell-Api-Request": token})
        assert resp.status == 200


async def test_secret_file_whitespace_is_trimmed(client):
    """gitlab-shell signs with the TrimSpace'd secret; our file ends with a newline."""
    token = jwt.encode({"iss": "gitlab-shell", "exp": int(time.time()) + 60}, SHELL_SECRET, algorithm="HS256")
    assert (await client.get(CHECK, headers={"Gitlab-Shell-Api-Request": token})).status == 200
    with_newline = jwt.encode({"iss": "gitlab-shell", "exp": int(time.time()) + 60}, SHELL_SECRET + b"\n", algorithm="HS256")
    assert (await client.get(CHECK, headers={"Gitlab-Shell-Api-Request": with_newline})).status == 401


async def test_legacy_shared_secret_header_and_param(client):
    assert (await client.get(CHECK, headers=legacy_shell_headers())).status == 200
    assert (await client.get(CHECK, headers=legacy_shell_headers(b"wrong"))).status == 401
    resp = await client.post(
        "/api/v4/internal/pre_receive", data={"secret_token": SHELL_SECRET.decode(), "gl_repository": "project-1"}
    )
    assert resp.status == 200
    encoded = base64.b64encode(SHELL_SECRET).decode()
    resp = await client.get(CHECK, params={"secret_token": encoded})
    assert resp.status == 200
    resp = await client.get(CHECK, params={"secret_token": "nope"})
    assert resp.status == 401


async def test_invalid_jwt_is_not_rescued_by_a_legacy_secret(client):
    """Rails: "returns 401 when jwt token is not provided, even if plain secret is provided" – and a
    bad JWT is never bypassed by sending the old header too."""
    headers = {**legacy_shell_headers(), "Gitlab-Shell-Api-Request": shell_jwt(iss="someone-else")}
    assert (await client.get(CHECK, headers=headers)).status == 401


async def test_legacy_secret_can_be_switched_off(aiohttp_client, settings, secrets, db, redis):

    strict = await aiohttp_client(create_app(settings.with_overrides(accept_legacy_shell_secret=False), secrets))
    assert (await strict.get(CHECK, headers=legacy_shell_headers())).status == 401
    assert (await strict.get(CHECK, headers=shell_headers())).status == 200


async def test_shell_jwt_is_refused_on_kas_routes(client):
    resp = await client.post("/api/v4/internal/kubernetes/usage_metrics", json={}, headers=shell_headers())
    assert resp.status == 401
    assert await resp.json() == {"message": "KAS JWT authentication invalid"}


async def test_kas_secret_must_decode_to_32_bytes(tmp_path):
    from service.secrets import SecretFileError, load_kas_secret

    bad = tmp_path / "kas"
    bad.write_text(base64.b64encode(b"short").decode())
    with pytest.raises(SecretFileError):
        load_kas_secret(bad)
    good = tmp_path / "generated"
    assert len(load_kas_secret(good)) == 32  # generated as GitLab does when missing
    assert len(base64.b64decode(good.read_text())) == 32
    assert KAS_SECRET  # the test secret is 32 bytes too


def test_a_remembered_token_expires_when_a_fresh_check_would_refuse_it() -> None:
    """PyJWT compares whole seconds of `exp`: a token whose exp is 12.9 is refused from 12.0 on, and
    the verified-token memory must refuse it from then too."""
    key, issuer = bytes(range(32)), "gitlab-shell"
    exp = int(time.time()) + 1.9
    token = jwt.encode({"iss": issuer, "iat": int(time.time()), "exp": exp}, key, algorithm="HS256")
    remembered = auth.VerifiedTokens(key, issuer, leeway=0)
    remembered.verify(token)
    while time.time() < int(exp) + 0.05:  # past the whole second, before the fraction
        time.sleep(0.01)
    with pytest.raises(jwt.ExpiredSignatureError):
        auth.VerifiedTokens(key, issuer, leeway=0).verify(token)  # a fresh check
    with pytest.raises(jwt.ExpiredSignatureError):
        remembered.verify(token)
