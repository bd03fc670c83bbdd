"""Malformed requests get GitLab's 4xx answers, never a 500."""

from __future__ import annotations

import pytest

from tests.admin_helpers import created, make_admin

HUGE = "9" * 30

CASES = [
    ("GET", "/api/v4/users/abc", None, 400, {"error": "id is invalid"}),
    ("GET", "/api/v4/users/²", None, 400, {"error": "id is invalid"}),
    ("GET", f"/api/v4/users/{HUGE}", None, 400, {"error": "id is invalid"}),
    ("GET", f"/api/v4/projects/{HUGE}", None, 404, {"message": "404 Project Not Found"}),
    ("GET", f"/api/v4/groups/{HUGE}", None, 404, {"message": "404 Group Not Found"}),
    ("GET", "/api/v4/projects/no%2Fsuch", None, 404, {"message": "404 Project Not Found"}),
    ("GET", "/api/v4/users?page=99999999999", None, 400, {"error": "page is invalid"}),
    ("GET", "/api/v4/users?search=a%00b", None, 400, {"error": "search is invalid"}),
    (
        "POST",
        "/api/v4/groups",
        {"name": "g", "path": "g", "parent_id": HUGE},
        400,
        {"error": "parent_id is invalid"},
    ),
    (
        "POST",
        "/api/v4/groups",
        {"name": "g", "path": "g", "visibility": "secret"},
        400,
        {"error": "visibility does not have a valid value"},
    ),
    ("POST", "/api/v4/groups", {"name": "g\x00", "path": "g"}, 400, {"error": "name is invalid"}),
    (
        "POST",
        "/api/v4/users",
        {"username": "uma", "email": "u@x\x00", "name": "U", "password": "12345678"},
        400,
        {"error": "email is invalid"},
    ),
    (
        "POST",
        "/api/v4/users",
        {"username": "uma", "email": "not-an-email", "name": "U", "password": "12345678"},
        400,
        {"message": {"email": ["is invalid"]}},
    ),
    (
        "POST",
        "/api/v4/users",
        {"username": "uma", "email": "u@x.org", "name": "U", "password": "12345678", "projects_limit": 2**40},
        400,
        {"error": "projects_limit is invalid"},
    ),
    (
        "POST",
        "/api/v4/projects",
        {"name": "p", "namespace_id": "abc"},
        400,
        {"error": "namespace_id is invalid"},
    ),
    (
        "POST",
        "/api/v4/broadcast_messages",
        {"message": "m", "starts_at": "tomorrow"},
        400,
        {"error": "starts_at is invalid"},
    ),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "expected"), CASES)
async def test_bad_input_is_a_clear_4xx(client, db, method, path, body, status, expected):
    _, token = await make_admin(db)
    resp = await client.request(method, path, json=body, headers={"PRIVATE-TOKEN": token})
    assert (resp.status, await resp.json()) == (status, expected)


async def test_transfer_needs_an_id_or_a_path(client, db):
    _, token = await make_admin(db)
    headers = {"PRIVATE-TOKEN": token}
    created = await client.post("/api/v4/projects", json={"name": "p"}, headers=headers)
    project_id = (await created.json())["id"]
    resp = await client.put(
        f"/api/v4/projects/{project_id}/transfer", json={"namespace": ["x"]}, headers=headers
    )
    assert (resp.status, await resp.json()) == (400, {"error": "namespace is invalid"})


async def test_broken_json_body(client, db):
    _, token = await make_admin(db)
    resp = await client.post(
        "/api/v4/groups",
        data=b"{not json",
        headers={"PRIVATE-TOKEN": token, "Content-Type": "application/json"},
    )
    assert resp.status == 400
    assert await resp.json() == {"message": "400 Bad request - There was a problem with the JSON"}


async def test_reclaimed_path_drops_redirects_under_it(db):
    """A new owner of an old path: redirects at and below it stop leading to the previous owner."""
    from service.db import routes as routes_db

    await db.execute("INSERT INTO redirect_routes (source_type, source_id, path) VALUES ('Project', 1, 'alice/p'), ('Project', 2, 'alice2/x'), ('Project', 3, 'alicex/p')")
    await routes_db.insert_route(db, "Namespace", 99, "alice", "alice")
    assert sorted(r["path"] for r in await db.fetch("SELECT path FROM redirect_routes")) == ["alice2/x", "alicex/p"]


async def test_nul_bytes_in_path_segments_are_4xx(client, db):
    from tests.admin_helpers import make_admin

    _, token = await make_admin(db)
    for url in ("/api/v4/projects/a%00b", "/api/v4/groups/a%00b"):
        resp = await client.get(url, headers={"PRIVATE-TOKEN": token})
        assert 400 <= resp.status < 500, (url, resp.status)


async def test_a_group_keeps_an_owner(client, db):
    """The sole owner can be neither deleted, demoted nor removed; with a second owner, all work."""
    from tests.admin_helpers import make_admin
    from tests.factories import add_member, make_group, make_user

    _, token = await make_admin(db)
    headers = {"PRIVATE-TOKEN": token}
    owner = await make_user(db)
    group = await make_group(db, "owned")
    await add_member(db, owner, group, 50)
    members = f"/api/v4/groups/{group['id']}/members/{owner['id']}"
    assert (await client.delete(f"/api/v4/users/{owner['id']}", headers=headers)).status == 409
    assert (await client.put(members, json={"access_level": 30}, headers=headers)).status == 403
    assert (await client.delete(members, headers=headers)).status == 403
    second = await make_user(db)
    await add_member(db, second, group, 50)
    assert (await client.put(members, json={"access_level": 30}, headers=headers)).status == 200
    assert (await client.delete(f"/api/v4/users/{owner['id']}", headers=headers)).status == 204


