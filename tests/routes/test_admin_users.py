"""Users, SSH keys and personal access tokens through python-gitlab and plain HTTP."""

from __future__ import annotations

import asyncio
import json
from datetime import date, timedelta

from service.domain.ssh_keys import parse_public_key
from tests.admin_helpers import call, error_of, gitlab_client, make_admin
from tests.factories import (
    make_personal_access_token,
    add_member,
    ed25519_public_key,
    make_group,
    make_user,
    rsa_public_key,
    set_application_settings,
)
from tests.helpers import shell_headers

ALICE = {"username": "alice", "email": "alice@example.com", "name": "Alice", "password": "correct-horse-1"}


def body_of(error) -> dict:
    return json.loads(error.response_body)


async def test_create_user_with_every_attribute(client, db):
    _, token = await make_admin(db)
    with gitlab_client(client, token) as gl:
        user = await call(
            lambda: gl.users.create(
                {
                    **ALICE,
                    "admin": True,
                    "can_create_group": False,
                    "skip_confirmation": True,
                    "external": True,
                    "projects_limit": 5,
                }
            )
        )
    assert (user.username, user.email, user.name) == ("alice", "alice@example.com", "Alice")
    assert (user.is_admin, user.can_create_group, user.external, user.projects_limit) == (
        True,
        False,
        True,
        5,
    )
    assert user.confirmed_at is not None
    row = await db.fetchrow("SELECT * FROM users WHERE id = $1", user.id)
    assert row["encrypted_password"] and "correct-horse-1" not in row["encrypted_password"]
    ns = await db.fetchrow("SELECT * FROM namespaces WHERE owner_id = $1", user.id)
    assert (ns["type"], ns["path"], ns["traversal_ids"]) == ("User", "alice", [ns["id"]])
    assert (
        await db.fetchval(
            "SELECT path FROM routes WHERE source_type = 'Namespace' AND source_id = $1", ns["id"]
        )
        == "alice"
    )


async def test_duplicate_and_invalid_users_are_refused_without_partial_writes(client, db):
    _, token = await make_admin(db)
    await make_group(db, path="platform")
    with gitlab_client(client, token) as gl:
        await call(lambda: gl.users.create(ALICE))
        users_before = await db.fetchval("SELECT count(*) FROM users")
        routes_before = await db.fetchval("SELECT count(*) FROM routes")
        taken_username = await error_of(lambda: gl.users.create({**ALICE, "email": "other@example.com"}))
        taken_email = await error_of(lambda: gl.users.create({**ALICE, "username": "alice2"}))
        group_path = await error_of(
            lambda: gl.users.create({**ALICE, "username": "platform", "email": "p@x.org"})
        )
        bad_name = await error_of(lambda: gl.users.create({**ALICE, "username": "-bad", "email": "b@x.org"}))
        short = await error_of(
            lambda: gl.users.create({**ALICE, "username": "z", "email": "z@x.org", "password": "x"})
        )
        no_password = await error_of(
            lambda: gl.users.create({"username": "y", "email": "y@x.org", "name": "Y"})
        )
        missing = await error_of(lambda: gl.users.create({"username": "q", "password": "12345678"}))
    assert (taken_username.response_code, body_of(taken_username)) == (
        409,
        {"message": "Username has already been taken"},
    )
    assert (taken_email.response_code, body_of(taken_email)) == (
        409,
        {"message": "Email has already been taken"},
    )
    assert (group_path.response_code, body_of(group_path)) == (
        400,
        {"message": {"username": ["has already been taken"]}},
    )
    assert bad_name.response_code == 400 and "username" in body_of(bad_name)["message"]
    assert body_of(short) == {"message": {"password": ["is too short (minimum is 8 characters)"]}}
    assert body_of(no_password) == {
        "error": "password, reset_password, force_random_password are missing, "
        "at least one parameter must be provided"
    }
    assert missing.response_code == 400 and "email is missing" in body_of(missing)["error"]
    assert await db.fetchval("SELECT count(*) FROM users") == users_before
    assert await db.fetchval("SELECT count(*) FROM routes") == routes_before


