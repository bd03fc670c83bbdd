"""Who may call the admin API: GitLab's 401/403 answers for each way a token can be wrong."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from service import auth
from service.routes import ROUTE_TABLES
from service.routes.admin import ROUTE_TABLES as ADMIN_TABLES
from tests.admin_helpers import call, error_of, gitlab_client, make_admin
from tests.factories import make_personal_access_token, make_user

UNAUTHORIZED = {"message": "401 Unauthorized"}


async def test_no_token_is_401(client, db):
    resp = await client.get("/api/v4/users")
    assert resp.status == 401
    assert await resp.json() == UNAUTHORIZED


async def test_unknown_token_is_401(client, db):
    resp = await client.get("/api/v4/user", headers={"PRIVATE-TOKEN": "glpat-not-a-real-token"})
    assert resp.status == 401
    assert await resp.json() == UNAUTHORIZED


async def test_revoked_token_is_invalid_token(client, db):
    user = await make_user(db, admin=True)
    token = await make_personal_access_token(db, user, revoked=True)
    resp = await client.get("/api/v4/user", headers={"PRIVATE-TOKEN": token})
    assert resp.status == 401
    assert await resp.json() == {
        "error": "invalid_token",
        "error_description": "Token was revoked. You have to re-authorize from the user.",
    }


async def test_expired_token_is_invalid_token(client, db):
    user = await make_user(db, admin=True)
    token = await make_personal_access_token(db, user, expires_at=date.today() - timedelta(days=1))
    with gitlab_client(client, token) as gl:
        error = await error_of(gl.auth)
    assert error.response_code == 401
    assert json.loads(error.response_body) == {
        "error": "invalid_token",
        "error_description": "Token is expired. You can either do re-authorization or token refresh.",
    }


async def test_token_without_api_scope_is_insufficient_scope(client, db):
    user = await make_user(db, admin=True)
    token = await make_personal_access_token(db, user, scopes=["read_repository"])
    resp = await client.get("/api/v4/user", headers={"PRIVATE-TOKEN": token})
    assert resp.status == 403
    body = await resp.json()
    assert body["error"] == "insufficient_scope"
    assert (
        body["error_description"]
        == "The request requires higher privileges than provided by the access token."
    )


async def test_read_api_token_may_read_but_not_write(client, db):
    user = await make_user(db, admin=True)
    token = await make_personal_access_token(db, user, scopes=["read_api"])
    headers = {"PRIVATE-TOKEN": token}
    assert (await client.get("/api/v4/users", headers=headers)).status == 200
    resp = await client.post("/api/v4/groups", json={"name": "g", "path": "g"}, headers=headers)
    assert resp.status == 403
    assert (await resp.json())["error"] == "insufficient_scope"


async def test_non_admin_on_admin_route_is_403(client, db):
    user = await make_user(db)
    token = await make_personal_access_token(db, user)
    with gitlab_client(client, token) as gl:
        error = await error_of(
            lambda: gl.users.create(
                {"username": "mallory", "email": "m@example.com", "name": "M", "password": "12345678x"}
            )
        )
        me = await call(lambda: (gl.auth(), gl.user)[1])
    assert error.response_code == 403
    assert error.error_message == "403 Forbidden"
    assert me.username == user["username"]
    assert "is_admin" not in me.attributes  # the admin fields are for administrators
    assert await db.fetchval("SELECT count(*) FROM users WHERE username = 'mallory'") == 0


@pytest.mark.parametrize("where", ["header", "bearer", "query"])
async def test_token_accepted_in_each_place_gitlab_reads_it(client, db, where):
    admin, token = await make_admin(db)
    kwargs: dict = {}
    if where == "header":
        kwargs["headers"] = {"PRIVATE-TOKEN": token}
    elif where == "bearer":
        kwargs["headers"] = {"Authorization": f"Bearer {token}"}
    else:
        kwargs["params"] = {"private_token": token}
    resp = await client.get("/api/v4/user", **kwargs)
    assert resp.status == 200
    body = await resp.json()
    assert body["id"] == admin["id"]
    assert body["is_admin"] is True


@pytest.mark.parametrize("where", ["query", "body"])
async def test_the_private_token_parameter_comes_before_the_header_as_in_gitlab(client, db, where):
    """Gitlab::Auth::AuthFinders reads params[:private_token] first, then PRIVATE-TOKEN, then Bearer."""
    admin, admin_token = await make_admin(db)
    user = await make_user(db)
    user_token = await make_personal_access_token(db, user)
    headers = {"PRIVATE-TOKEN": user_token, "Authorization": f"Bearer {user_token}"}
    if where == "query":
        resp = await client.get("/api/v4/user", params={"private_token": admin_token}, headers=headers)
    else:
        resp = await client.post(
            "/api/v4/groups", json={"private_token": admin_token, "name": "G", "path": "g"}, headers=headers
        )
    assert resp.status in (200, 201), await resp.text()
    body = await resp.json()
    if where == "query":
        assert body["id"] == admin["id"]
    else:  # only an administrator may create a group: the user's header would have been 403
        assert body["path"] == "g"
    # The header alone is still the user's.
    alone = await client.get("/api/v4/user", headers=headers)
    assert (await alone.json())["id"] == user["id"]


async def test_the_private_token_header_comes_before_a_bearer_token(client, db):
    admin, admin_token = await make_admin(db)
    user = await make_user(db)
    user_token = await make_personal_access_token(db, user)
    resp = await client.get(
        "/api/v4/user", headers={"PRIVATE-TOKEN": admin_token, "Authorization": f"Bearer {user_token}"}
    )
    assert (await resp.json())["id"] == admin["id"]


@pytest.mark.parametrize(
    "private_token, status",
    [
        pytest.param(" ", 201, id="white space: the header's"),
        pytest.param("", 201, id="empty: the header's"),
        pytest.param([], 201, id="empty list: the header's"),
        pytest.param(5, 401, id="a number: tried, no such token"),
        pytest.param(["a"], 401, id="a list: tried, no such token"),
    ],
)
async def test_a_blank_private_token_is_passed_over_and_any_other_is_tried(client, db, private_token, status):
    """Rails' presence: nil, false, white space and empty lists are blank; anything else is the token.
    Creating a group needs an administrator: 201 says the administrator's header was used."""
    _, token = await make_admin(db)
    resp = await client.post(
        "/api/v4/groups",
        json={"private_token": private_token, "name": "G", "path": "g"},
        headers={"PRIVATE-TOKEN": token},
    )
    assert resp.status == status, await resp.text()


