"""The other GitLab Shell endpoints: keys, discover, check, LFS, 2FA, tokens, error tracking."""

from __future__ import annotations

import base64
import re
from datetime import date, timedelta

import jwt
import orjson
import pytest

from service.domain.tokens import token_digest
from service.domain.two_factor import code_matches
from tests.conftest import DB_KEY_BASE
from tests.factories import (
    enable_deploy_key,
    make_key,
    make_project,
    make_user,
    set_application_settings,
)
from tests.helpers import shell_headers

INTERNAL = "/api/v4/internal"


async def test_authorized_keys_padded_and_unpadded(client, db):
    user = await make_user(db, name="Dede Eichmann")
    key, parsed = await make_key(db, user, title="admin@example.com")
    padded = base64.b64encode(parsed.blob).decode()
    for blob in (padded, padded.rstrip("=")):
        resp = await client.get(f"{INTERNAL}/authorized_keys", params={"key": blob}, headers=shell_headers())
        assert resp.status == 200
        body = await resp.json()
        assert body["id"] == key["id"] and body["title"] == "admin@example.com"
        assert body["key"] == f"ssh-ed25519 {padded} Dede Eichmann (gitlab.test)"
        assert body["usage_type"] == "auth_and_signing" and body["expires_at"] is None
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", body["created_at"])


async def test_authorized_keys_takes_the_last_of_a_repeated_key_as_rack_does(client, db):
    user = await make_user(db)
    key, parsed = await make_key(db, user)
    blob = base64.b64encode(parsed.blob).decode()
    resp = await client.get(f"{INTERNAL}/authorized_keys", params=[("key", "bm90IGEga2V5"), ("key", blob)], headers=shell_headers())
    assert (resp.status, (await resp.json())["id"]) == (200, key["id"])
    resp = await client.get(f"{INTERNAL}/authorized_keys", params=[("key", blob), ("key", "bm90IGEga2V5")], headers=shell_headers())
    assert (resp.status, await resp.json()) == (404, {"message": "404 Key Not Found"})


async def test_authorized_keys_misses(client, db):
    user = await make_user(db)
    _, signing = await make_key(db, user, usage_type="signing")
    for blob in (base64.b64encode(signing.blob).decode(), "bm90IGEga2V5", "!!!not-base64!!!"):
        resp = await client.get(f"{INTERNAL}/authorized_keys", params={"key": blob}, headers=shell_headers())
        assert (resp.status, await resp.json()) == (404, {"message": "404 Key Not Found"})
    resp = await client.get(f"{INTERNAL}/authorized_keys", headers=shell_headers())
    assert (resp.status, await resp.json()) == (400, {"error": "key is missing"})


async def test_discover(client, db):
    user = await make_user(db, username="rubi", name="Dede Eichmann")
    key, _ = await make_key(db, user)
    expected = {"id": user["id"], "username": "rubi", "name": "Dede Eichmann"}
    for query in ({"key_id": str(key["id"])}, {"username": "rubi"}, {"user_id": str(user["id"])}):
        resp = await client.get(f"{INTERNAL}/discover", params=query, headers=shell_headers())
        assert (resp.status, await resp.json()) == (200, expected)
    for query in ({"key_id": "99999"}, {"username": "nobody"}, {}):
        resp = await client.get(f"{INTERNAL}/discover", params=query, headers=shell_headers())
        assert resp.status == 200
        assert await resp.read() == b"null"


async def test_check_reports_versions_and_a_real_redis_ping(client):
    resp = await client.get(f"{INTERNAL}/check", headers=shell_headers())
    body = await resp.json()
    assert resp.status == 200
    assert body["api_version"] == "v4" and body["redis"] is True
    assert body["gitlab_rev"] == body["gitlab_revision"] and body["gitlab_version"]