async def test_get_filter_and_paginate_users(client, db):
    _, token = await make_admin(db)
    for n in range(24):
        await make_user(db, username=f"dev{n:02}", name=f"Developer {n}")
    with gitlab_client(client, token) as gl:
        by_username = await call(lambda: gl.users.list(username="DEV07"))
        searched = await call(lambda: gl.users.list(search="Developer 1", get_all=True))
        everyone = await call(lambda: gl.users.list(get_all=True))
        missing = await error_of(lambda: gl.users.get(999999))
    assert [u.username for u in by_username] == ["dev07"]
    assert {u.username for u in searched} == {"dev01", *(f"dev{n}" for n in range(10, 20))}
    assert len(everyone) == 25
    assert (missing.response_code, body_of(missing)) == (404, {"message": "404 User Not Found"})

    resp = await client.get(
        "/api/v4/users", params={"per_page": "10", "page": "2"}, headers={"PRIVATE-TOKEN": token}
    )
    assert resp.status == 200
    assert len(await resp.json()) == 10
    h = resp.headers
    assert (h["X-Total"], h["X-Page"], h["X-Per-Page"], h["X-Total-Pages"]) == ("25", "2", "10", "3")
    assert (h["X-Next-Page"], h["X-Prev-Page"]) == ("3", "1")
    assert 'page=3&per_page=10>; rel="next"' in h["Link"] and 'rel="prev"' in h["Link"]
    assert 'page=1&per_page=10>; rel="first"' in h["Link"] and 'page=3&per_page=10>; rel="last"' in h["Link"]

    resp = await client.get("/api/v4/users", params={"per_page": "500"}, headers={"PRIVATE-TOKEN": token})
    assert resp.headers["X-Per-Page"] == "100" and resp.headers["X-Next-Page"] == ""
    resp = await client.get("/api/v4/users", params={"page": "x"}, headers={"PRIVATE-TOKEN": token})
    assert (resp.status, await resp.json()) == (400, {"error": "page is invalid"})


async def test_modify_user(client, db):
    _, token = await make_admin(db)
    with gitlab_client(client, token) as gl:
        user = await call(lambda: gl.users.create(ALICE))
        user.name = "Alice Liddell"
        user.can_create_group = False
        await call(user.save)
        found = await call(lambda: gl.users.get(user.id))
        other = await call(lambda: gl.users.create({**ALICE, "username": "bob", "email": "bob@example.com"}))
        other.email = "ALICE@example.com"
        clash = await error_of(other.save)
    assert (found.name, found.can_create_group) == ("Alice Liddell", False)
    assert (clash.response_code, body_of(clash)) == (409, {"message": "Email has already been taken"})


async def test_user_states_and_their_effect_on_git_access(client, db):
    admin, token = await make_admin(db)
    with gitlab_client(client, token) as gl:
        user = await call(lambda: gl.users.create(ALICE))
        key = await call(lambda: user.keys.create({"title": "k", "key": ed25519_public_key()}))
        assert await call(user.block) is True
        assert await call(user.block) is None  # already blocked: nothing to do
        blocked_state = (await call(lambda: gl.users.get(user.id))).state
        status = await _check_key(client, key.id)
        deactivate_blocked = await error_of(user.deactivate)
        assert await call(user.unblock) is True
        assert await call(user.deactivate) is True
        unblock_deactivated = await error_of(user.unblock)
        assert await call(user.activate) is True
        approve_active = await error_of(user.approve)
        self_block = await error_of(lambda: gl.http_post(f"/users/{admin['id']}/block"))
    assert blocked_state == "blocked"
    assert status == 401
    assert body_of(deactivate_blocked) == {
        "message": "403 Forbidden - A blocked user cannot be deactivated by the API"
    }
    assert body_of(unblock_deactivated) == {
        "message": "403 Forbidden - Deactivated users cannot be unblocked by the API"
    }
    # Users::ApproveService answers an active user's approval with :conflict
    assert (approve_active.response_code, body_of(approve_active)) == (
        409,
        {"message": "The user you are trying to approve is not pending approval"},
    )
    assert body_of(self_block) == {
        "message": "403 Forbidden - The API initiating user cannot be blocked by the API"
    }
    assert await _check_key(client, key.id) == 200

    await db.execute("UPDATE users SET state = 'blocked_pending_approval' WHERE id = $1", user.id)
    with gitlab_client(client, token) as gl:
        approved = await call(lambda: gl.http_post(f"/users/{user.id}/approve"))
    assert approved == {"message": "Success"}
    assert await db.fetchval("SELECT state FROM users WHERE id = $1", user.id) == "active"