async def test_blank_names_are_the_models_errors(client, db):
    """A name of nothing or only spaces passes Grape's `requires` and fails the model's presence check."""
    _, token = await make_admin(db)
    headers = {"PRIVATE-TOKEN": token}
    project = await created(client, token, "/api/v4/projects", {"name": "blanks"})
    user = await created(
        client,
        token,
        "/api/v4/users",
        {"username": "blank", "email": "blank@example.com", "name": "B", "password": "correct-horse-1"},
    )
    agent = await created(client, token, f"/api/v4/projects/{project['id']}/cluster_agents", {"name": "prod"})
    for blank in ("", "   "):
        cases = [
            (f"/api/v4/projects/{project['id']}/protected_branches", {"name": blank}, {"message": {"name": ["can't be blank"]}}),
            (f"/api/v4/projects/{project['id']}/protected_tags", {"name": blank}, {"message": {"name": ["can't be blank"]}}),
            (
                f"/api/v4/users/{user['id']}/personal_access_tokens",
                {"name": blank, "scopes": ["api"]},
                {"message": "Name can't be blank"},
            ),
            (
                f"/api/v4/projects/{project['id']}/cluster_agents/{agent['id']}/tokens",
                {"name": blank},
                {"message": '400 Bad request - ["Name can\'t be blank"]'},
            ),
            (
                "/api/v4/users",
                {"username": "other", "email": "other@example.com", "name": blank, "password": "correct-horse-1"},
                {"message": {"name": ["can't be blank"]}},
            ),
        ]
        for path, body, expected in cases:
            resp = await client.post(path, json=body, headers=headers)
            assert (resp.status, await resp.json()) == (400, expected), path
    for table in ("protected_branches", "protected_tags", "personal_access_tokens", "cluster_agent_tokens"):
        assert await db.fetchval(f"SELECT count(*) FROM {table} WHERE name ~ '^ *$'") == 0, table


@pytest.mark.parametrize(
    "setting, value, message",
    [
        ("rsa_key_restriction", 1234, "must be forbidden, allowed, 1024, 2048, 3072, or 4096"),
        ("ed25519_key_restriction", 255, "must be forbidden, allowed, or 256"),
        ("ecdsa_key_restriction", 2048, "must be forbidden, allowed, 256, 384, or 521"),
        (
            "personal_access_token_prefix",
            "a b",
            "can contain only letters of the Base64 alphabet (RFC4648) with the addition of '@', ':' and '.'",
        ),
        ("max_personal_access_token_lifetime", 100000, "must be less than or equal to 365"),
    ],
)
async def test_settings_out_of_their_models_range_are_refused(client, db, setting, value, message):
    _, token = await make_admin(db)
    before = await (await client.get("/api/v4/application/settings", headers={"PRIVATE-TOKEN": token})).json()
    resp = await client.put("/api/v4/application/settings", json={setting: value}, headers={"PRIVATE-TOKEN": token})
    assert (resp.status, await resp.json()) == (400, {"message": {setting: [message]}})
    after = await (await client.get("/api/v4/application/settings", headers={"PRIVATE-TOKEN": token})).json()
    assert after[setting] == before[setting]


async def test_accepted_settings_at_their_limits(client, db):
    _, token = await make_admin(db)
    values = {
        "rsa_key_restriction": 4096,
        "dsa_key_restriction": -1,
        "ed25519_key_restriction": 0,
        "personal_access_token_prefix": "gl-Ab+/=@:.",
        "max_personal_access_token_lifetime": 365,
    }
    resp = await client.put("/api/v4/application/settings", json=values, headers={"PRIVATE-TOKEN": token})
    assert resp.status == 200
    body = await resp.json()
    assert {name: body[name] for name in values} == values


@pytest.mark.parametrize("path", ["/api/v4/groups", "/api/v4/projects", "/api/v4/users"])
async def test_a_search_takes_like_wildcards_literally(client, db, path):
    _, token = await make_admin(db)
    headers = {"PRIVATE-TOKEN": token}
    await created(client, token, "/api/v4/groups", {"name": "plain", "path": "plain"})
    await created(client, token, "/api/v4/projects", {"name": "plain"})
    await created(
        client,
        token,
        "/api/v4/users",
        {"username": "plainuser", "email": "plain@example.com", "name": "Plain", "password": "correct-horse-1"},
    )
    for term in ("%", "_", "\\"):
        resp = await client.get(path, params={"search": term}, headers=headers)
        assert (resp.status, await resp.json()) == (200, []), term
    resp = await client.get(path, params={"search": "lai"}, headers=headers)
    assert resp.status == 200 and len(await resp.json()) >= 1


@pytest.mark.parametrize(
    "method, path, body, expected",
    [
        ("PUT", "/api/v4/projects/999999", {"visibility": "bogus"}, {"error": "visibility does not have a valid value"}),
        ("PUT", "/api/v4/groups/999999", {"visibility": "bogus"}, {"error": "visibility does not have a valid value"}),
        ("POST", "/api/v4/projects/999999/hooks", {}, {"error": "url is missing"}),
        ("POST", "/api/v4/projects/999999/protected_branches", {}, {"error": "name is missing"}),
    ],
)
async def test_parameters_are_checked_before_the_record_is_looked_up(client, db, method, path, body, expected):
    """Grape validates the declared parameters before the endpoint runs: a bad parameter is 400
    even for a project or group that does not exist."""
    _, token = await make_admin(db)
    resp = await client.request(method, path, json=body, headers={"PRIVATE-TOKEN": token})
    assert (resp.status, await resp.json()) == (400, expected)