async def test_a_blank_private_token_in_the_query_is_passed_over(client, db):
    admin, token = await make_admin(db)
    resp = await client.get("/api/v4/user", params={"private_token": " "}, headers={"PRIVATE-TOKEN": token})
    assert (resp.status, (await resp.json())["id"]) == (200, admin["id"])


def test_every_admin_route_has_a_consumer_and_writes_need_admin():
    registered = {id(table) for table, _ in ROUTE_TABLES}
    for table, consumer in ADMIN_TABLES:
        assert id(table) in registered
        for route in table:
            if consumer is auth.PUBLIC:
                assert route.method == "GET", route.path
    # Creating users, groups and projects is for administrators only.
    admin_paths = {(r.method, r.path) for t, c in ADMIN_TABLES if c is auth.ADMIN for r in t}
    for needed in [
        ("POST", "/api/v4/users"),
        ("POST", "/api/v4/groups"),
        ("POST", "/api/v4/projects"),
        ("PUT", "/api/v4/application/settings"),
        ("POST", "/api/v4/users/{id}/personal_access_tokens"),
    ]:
        assert needed in admin_paths


async def test_blocked_owner_of_a_valid_token_is_403(client, db):
    user = await make_user(db, state="blocked")
    token = await make_personal_access_token(db, user)
    resp = await client.get("/api/v4/user", headers={"PRIVATE-TOKEN": token})
    assert (resp.status, await resp.json()) == (403, {"message": "403 Forbidden - Your account has been blocked."})


async def test_expired_is_reported_before_revoked(client, db):
    user = await make_user(db)
    token = await make_personal_access_token(db, user, revoked=True, expires_at=date.today() - timedelta(days=1))
    resp = await client.get("/api/v4/user", headers={"PRIVATE-TOKEN": token})
    assert resp.status == 401
    assert (await resp.json())["error_description"].startswith("Token is expired.")


async def test_personal_access_tokens_self(client, db):
    user = await make_user(db)
    token = await make_personal_access_token(db, user, name="mine")
    resp = await client.get("/api/v4/personal_access_tokens/self", headers={"PRIVATE-TOKEN": token})
    body = await resp.json()
    assert resp.status == 200 and body["name"] == "mine" and body["user_id"] == user["id"]


async def test_admin_mode_needs_the_admin_mode_scope(client, db):
    from tests.factories import set_application_settings

    admin = await make_user(db, admin=True)
    plain = await make_personal_access_token(db, admin, scopes=["api"])
    elevated = await make_personal_access_token(db, admin, scopes=["api", "admin_mode"])
    assert (await client.get("/api/v4/application/settings", headers={"PRIVATE-TOKEN": plain})).status == 200
    await set_application_settings(db, admin_mode=True)
    resp = await client.get("/api/v4/application/settings", headers={"PRIVATE-TOKEN": plain})
    assert resp.status == 403
    assert (await client.get("/api/v4/application/settings", headers={"PRIVATE-TOKEN": elevated})).status == 200
    assert (await client.get("/api/v4/user", headers={"PRIVATE-TOKEN": plain})).status == 200  # not an admin route