async def _check_key(client, key_id: int) -> int:
    resp = await client.post(
        "/api/v4/internal/allowed",
        json={
            "action": "git-upload-pack",
            "key_id": str(key_id),
            "project": "nobody/nothing.git",
            "protocol": "ssh",
            "changes": "_any",
        },
        headers=shell_headers(),
    )
    # 404 = the key's user may use git (the project just does not exist); 401 = the user may not.
    return 200 if resp.status == 404 else resp.status


async def test_delete_user_removes_its_keys_namespace_and_routes(client, db):
    _, token = await make_admin(db)
    public_key = ed25519_public_key()
    with gitlab_client(client, token) as gl:
        user = await call(lambda: gl.users.create(ALICE))
        await call(lambda: user.keys.create({"title": "k", "key": public_key}))
        await call(lambda: gl.projects.create({"name": "notes", "namespace_id": user.namespace_id}))
        await call(lambda: gl.users.delete(user.id))
        missing = await error_of(lambda: gl.users.get(user.id))
    assert missing.response_code == 404
    assert await db.fetchval("SELECT count(*) FROM routes WHERE path LIKE 'alice%'") == 0
    assert await db.fetchval("SELECT count(*) FROM projects") == 0
    resp = await client.get(
        "/api/v4/internal/authorized_keys", params={"key": public_key.split()[1]}, headers=shell_headers()
    )
    assert resp.status == 404


async def test_ssh_keys_for_users_and_for_oneself(client, db):
    _, token = await make_admin(db)
    alice_key = ed25519_public_key("alice@laptop")
    own_key = ed25519_public_key("admin@desk")
    with gitlab_client(client, token) as gl:
        user = await call(lambda: gl.users.create(ALICE))
        key = await call(
            lambda: user.keys.create(
                {
                    "title": "laptop",
                    "key": alice_key,
                    "expires_at": "2099-01-31T00:00:00Z",
                    "usage_type": "auth",
                }
            )
        )
        listed = await call(lambda: user.keys.list(get_all=True))
        await call(gl.auth)
        mine = await call(lambda: gl.user.keys.create({"title": "desk", "key": own_key}))
        my_keys = await call(lambda: gl.user.keys.list(get_all=True))
        by_id = await call(lambda: gl.keys.get(key.id))
        parsed = parse_public_key(alice_key)
        by_sha = await call(lambda: gl.keys.get(fingerprint="SHA256:" + parsed.fingerprint_sha256))
        by_md5 = await call(lambda: gl.keys.get(fingerprint=parsed.fingerprint_md5))
        unknown = await error_of(lambda: gl.keys.get(fingerprint="SHA256:" + "A" * 43))
        bad_fingerprint = await error_of(lambda: gl.keys.get(fingerprint="nonsense"))
    assert (key.title, key.usage_type, key.expires_at) == ("laptop", "auth", "2099-01-31T00:00:00.000Z")
    assert [k.id for k in listed] == [key.id]
    assert [k.id for k in my_keys] == [mine.id]
    assert by_id.user["username"] == "alice"
    assert by_sha.id == by_md5.id == key.id
    assert (unknown.response_code, body_of(unknown)) == (404, {"message": "404 Key Not Found"})
    assert (bad_fingerprint.response_code, body_of(bad_fingerprint)) == (
        400,
        {"message": "Failed to return the key"},
    )

    # usage_type auth: sshd accepts it
    resp = await client.get(
        "/api/v4/internal/authorized_keys", params={"key": alice_key.split()[1]}, headers=shell_headers()
    )
    assert (await resp.json())["id"] == key.id