async def test_lfs_authenticate_for_users_and_deploy_keys(client, db):
    user = await make_user(db, username="root")
    key, _ = await make_key(db, user)
    project = await make_project(db, owner=user)
    resp = await client.post(
        f"{INTERNAL}/lfs_authenticate", json={"key_id": str(key["id"]), "project": f"/{project['full_path']}.git", "operation": "download"},
        headers=shell_headers(),
    )
    body = await resp.json()
    assert resp.status == 200
    assert body["username"] == "root" and body["expires_in"] == 7200
    assert body["repository_http_path"] == f"http://gitlab.test/{project['full_path']}.git"
    secret = f"{user['id']}{user['encrypted_password'][-16:]}".encode() + DB_KEY_BASE[:16]
    claims = jwt.decode(body["lfs_token"], secret, algorithms=["HS256"])
    # the project binding inside `data`, where GitLab's LfsToken#token_valid? looks for it
    assert claims["data"] == {"actor": "root", "container_gid": f"gid://gitlab/Project/{project['id']}"}
    assert claims["exp"] - claims["iat"] == 7200 and "container_gid" not in claims

    deploy, parsed = await make_key(db, user, deploy_key=True)
    await enable_deploy_key(db, deploy, project)
    resp = await client.post(f"{INTERNAL}/lfs_authenticate", json={"key_id": str(deploy["id"]), "project": project["full_path"]}, headers=shell_headers())
    assert (await resp.json())["username"] == f"lfs+deploy-key-{deploy['id']}"

    # user_id arrives as a string from gitlab-shell
    resp = await client.post(f"{INTERNAL}/lfs_authenticate", json={"user_id": str(user["id"]), "project": project["full_path"]}, headers=shell_headers())
    assert resp.status == 200


async def test_lfs_authenticate_for_a_wiki_takes_its_projects_lfs(client, db):
    user = await make_user(db, username="wikiuser")
    project = await make_project(db, owner=user)
    for given in (f"{project['full_path']}.wiki.git", f"/{project['full_path']}.wiki"):
        resp = await client.post(
            f"{INTERNAL}/lfs_authenticate", json={"user_id": str(user["id"]), "project": given}, headers=shell_headers()
        )
        body = await resp.json()
        assert resp.status == 200, body
        assert body["repository_http_path"] == f"http://gitlab.test/{project['full_path']}.wiki.git"
        assert body["username"] == "wikiuser"
    without_lfs = await make_project(db, owner=user, lfs_enabled=False)
    resp = await client.post(
        f"{INTERNAL}/lfs_authenticate",
        json={"user_id": str(user["id"]), "project": f"{without_lfs['full_path']}.wiki.git"},
        headers=shell_headers(),
    )
    assert (resp.status, await resp.json()) == (404, {"message": "404 Not Found"})


async def test_lfs_authenticate_errors(client, db):
    user = await make_user(db)
    project = await make_project(db, owner=user, lfs_enabled=False)
    other = await make_project(db, owner=user)
    cases = [
        ({"user_id": str(user["id"]), "project": project["full_path"]}, {"message": "404 Not Found"}),
        ({"user_id": str(user["id"]), "project": "no/such"}, {"message": "404 Not Found"}),
        ({"key_id": "99999", "project": other["full_path"]}, {"message": "404 Not found"}),
    ]
    for body, expected in cases:
        resp = await client.post(f"{INTERNAL}/lfs_authenticate", json=body, headers=shell_headers())
        assert (resp.status, await resp.json()) == (404, expected)