async def test_invalid_duplicate_and_restricted_keys(client, db):
    _, token = await make_admin(db)
    text = ed25519_public_key()
    await set_application_settings(db, rsa_key_restriction=3072)
    with gitlab_client(client, token) as gl:
        user = await call(lambda: gl.users.create(ALICE))
        await call(lambda: user.keys.create({"title": "k", "key": text}))
        duplicate = await error_of(lambda: user.keys.create({"title": "again", "key": text}))
        garbage = await error_of(lambda: user.keys.create({"title": "k", "key": "ssh-ed25519 not-base64!!"}))
        wrong_type = await error_of(lambda: user.keys.create({"title": "k", "key": "ssh-foo AAAA"}))
        small_rsa = await error_of(lambda: user.keys.create({"title": "k", "key": rsa_public_key(2048)}))
        # python-gitlab checks required attributes itself, so this one goes over plain HTTP
        no_title = await error_of(lambda: gl.http_post(f"/users/{user.id}/keys", post_data={"key": "x"}))
        bad_usage = await error_of(
            lambda: user.keys.create({"title": "k", "key": ed25519_public_key(), "usage_type": "everything"})
        )
    assert (duplicate.response_code, body_of(duplicate)) == (
        400,
        {"message": {"fingerprint_sha256": ["has already been taken"]}},
    )
    assert garbage.response_code == 400 and body_of(garbage)["message"]["key"] == ["is invalid"]
    assert body_of(wrong_type)["message"]["key"] == ["is invalid"]
    assert body_of(small_rsa) == {"message": {"key": ["must be at least 3072 bits"]}}
    assert body_of(no_title) == {"error": "title is missing"}
    assert body_of(bad_usage) == {"error": "usage_type does not have a valid value"}
    assert await db.fetchval("SELECT count(*) FROM keys") == 1


async def test_personal_access_tokens(client, db):
    admin, admin_token = await make_admin(db)
    in_a_month = (date.today() + timedelta(days=30)).isoformat()
    with gitlab_client(client, admin_token) as gl:
        user = await call(lambda: gl.users.create(ALICE))
        created = await call(
            lambda: user.personal_access_tokens.create(
                {"name": "ci", "scopes": ["api", "read_repository"], "expires_at": in_a_month}
            )
        )
        bad_scope = await error_of(
            lambda: user.personal_access_tokens.create({"name": "x", "scopes": ["root"]})
        )
        too_far = await error_of(
            lambda: user.personal_access_tokens.create(
                {"name": "x", "scopes": ["api"], "expires_at": "2999-01-01"}
            )
        )
        of_user = await call(lambda: gl.personal_access_tokens.list(user_id=user.id, get_all=True))
        every = await call(lambda: gl.personal_access_tokens.list(get_all=True))
    assert created.token.startswith("glpat-")
    assert (created.name, created.scopes, created.user_id, created.active) == (
        "ci",
        ["api", "read_repository"],
        user.id,
        True,
    )
    assert created.expires_at == in_a_month
    assert body_of(bad_scope) == {"error": "scopes does not have a valid value"}
    assert too_far.response_code == 400 and body_of(too_far)["message"].startswith(
        "Expires at must be before "
    )
    assert [t.id for t in of_user] == [created.id]
    assert {t.user_id for t in every} == {admin["id"], user.id}
    stored = await db.fetchrow("SELECT * FROM personal_access_tokens WHERE id = $1", created.id)
    assert created.token not in [str(v) for v in stored.values()]

    # The new token works, sees only its owner's tokens, and can be revoked.
    with gitlab_client(client, created.token) as as_alice:
        me = await call(lambda: as_alice.http_get("/user"))
        mine = await call(lambda: as_alice.http_get("/personal_access_tokens/self"))
        visible = await call(lambda: as_alice.personal_access_tokens.list(get_all=True))
        hidden = await error_of(lambda: as_alice.personal_access_tokens.get(of_user[0].id - 1))
    assert me["username"] == "alice"
    assert mine["id"] == created.id
    assert [t.id for t in visible] == [created.id]
    assert hidden.response_code == 404

    with gitlab_client(client, admin_token) as gl:
        await call(lambda: gl.personal_access_tokens.delete(created.id))
        revoked = await call(lambda: gl.personal_access_tokens.get(created.id))
    assert (revoked.revoked, revoked.active) == (True, False)
    resp = await client.get("/api/v4/user", headers={"PRIVATE-TOKEN": created.token})
    assert resp.status == 401
    assert (await resp.json())["error"] == "invalid_token"


async def test_deleting_one_owner_while_demoting_the_other_never_leaves_a_group_without_one(client, db):
    """The deletion takes the owner locks of the user's groups, as a demotion takes its group's."""
    _, token = await make_admin(db)
    headers = {"PRIVATE-TOKEN": token}
    for attempt in range(10):
        first, second = await make_user(db), await make_user(db)
        group = await make_group(db, f"owned{attempt}")
        await add_member(db, first, group, 50)
        await add_member(db, second, group, 50)
        deleted, demoted = await asyncio.gather(
            client.delete(f"/api/v4/users/{first['id']}", headers=headers),
            client.put(f"/api/v4/groups/{group['id']}/members/{second['id']}", json={"access_level": 30}, headers=headers),
        )
        owners = await db.fetchval(
            "SELECT count(*) FROM members WHERE source_type = 'Namespace' AND source_id = $1 AND access_level = 50",
            group["id"],
        )
        assert owners >= 1, (deleted.status, demoted.status)
        # whichever came first won; the other was refused (the last owner cannot be demoted)
        assert (deleted.status, demoted.status) in ((204, 403), (409, 200)), (deleted.status, demoted.status)


async def test_a_pasted_key_is_kept_as_gitlab_sanitises_it(client, db):
    """Gitlab::SSHPublicKey.sanitize: base64 wrapped over lines is joined, and of the comment only
    its first word is kept, so no stored key holds a second line."""
    _, token = await make_admin(db)
    user = await make_user(db)
    headers = {"PRIVATE-TOKEN": token}
    key_type, blob, _ = ed25519_public_key().split()
    second = ed25519_public_key("x")
    cases = [
        (f"{key_type} {blob} c\n{second}", f"{key_type} {blob} c"),  # a second key line is dropped
        (f"{key_type} {blob[:30]}\n{blob[30:]} laptop", f"{key_type} {blob} laptop"),  # wrapped
        (f"  {key_type} {blob} my old laptop\r\n", f"{key_type} {blob} my"),
        (f"{key_type}\t{blob}", f"{key_type} {blob}"),
    ]
    for number, (given, kept) in enumerate(cases):
        if number:
            await db.execute("DELETE FROM keys WHERE user_id = $1", user["id"])
        resp = await client.post(f"/api/v4/users/{user['id']}/keys", json={"title": "k", "key": given}, headers=headers)
        body = await resp.json()
        assert (resp.status, body["key"]) == (201, kept), given
        assert await db.fetchval("SELECT key FROM keys WHERE id = $1", body["id"]) == kept