async def test_recovery_codes_replace_the_old_ones(client, db):
    user = await make_user(db, otp_required_for_login=True)
    key, _ = await make_key(db, user)
    first = await (await client.post(f"{INTERNAL}/two_factor_recovery_codes", json={"key_id": str(key["id"])}, headers=shell_headers())).json()
    assert first["success"] is True and len(first["recovery_codes"]) == 10
    assert all(re.fullmatch(r"[0-9a-f]{16}", code) for code in first["recovery_codes"])
    stored = orjson.loads(await db.fetchval("SELECT otp_backup_codes FROM users WHERE id = $1", user["id"]))
    assert len(stored) == 10 and not set(stored) & set(first["recovery_codes"])  # digests only
    assert code_matches(first["recovery_codes"][0], stored[0])
    # the seed documents call it with GET and form data; both work
    second = await (await client.get(f"{INTERNAL}/two_factor_recovery_codes", params={"key_id": str(key["id"])}, headers=shell_headers())).json()
    stored_again = orjson.loads(await db.fetchval("SELECT otp_backup_codes FROM users WHERE id = $1", user["id"]))
    assert not code_matches(first["recovery_codes"][0], stored_again[0])
    assert second["success"] is True and set(second["recovery_codes"]).isdisjoint(first["recovery_codes"])


async def test_recovery_codes_failures_are_200_with_success_false(client, db):
    user = await make_user(db, otp_required_for_login=False)
    key, _ = await make_key(db, user)
    deploy, _ = await make_key(db, user, deploy_key=True)
    cases = [
        ({"key_id": str(key["id"])}, "Two-factor authentication is not enabled for this user"),
        ({"key_id": str(deploy["id"])}, "Deploy keys cannot be used to retrieve recovery codes"),
        ({"key_id": "4242"}, "Could not find the given key"),
        ({"user_id": user["id"]}, "Could not find the given key"),
        ({"user_id": 987654}, "Could not find the given user"),
    ]
    for body, message in cases:
        resp = await client.post(f"{INTERNAL}/two_factor_recovery_codes", json=body, headers=shell_headers())
        assert (resp.status, await resp.json()) == (200, {"success": False, "message": message})


async def test_personal_access_token(client, db):
    user = await make_user(db)
    key, _ = await make_key(db, user)
    expires = (date.today() + timedelta(days=30)).isoformat()
    resp = await client.post(
        f"{INTERNAL}/personal_access_token",
        json={"key_id": str(key["id"]), "name": "mytoken", "scopes": ["read_api", "read_repository"], "expires_at": expires},
        headers=shell_headers(),
    )
    body = await resp.json()
    assert resp.status == 200 and body["success"] is True
    assert body["token"].startswith("glpat-") and body["scopes"] == ["read_api", "read_repository"]
    assert body["expires_at"] == expires
    row = await db.fetchrow("SELECT * FROM personal_access_tokens WHERE user_id = $1", user["id"])
    assert row["token_digest"] == token_digest(body["token"]) and body["token"] not in row["token_digest"]
    assert row["scopes"] == ["read_api", "read_repository"] and row["name"] == "mytoken"
    # form data with scopes[] and a lenient date, no expiry -> the instance maximum
    resp = await client.post(
        f"{INTERNAL}/personal_access_token",
        data={"key_id": str(key["id"]), "name": "t2", "scopes[]": ["read_user"]},
        headers={"Gitlab-Shell-Api-Request": shell_headers()["Gitlab-Shell-Api-Request"]},
    )
    body = await resp.json()
    assert body["success"] is True and body["expires_at"] == (date.today() + timedelta(days=365)).isoformat()