# lib/api/entities: UserBasic < User < UserPublic < UserWithAdmin
BASIC = {"id", "username", "name", "state", "locked", "avatar_url", "web_url"}
USER = BASIC | {"created_at", "bio", "public_email", "bot"}
PUBLIC = USER | {
    "confirmed_at",
    "last_activity_on",
    "email",
    "projects_limit",
    "identities",
    "can_create_group",
    "two_factor_enabled",
    "external",
}


async def test_each_caller_sees_the_user_entity_gitlab_gives_it(client, db):
    admin, admin_token = await make_admin(db)
    user = await make_user(db, email="me@example.com")
    user_token = await make_personal_access_token(db, user, scopes=["api"])
    with gitlab_client(client, user_token) as gl:
        await call(gl.auth)
        me = gl.user.asdict()
        listed = [u.asdict() for u in await call(lambda: gl.users.list(get_all=True))]
        other = (await call(lambda: gl.users.get(admin["id"]))).asdict()
        myself = (await call(lambda: gl.users.get(user["id"]))).asdict()
    with gitlab_client(client, admin_token) as gl:
        as_admin = (await call(lambda: gl.users.get(user["id"]))).asdict()
        admin_list = [u.asdict() for u in await call(lambda: gl.users.list(get_all=True))]
    assert set(me) == PUBLIC and me["email"] == "me@example.com"  # GET /user: UserPublic
    assert all(set(u) == BASIC for u in listed) and len(listed) == 2  # GET /users: UserBasic
    assert set(other) == USER and set(myself) == USER  # GET /users/:id: Entities::User
    assert "email" not in other and "is_admin" not in other
    assert set(as_admin) >= PUBLIC | {"is_admin"} and as_admin["email"] == "me@example.com"
    assert all(set(u) >= PUBLIC | {"is_admin"} for u in admin_list)


async def test_a_blank_name_is_refused_on_update(client, db):
    _, token = await make_admin(db)
    with gitlab_client(client, token) as gl:
        user = await call(lambda: gl.users.create(ALICE))
        spaces = await error_of(lambda: gl.users.update(user.id, {"name": "   "}))
        empty = await error_of(lambda: gl.users.update(user.id, {"name": ""}))
    for error in (spaces, empty):
        assert (error.response_code, body_of(error)) == (400, {"message": {"name": ["can't be blank"]}})
    assert await db.fetchval("SELECT name FROM users WHERE id = $1", user.id) == "Alice"
    assert await db.fetchval("SELECT name FROM routes WHERE path = 'alice'") == "Alice"


async def test_reserved_top_level_names_are_refused_for_users_and_root_groups(client, db):
    _, token = await make_admin(db)
    with gitlab_client(client, token) as gl:
        help_user = await error_of(lambda: gl.users.create({**ALICE, "username": "help"}))
        api_group = await error_of(lambda: gl.groups.create({"name": "API", "path": "api"}))
        top = await call(lambda: gl.groups.create({"name": "Top", "path": "top"}))
        # a subgroup is checked against GitLab's smaller list: "api" is fine below a group, "edit" is not
        api_sub = await call(lambda: gl.groups.create({"name": "API", "path": "api", "parent_id": top.id}))
        edit_sub = await error_of(lambda: gl.groups.create({"name": "Edit", "path": "edit", "parent_id": top.id}))
        alice = await call(lambda: gl.users.create(ALICE))
        renamed_user = await error_of(lambda: gl.users.update(alice.id, {"username": "Projects"}))
        renamed_group = await error_of(lambda: gl.groups.update(top.id, {"path": "explore"}))
    assert (help_user.response_code, body_of(help_user)) == (
        400,
        {"message": {"username": ["help is a reserved name"]}},
    )
    assert (api_group.response_code, body_of(api_group)) == (400, {"message": {"path": ["api is a reserved name"]}})
    assert api_sub.full_path == "top/api"
    assert body_of(edit_sub) == {"message": {"path": ["edit is a reserved name"]}}
    assert body_of(renamed_user) == {"message": {"username": ["Projects is a reserved name"]}}
    assert body_of(renamed_group) == {"message": {"path": ["explore is a reserved name"]}}
    assert await db.fetchval("SELECT count(*) FROM users WHERE username IN ('help', 'Projects')") == 0
    assert await db.fetchval("SELECT count(*) FROM routes WHERE path IN ('api', 'help', 'explore', 'top/edit')") == 0