async def test_personal_access_token_failures(client, db):
    user = await make_user(db)
    key, _ = await make_key(db, user)
    deploy, _ = await make_key(db, user, deploy_key=True)
    base = {"key_id": str(key["id"]), "name": "n", "scopes": ["api"]}
    too_late = date.today() + timedelta(days=400)
    cases = [
        ({**base, "key_id": str(deploy["id"])}, "Deploy keys cannot be used to create personal access tokens"),
        ({**base, "key_id": None, "user_id": 29}, "Could not find the given user"),
        ({**base, "key_id": None, "user_id": user["id"]}, "Could not find the given key"),
        ({**base, "name": ""}, "No token name specified"),
        ({**base, "scopes": []}, "No token scopes specified"),
        (
            {**base, "scopes": ["sudo"]},
            "Invalid scope: 'sudo'. Valid scopes are: [\"api\", \"create_runner\", \"k8s_proxy\", \"manage_runner\", "
            "\"read_api\", \"read_registry\", \"read_repository\", \"read_user\", \"self_rotate\", "
            "\"write_registry\", \"write_repository\"]",
        ),
        ({**base, "expires_at": "someday"}, "Invalid token expiry date: 'someday'"),
        (
            {**base, "expires_at": too_late.isoformat()},
            f"Failed to create token: Expires at must be before {(date.today() + timedelta(days=365)).isoformat()}",
        ),
    ]
    for body, message in cases:
        body = {k: v for k, v in body.items() if v is not None}
        resp = await client.post(f"{INTERNAL}/personal_access_token", json=body, headers=shell_headers())
        assert (resp.status, await resp.json()) == (200, {"success": False, "message": message}), body
    assert await db.fetchval("SELECT count(*) FROM personal_access_tokens") == 0


@pytest.mark.parametrize("state", ["blocked", "ldap_blocked", "blocked_pending_approval"])
async def test_a_blocked_user_gets_no_personal_access_token(client, db, state):
    """UserPolicy: create_user_personal_access_token is `(user_is_self | admin) & ~blocked`; a token
    minted while blocked would come alive the day the user is unblocked."""
    user = await make_user(db, state=state)
    key, _ = await make_key(db, user)
    body = {"key_id": str(key["id"]), "name": "n", "scopes": ["api"]}
    resp = await client.post(f"{INTERNAL}/personal_access_token", json=body, headers=shell_headers())
    assert await resp.json() == {"success": False, "message": "Failed to create token: Not permitted to create"}
    assert await db.fetchval("SELECT count(*) FROM personal_access_tokens") == 0


async def test_a_token_name_over_255_characters_is_refused(client, db):
    user = await make_user(db)
    key, _ = await make_key(db, user)
    body = {"key_id": str(key["id"]), "name": "n" * 256, "scopes": ["api"]}
    resp = await client.post(f"{INTERNAL}/personal_access_token", json=body, headers=shell_headers())
    assert await resp.json() == {
        "success": False,
        "message": "Failed to create token: Name is too long (maximum is 255 characters)",
    }
    assert await db.fetchval("SELECT count(*) FROM personal_access_tokens") == 0


async def test_personal_access_token_without_required_expiry(client, db):
    user = await make_user(db)
    key, _ = await make_key(db, user)
    await set_application_settings(db, require_personal_access_token_expiry=False)
    resp = await client.post(f"{INTERNAL}/personal_access_token", json={"key_id": str(key["id"]), "name": "n", "scopes": ["api"], "expires_at": "24 Jul 2027"}, headers=shell_headers())
    assert (await resp.json())["expires_at"] == "2027-07-24"
    resp = await client.post(f"{INTERNAL}/personal_access_token", json={"key_id": str(key["id"]), "name": "n", "scopes": ["api"]}, headers=shell_headers())
    assert (await resp.json())["expires_at"] is None


async def test_two_factor_config_and_otp_checks(client, db):
    user = await make_user(db, otp_required_for_login=True)
    key, _ = await make_key(db, user)
    deploy, _ = await make_key(db, user, deploy_key=True)
    url = f"{INTERNAL}/two_factor_config"
    assert await (await client.post(url, json={"key_id": str(key["id"])}, headers=shell_headers())).json() == {"success": False}
    await set_application_settings(db, two_factor_for_cli=True)
    assert await (await client.post(url, json={"key_id": str(key["id"])}, headers=shell_headers())).json() == {"success": True, "two_factor_required": True}
    assert await (await client.post(url, json={"key_id": str(deploy["id"])}, headers=shell_headers())).json() == {"success": True, "two_factor_required": False}
    assert await (await client.post(url, json={"key_id": "777"}, headers=shell_headers())).json() == {"success": False, "message": "Could not find the given key"}
    for name in ("two_factor_manual_otp_check", "two_factor_push_otp_check"):
        resp = await client.post(f"{INTERNAL}/{name}", json={"key_id": str(key["id"]), "otp_attempt": "123456"}, headers=shell_headers())
        assert await resp.json() == {"success": False, "message": "Feature is not available"}