async def test_hard_delete_removes_the_groups_the_user_alone_owns(client, db):
    admin, token = await make_admin(db)
    owner = await make_user(db, username="owner")
    owner_token = await make_personal_access_token(db, owner, scopes=["api"])
    await db.execute("UPDATE users SET admin = true WHERE id = $1", owner["id"])  # to create groups as owner
    with gitlab_client(client, owner_token) as gl:
        alone = await call(lambda: gl.groups.create({"name": "Alone", "path": "alone"}))
        await call(lambda: gl.groups.create({"name": "Below", "path": "below", "parent_id": alone.id}))
        await call(lambda: gl.projects.create({"name": "app", "namespace_id": alone.id}))
        shared = await call(lambda: gl.groups.create({"name": "Shared", "path": "shared"}))
        await call(lambda: shared.members.create({"user_id": admin["id"], "access_level": 50}))
        # its only direct owner is the user, but an owner of the group above counts (Users::DestroyService)
        await call(lambda: gl.groups.create({"name": "Team", "path": "team", "parent_id": shared.id}))
    with gitlab_client(client, token) as gl:
        kept = await error_of(lambda: gl.users.delete(owner["id"]))
        assert (kept.response_code, body_of(kept)) == (
            409,
            {"message": "User cannot be removed while is the sole-owner of a group"},
        )
        await call(lambda: gl.users.delete(owner["id"], hard_delete=True))
        gone = await error_of(lambda: gl.groups.get("alone"))
        still = await call(lambda: gl.groups.get("shared"))
        inherited = await call(lambda: gl.groups.get("shared/team"))
    assert gone.response_code == 404 and still.id == shared.id and inherited.parent_id == shared.id
    assert await db.fetchval("SELECT count(*) FROM users WHERE id = $1", owner["id"]) == 0
    assert await db.fetchval("SELECT count(*) FROM namespaces WHERE type = 'Group'") == 2
    assert await db.fetchval("SELECT count(*) FROM projects") == 0
    assert await db.fetchval("SELECT count(*) FROM routes WHERE path LIKE 'alone%'") == 0
    assert await db.fetchval("SELECT count(*) FROM members WHERE source_id = $1", alone.id) == 0


async def test_users_are_filtered_by_admin_and_external(client, db):
    admin, token = await make_admin(db, username="root")
    outsider = await make_user(db, username="contractor", external=True)
    plain = await make_user(db, username="plain")
    plain_token = await make_personal_access_token(db, plain, scopes=["api"])
    with gitlab_client(client, token) as gl:
        admins = await call(lambda: gl.users.list(admins=True, get_all=True))
        external = await call(lambda: gl.users.list(external=True, get_all=True))
        internal = await call(lambda: gl.users.list(exclude_external=True, get_all=True))
    with gitlab_client(client, plain_token) as gl:
        # UsersFinder#by_admins: the filter counts for administrators only
        admins_for_plain = await call(lambda: gl.users.list(admins=True, get_all=True))
        # who is external is an administrator's to ask (users.rb: authenticated_as_admin!)
        refused = await error_of(lambda: gl.users.list(external=True, get_all=True))
        assert (refused.response_code, str(refused.error_message)) == (403, "403 Forbidden")
    assert [u.id for u in admins] == [admin["id"]]
    assert [u.id for u in external] == [outsider["id"]]
    assert {u.id for u in internal} == {admin["id"], plain["id"]}
    assert len(admins_for_plain) == 3