async def test_error_tracking_allowed(client, db):
    user = await make_user(db)
    project = await make_project(db, owner=user)
    await db.execute("INSERT INTO error_tracking_client_keys (project_id, public_key) VALUES ($1, 'glet_abc')", project["id"])
    await set_application_settings(db, error_tracking_enabled=True, error_tracking_access_token_digest=token_digest("et-token"))
    url = f"{INTERNAL}/error_tracking/allowed"
    headers = {"Gitlab-Error-Tracking-Token": "et-token"}
    assert await (await client.post(url, json={"project_id": project["id"], "public_key": "glet_abc"}, headers=headers)).json() == {"enabled": True}
    assert await (await client.post(url, json={"project_id": project["id"], "public_key": "other"}, headers=headers)).json() == {"enabled": False}
    # the seed document's form, with the shell credentials and form data
    resp = await client.post(url, data={"project_id": str(project["id"]), "public_key": "glet_abc"}, headers={"Gitlab-Shell-Api-Request": shell_headers()["Gitlab-Shell-Api-Request"]})
    assert await resp.json() == {"enabled": True}
    resp = await client.post(url, json={"project_id": 98765, "public_key": "glet_abc"}, headers=headers)
    assert (resp.status, await resp.json()) == (404, {"message": "404 Not found"})
    resp = await client.post(url, json={"project_id": project["id"]}, headers=headers)
    assert (resp.status, await resp.json()) == (422, {"message": "422 Unprocessable Entity"})
    resp = await client.post(url, json={"project_id": project["id"], "public_key": "glet_abc"}, headers={"Gitlab-Error-Tracking-Token": "wrong"})
    assert (resp.status, await resp.json()) == (401, {"message": "401 Unauthorized"})


async def test_unknown_routes_methods_and_no_redirects(client):
    resp = await client.get("/api/v4/internal/nope", headers=shell_headers())
    assert (resp.status, await resp.json()) == (404, {"error": "404 Not Found"})
    resp = await client.get(f"{INTERNAL}/allowed/", headers=shell_headers(), allow_redirects=False)
    assert resp.status == 404
    resp = await client.delete(f"{INTERNAL}/check", headers=shell_headers(), allow_redirects=False)
    assert resp.status == 405 and resp.content_type == "application/json"


async def test_get_with_json_content_type_and_empty_body(client):
    resp = await client.get(f"{INTERNAL}/check", headers={**shell_headers(), "Content-Type": "application/json"}, data=b"")
    assert resp.status == 200


async def test_malformed_json_is_a_400_not_a_500(client):
    resp = await client.post(f"{INTERNAL}/allowed", data=b"{not json", headers=shell_headers())
    assert resp.status == 400
    assert (await resp.json())["message"].startswith("400 Bad request")


async def test_concurrent_authorized_keys_lookups(client, db):
    import asyncio

    users = [await make_user(db, name=f"Owner {n}") for n in range(20)]
    keys = [await make_key(db, user) for user in users]
    blobs = [base64.b64encode(parsed.blob).decode() for _, parsed in keys] + ["AAAAC3NzaC1lZDI1NTE5AAAAIA=="]
    responses = await asyncio.gather(
        *(client.get(f"{INTERNAL}/authorized_keys", params={"key": blob}, headers=shell_headers()) for blob in blobs)
    )
    for (key, _), user, response in zip(keys, users, responses):
        body = await response.json()
        assert body["id"] == key["id"] and body["key"].endswith(f"{user['name']} (gitlab.test)")
    assert responses[-1].status == 404
