"""POST /internal/allowed from GitLab Shell (changes "_any"): actors, projects, policies, payload."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import orjson
import pytest

from service.domain.repository import hashed_disk_path
from tests.factories import (
    add_member,
    enable_deploy_key,
    make_group,
    make_key,
    make_project,
    make_user,
    rsa_public_key,
    set_application_settings,
)
from tests.helpers import shell_headers

ALLOWED = "/api/v4/internal/allowed"
PROJECT_NOT_FOUND = "The project you were looking for could not be found or you don't have permission to view it."


async def allowed(client, **body):
    body = {"action": "git-upload-pack", "changes": "_any", "protocol": "ssh", **body}
    resp = await client.post(ALLOWED, json=body, headers=shell_headers())
    return resp.status, await resp.json()


async def denied(client, status, message, **body):
    got_status, got = await allowed(client, **body)
    assert (got_status, got) == (status, {"status": False, "message": message})


async def test_download_payload_matches_gitlab_shell_contract(client, db):
    user = await make_user(db, username="root")
    key, _ = await make_key(db, user)
    group = await make_group(db, "gnuwget")
    project = await make_project(db, group, path="wget2", visibility_level=20)
    status, body = await allowed(client, project="gnuwget/wget2.git", key_id=str(key["id"]))
    assert status == 200
    relative = hashed_disk_path(project["id"]) + ".git"
    assert body == {
        "status": True,
        "gl_repository": f"project-{project['id']}",
        "gl_project_path": "gnuwget/wget2",
        "gl_project_id": project["id"],
        "gl_root_namespace_id": group["id"],
        "gl_id": f"user-{user['id']}",
        "gl_username": "root",
        "git_config_options": ["uploadpack.allowFilter=true", "uploadpack.allowAnySHA1InWant=true"],
        "gitaly": {
            "repository": {
                "storage_name": "default",
                "relative_path": relative,
                "git_object_directory": "",
                "git_alternate_object_directories": [],
                "gl_repository": f"project-{project['id']}",
                "gl_project_path": "gnuwget/wget2",
            },
            "address": "unix:/tmp/gitaly-test.socket",
            "token": None,
            "features": {},
        },
        "gl_console_messages": [],
        "need_audit": False,
        "gl_key_type": "key",
        "gl_key_id": key["id"],
    }
    assert relative.startswith("@hashed/") and len(relative.split("/")[-1]) == 64 + 4


@pytest.mark.parametrize("path", ["/Grp/Proj.git", "grp/proj", "GRP/PROJ.git", "grp/proj.git"])
async def test_repository_path_is_normalised(client, db, path):
    user = await make_user(db)
    key, _ = await make_key(db, user)
    group = await make_group(db, "grp")
    project = await make_project(db, group, path="proj", visibility_level=20)
    status, body = await allowed(client, project=path, key_id=key["id"])  # key_id as a number, too
    assert status == 200, body
    assert body["gl_repository"] == f"project-{project['id']}"


async def test_gl_repository_wins_over_project_path(client, db):
    user = await make_user(db)
    first = await make_project(db, owner=user, path="one")
    second = await make_project(db, owner=user, path="two")
    status, body = await allowed(
        client, gl_repository=f"project-{second['id']}", project=f"/var/opt/gitlab/{first['id']}.git", user_id=str(user["id"])
    )
    assert status == 200
    assert body["gl_project_path"] == second["full_path"]


async def test_unknown_project_namespace_and_invalid_gl_repository(client, db):
    user = await make_user(db)
    await denied(client, 404, PROJECT_NOT_FOUND, project="nobody/nothing.git", user_id=user["id"])
    await denied(client, 404, "The namespace you were looking for could not be found.", project="lonely.git", user_id=user["id"])
    resp = await client.post(ALLOWED, json={"gl_repository": "bogus-1", "action": "git-upload-pack"}, headers=shell_headers())
    assert resp.status == 400
    assert (await resp.json())["message"].startswith("400 Bad request - Invalid GL Repository")


async def test_renamed_project_is_found_and_the_move_is_announced(client, db, redis):
    user = await make_user(db)
    project = await make_project(db, owner=user, path="new-name")
    await db.execute(
        "INSERT INTO redirect_routes (source_type, source_id, path) VALUES ('Project', $1, $2)",
        project["id"],
        f"{user['username']}/old-name",
    )
    status, body = await allowed(client, project=f"{user['username']}/Old-Name.git", user_id=user["id"])
    assert status == 200
    assert body["gl_project_path"] == project["full_path"]
    message = await redis.get(f"redirect_namespace:{{project-{project['id']}}}:{user['id']}")
    assert message == (
        f"Project '{user['username']}/old-name' was moved to '{project['full_path']}'.\n\n"
        "Please update your Git remote:\n\n"
        f"  git remote set-url origin git@gitlab.test:{project['full_path']}.git\n"
    )
    assert 0 < await redis.ttl(f"redirect_namespace:{{project-{project['id']}}}:{user['id']}") <= 300


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"state": "blocked"}, "Your account has been blocked."),
        ({"state": "ldap_blocked"}, "Your account has been blocked."),
        ({"state": "blocked_pending_approval"}, "Your account is pending approval from your administrator and hence blocked."),
        (
            {"state": "deactivated"},
            "Your account has been deactivated by your administrator. Please log back in from a web browser to "
            "reactivate your account at http://gitlab.test",
        ),
        ({"user_type": "ghost"}, "This action cannot be performed by internal users"),
        ({"user_type": "support_bot", "state": "blocked"}, "This action cannot be performed by internal users"),
        (
            {"password_expires_at": datetime.now(timezone.utc) - timedelta(days=1)},
            "Your password expired. Please access GitLab from a web browser to update your password.",
        ),
    ],
)
async def test_user_states_are_refused_with_gitlab_messages(client, db, changes, message):
    user = await make_user(db, **changes)
    key, _ = await make_key(db, user)
    project = await make_project(db, owner=user, visibility_level=20)
    await denied(client, 401, message, project=project["full_path"], key_id=str(key["id"]))


async def test_terms_and_email_confirmation_when_the_instance_requires_them(client, db):
    user = await make_user(db, confirmed_at=None)
    project = await make_project(db, owner=user, visibility_level=20)
    assert (await allowed(client, project=project["full_path"], user_id=user["id"]))[0] == 200
    await set_application_settings(db, email_confirmation_setting="hard")
    status, body = await allowed(client, project=project["full_path"], user_id=user["id"])
    assert status == 401 and body["message"].startswith("Your primary email address is not confirmed.")
    await set_application_settings(db, email_confirmation_setting="off", enforce_terms=True)
    status, body = await allowed(client, project=project["full_path"], user_id=user["id"])
    assert status == 401
    assert body["message"].startswith(f"You (@{user['username']}) must accept the Terms of Service")


async def test_expired_and_soon_expiring_keys(client, db):
    user = await make_user(db)
    project = await make_project(db, owner=user)
    expired, _ = await make_key(db, user, expires_at=datetime.now(timezone.utc) - timedelta(minutes=1))
    await denied(client, 401, "Your SSH key has expired.", project=project["full_path"], key_id=str(expired["id"]))
    soon, _ = await make_key(db, user, expires_at=datetime.now(timezone.utc) + timedelta(days=3))
    status, body = await allowed(client, project=project["full_path"], key_id=str(soon["id"]))
    assert status == 200
    assert body["gl_console_messages"] == ["INFO: Your SSH key is expiring soon. Please generate a new key."]
    later, _ = await make_key(db, user, expires_at=datetime.now(timezone.utc) + timedelta(days=30))
    assert (await allowed(client, project=project["full_path"], key_id=str(later["id"])))[1]["gl_console_messages"] == []


async def test_signing_only_keys_are_not_actors(client, db):
    user = await make_user(db)
    project = await make_project(db, owner=user)  # private
    key, _ = await make_key(db, user, usage_type="signing")
    await denied(client, 404, PROJECT_NOT_FOUND, project=project["full_path"], key_id=str(key["id"]))


async def test_key_restrictions(client, db):
    user = await make_user(db)
    project = await make_project(db, owner=user)
    small, _ = await make_key(db, user, text=rsa_public_key(1024))
    await set_application_settings(db, rsa_key_restriction=2048)
    await denied(client, 401, "Your SSH key must be at least 2048 bits.", project=project["full_path"], key_id=str(small["id"]))
    await set_application_settings(db, rsa_key_restriction=-1)
    await denied(
        client,
        401,
        "Your SSH key type is forbidden. Must be DSA, ECDSA, ED25519, ECDSA_SK, or ED25519_SK.",
        project=project["full_path"],
        key_id=str(small["id"]),
    )


async def test_visibility_and_membership(client, db):
    owner = await make_user(db)
    group = await make_group(db)
    private = await make_project(db, group, visibility_level=0)
    internal = await make_project(db, group, visibility_level=10)
    public = await make_project(db, group, visibility_level=20)
    stranger = await make_user(db)
    external = await make_user(db, external=True)
    guest = await make_user(db)
    reporter = await make_user(db)
    await add_member(db, guest, private, 10)
    await add_member(db, reporter, group, 20)
    await add_member(db, owner, group, 50)

    await denied(client, 404, PROJECT_NOT_FOUND, project=private["full_path"], user_id=stranger["id"])
    await denied(client, 401, "You are not allowed to download code from this project.", project=private["full_path"], user_id=guest["id"])
    assert (await allowed(client, project=private["full_path"], user_id=reporter["id"]))[0] == 200  # inherited
    assert (await allowed(client, project=internal["full_path"], user_id=stranger["id"]))[0] == 200
    await denied(client, 404, PROJECT_NOT_FOUND, project=internal["full_path"], user_id=external["id"])
    assert (await allowed(client, project=public["full_path"], user_id=external["id"]))[0] == 200
    # an unknown key is an anonymous actor: public downloads still work, with an empty gl_id
    status, body = await allowed(client, project=public["full_path"], key_id="999999")
    assert status == 200 and body["gl_id"] == "" and "gl_username" not in body and "gl_key_id" not in body
    await denied(client, 404, PROJECT_NOT_FOUND, project=internal["full_path"], key_id="999999")


async def test_expired_or_requested_memberships_give_no_access(client, db):
    user = await make_user(db)
    other = await make_user(db)
    project = await make_project(db, owner=other)
    await add_member(db, user, project, 30, expires_at=date.today() - timedelta(days=1))
    await denied(client, 404, PROJECT_NOT_FOUND, project=project["full_path"], user_id=user["id"])


async def test_admins_reach_every_project(client, db):
    admin = await make_user(db, admin=True)
    other = await make_user(db)
    project = await make_project(db, owner=other)
    assert (await allowed(client, project=project["full_path"], username=admin["username"]))[0] == 200
    assert (await allowed(client, project=project["full_path"], username=admin["username"], action="git-receive-pack"))[0] == 200


async def test_repository_feature_disabled_and_missing_repository(client, db):
    user = await make_user(db)
    disabled = await make_project(db, owner=user, repository_access_level=0)
    await denied(client, 401, "You are not allowed to download code from this project.", project=disabled["full_path"], user_id=user["id"])
    missing = await make_project(db, owner=user, repository_exists=False)
    await denied(client, 404, "A repository for this project does not exist yet.", project=missing["full_path"], user_id=user["id"])


async def test_push_with_any_changes(client, db):
    owner = await make_user(db)
    project = await make_project(db, owner=owner)
    developer = await make_user(db)
    reporter = await make_user(db)
    await add_member(db, developer, project, 30)
    await add_member(db, reporter, project, 20)
    push = {"action": "git-receive-pack", "project": project["full_path"]}
    assert (await allowed(client, **push, user_id=developer["id"]))[0] == 200
    await denied(client, 401, "You are not allowed to push code to this project.", **push, user_id=reporter["id"])
    public = await make_project(db, owner=owner, visibility_level=20)
    await denied(
        client, 401, "You are not allowed to upload code for this project.",
        action="git-receive-pack", project=public["full_path"], key_id="424242",
    )
    await db.execute("UPDATE projects SET archived = true WHERE id = $1", project["id"])
    await denied(client, 401, "You can't push code to an archived project.", **push, user_id=developer["id"])
    await db.execute("UPDATE projects SET repository_read_only = true WHERE id = $1", project["id"])
    await denied(client, 401, "The repository is temporarily read-only. Please try again later.", **push, user_id=developer["id"])


async def test_deploy_keys(client, db):
    creator = await make_user(db, username="deployer")
    project = await make_project(db, owner=creator)
    other = await make_project(db, owner=creator)
    read_only, _ = await make_key(db, creator, deploy_key=True)
    writer, _ = await make_key(db, creator, deploy_key=True)
    await enable_deploy_key(db, read_only, project, can_push=False)
    await enable_deploy_key(db, writer, project, can_push=True)

    status, body = await allowed(client, project=project["full_path"], key_id=str(read_only["id"]))
    assert status == 200
    assert body["gl_key_type"] == "deploy_key" and body["gl_key_id"] == read_only["id"]
    assert body["gl_id"] == f"user-{creator['id']}" and body["gl_username"] == "deployer"
    await denied(client, 404, PROJECT_NOT_FOUND, project=other["full_path"], key_id=str(read_only["id"]))
    push = {"action": "git-receive-pack", "project": project["full_path"]}
    await denied(client, 401, "This deploy key does not have write access to this project.", **push, key_id=str(read_only["id"]))
    assert (await allowed(client, **push, key_id=str(writer["id"])))[0] == 200
    # GitLab Shell's "_any" asks about the key alone (check_change_access!: a deploy key passes); a
    # blocked creator stops the key's real changes (test_allowed_push.py), not this
    await db.execute("UPDATE users SET state = 'blocked' WHERE id = $1", creator["id"])
    assert (await allowed(client, **push, key_id=str(writer["id"])))[0] == 200


async def test_a_deploy_key_reads_public_projects_it_is_not_enabled_on(client, db):
    """GitAccess#can_read_project? ends in `|| Guest.can?(:read_project)` and the download check in
    guest_can_download?: a key may clone what anybody may clone, and push only where it is enabled."""
    creator = await make_user(db)
    public = await make_project(db, owner=creator, visibility_level=20)
    private = await make_project(db, owner=creator)
    key, _ = await make_key(db, creator, deploy_key=True)
    assert (await allowed(client, project=public["full_path"], key_id=str(key["id"])))[0] == 200
    await denied(
        client, 401, "This deploy key does not have write access to this project.",
        action="git-receive-pack", project=public["full_path"], key_id=str(key["id"]),
    )
    await denied(client, 404, PROJECT_NOT_FOUND, project=private["full_path"], key_id=str(key["id"]))
    await db.execute("UPDATE projects SET repository_access_level = 10 WHERE id = $1", public["id"])
    await denied(
        client, 401, "You are not allowed to download code from this project.",
        project=public["full_path"], key_id=str(key["id"]),
    )


async def test_protocol_setting_and_unknown_commands(client, db):
    user = await make_user(db)
    project = await make_project(db, owner=user)
    await set_application_settings(db, enabled_git_access_protocol="ssh")
    await denied(client, 401, "Git access over HTTP is not allowed", project=project["full_path"], user_id=user["id"], protocol="http")
    assert (await allowed(client, project=project["full_path"], user_id=user["id"], protocol="web"))[0] == 200
    await denied(client, 401, "The command you're trying to execute is not allowed.", project=project["full_path"], user_id=user["id"], action="git-evil")
    await denied(client, 401, "The command you're trying to execute is not allowed.", project=project["full_path"], user_id=user["id"], action=None)


async def test_git_config_options_follow_receive_max_input_size(client, db):
    user = await make_user(db)
    project = await make_project(db, owner=user)
    await set_application_settings(db, receive_max_input_size=10)
    _, body = await allowed(client, project=project["full_path"], user_id=user["id"])
    assert body["git_config_options"][-1] == "receive.maxInputSize=10485760"


async def test_wiki_repository(client, db):
    user = await make_user(db)
    project = await make_project(db, owner=user, visibility_level=20)
    status, body = await allowed(client, project=project["full_path"] + ".wiki.git", user_id=user["id"])
    assert status == 200
    assert body["gl_repository"] == f"wiki-{project['id']}"
    assert body["gl_project_path"] == project["full_path"] + ".wiki"
    assert body["gitaly"]["repository"]["relative_path"].endswith(".wiki.git")
    stranger = await make_user(db)
    await denied(
        client, 401, "You are not allowed to write to this project's wiki.",
        project=project["full_path"] + ".wiki.git", user_id=stranger["id"], action="git-receive-pack",
    )


async def test_push_to_a_new_path_creates_a_private_project(client, db, redis):
    user = await make_user(db)
    path = f"{user['username']}/brand-new"
    status, body = await allowed(client, action="git-receive-pack", project=f"{path}.git", user_id=user["id"])
    assert status == 200, body
    project = await db.fetchrow("SELECT p.* FROM projects p JOIN routes r ON r.source_id = p.id AND r.source_type = 'Project' WHERE r.path = $1", path)
    assert project["visibility_level"] == 0 and project["creator_id"] == user["id"]
    assert body["gl_repository"] == f"project-{project['id']}"
    message = await redis.get(f"project_created:{{project-{project['id']}}}:{user['id']}")
    assert f"The private project {path} was successfully created." in message
    assert f"git remote add origin git@gitlab.test:{path}.git" in message

    # invalid path: 422, nothing created
    before = await db.fetchval("SELECT count(*) FROM projects")
    await denied(
        client, 422,
        "Could not create project: Path can contain only letters, digits, '_', '-' and '.'. "
        "Cannot start with '-', end in '.git' or end in '.atom'",
        action="git-receive-pack", project=f"{user['username']}/-bad", user_id=user["id"],
    )
    assert await db.fetchval("SELECT count(*) FROM projects") == before
    # not in someone else's namespace, and never for downloads or real change lists
    other = await make_user(db)
    await denied(client, 404, PROJECT_NOT_FOUND, action="git-receive-pack", project=f"{other['username']}/x", user_id=user["id"])
    await denied(client, 404, PROJECT_NOT_FOUND, project=f"{user['username']}/fresh", user_id=user["id"])


async def test_an_auto_created_project_is_routed_under_its_full_name(client, db):
    """routes.name is GitLab's full name (Route#name = Project#full_name), "<namespace full name> /
    <project name>", the same as for a project the admin API creates: one writer of projects."""
    user = await make_user(db, name="Alice Liddell")
    group = await make_group(db, "wonderland")
    await add_member(db, user, group, 40)
    for path, full_name in (
        (f"{user['username']}/looking-glass", "Alice Liddell / looking-glass"),
        ("wonderland/rabbit-hole", "wonderland / rabbit-hole"),
    ):
        status, body = await allowed(client, action="git-receive-pack", project=f"{path}.git", user_id=user["id"])
        assert status == 200, body
        assert await db.fetchval("SELECT name FROM routes WHERE source_type = 'Project' AND path = $1", path) == full_name


async def test_project_creation_in_groups_follows_their_project_creation_level(client, db):
    """GroupPolicy's create_projects: the group's level, else the instance's default_project_creation
    (GitLab's default: developers and maintainers); "no one" stops admins too."""
    group = await make_group(db, "team")
    reporter, developer, maintainer, owner = [await make_user(db) for _ in range(4)]
    admin = await make_user(db, admin=True)
    for user, level in ((reporter, 20), (developer, 30), (maintainer, 40), (owner, 50)):
        await add_member(db, user, group, level)
    created = iter(range(1000))

    async def may_create(user) -> bool:
        path = f"team/new{next(created)}"
        status, body = await allowed(client, action="git-receive-pack", project=path, user_id=user["id"])
        assert status in (200, 404), body
        return status == 200

    everyone = (reporter, developer, maintainer, owner, admin)
    assert [await may_create(u) for u in everyone] == [False, True, True, True, True]
    for level, expected in (
        (0, [False, False, False, False, False]),  # no one
        (1, [False, False, True, True, True]),  # maintainers
        (3, [False, False, False, False, True]),  # administrators
        (4, [False, False, False, True, True]),  # owners
    ):
        await db.execute("UPDATE namespaces SET project_creation_level = $1 WHERE id = $2", level, group["id"])
        assert [await may_create(u) for u in everyone] == expected, level
    await db.execute("UPDATE namespaces SET project_creation_level = NULL WHERE id = $1", group["id"])
    await set_application_settings(db, default_project_creation=1)
    assert [await may_create(u) for u in everyone] == [False, False, True, True, True]


async def test_rate_limit_per_action_project_and_actor(client, db):
    user = await make_user(db)
    project = await make_project(db, owner=user)
    await set_application_settings(db, gitlab_shell_operation_limit=2)
    for _ in range(2):
        assert (await allowed(client, project=project["full_path"], user_id=user["id"]))[0] == 200
    status, body = await allowed(client, project=project["full_path"], user_id=user["id"])
    assert (status, body) == (429, {"message": {"error": "This endpoint has been requested too many times. Try again later."}})
    # and no Retry-After: gitlab-shell's client would wait that long before each retry
    resp = await client.post(ALLOWED, json={"action": "git-upload-pack", "changes": "_any", "protocol": "ssh",
                                            "project": project["full_path"], "user_id": user["id"]}, headers=shell_headers())
    assert resp.status == 429 and "Retry-After" not in resp.headers
    # another actor is counted separately
    other = await make_user(db)
    await add_member(db, other, project, 30)
    assert (await allowed(client, project=project["full_path"], user_id=other["id"]))[0] == 200


async def test_form_bodies_and_activity_tracking(client, db):
    user = await make_user(db)
    key, _ = await make_key(db, user)
    project = await make_project(db, owner=user)
    data = {"key_id": str(key["id"]), "project": project["full_path"], "action": "git-upload-pack", "protocol": "ssh", "changes": "_any"}
    resp = await client.post(ALLOWED, data=data, headers={"Gitlab-Shell-Api-Request": shell_headers()["Gitlab-Shell-Api-Request"]})
    assert resp.status == 200
    row = await db.fetchrow("SELECT last_activity_on FROM users WHERE id = $1", user["id"])
    assert row["last_activity_on"] == date.today()
    assert await db.fetchval("SELECT last_used_at FROM keys WHERE id = $1", key["id"]) is not None


async def test_a_deploy_keys_clone_counts_as_its_creators_activity(client, db):
    """base.rb's log_user_activity(actor.user): for a deploy key, actor.user is its creator."""
    creator = await make_user(db)
    project = await make_project(db, owner=creator)
    deploy, _ = await make_key(db, creator, deploy_key=True)
    await enable_deploy_key(db, deploy, project, can_push=False)
    await db.execute("UPDATE users SET last_activity_on = NULL WHERE id = $1", creator["id"])
    assert (await allowed(client, project=project["full_path"], key_id=str(deploy["id"])))[0] == 200
    assert await db.fetchval("SELECT last_activity_on FROM users WHERE id = $1", creator["id"]) == date.today()


async def test_concurrent_requests_each_get_their_own_answer(client, db):
    """Concurrent lookups share one query (service/db/batch.py); answers must not cross."""
    import asyncio

    users = [await make_user(db) for _ in range(6)]
    projects = [await make_project(db, owner=user) for user in users]  # private: only the owner may read
    requests = [(u, p) for u in users for p in projects]
    answers = await asyncio.gather(*(allowed(client, project=p["full_path"], user_id=u["id"]) for u, p in requests))
    for (user, project), (status, body) in zip(requests, answers):
        if user["id"] == project["creator_id"]:
            assert status == 200 and body["gl_id"] == f"user-{user['id']}" and body["gl_project_id"] == project["id"]
        else:
            assert (status, body["message"]) == (404, PROJECT_NOT_FOUND)


async def test_gitaly_client_context_bin(client, db):
    import base64

    user = await make_user(db)
    project = await make_project(db, owner=user)
    good = base64.b64encode(b'{"scoped-user-id": "%d"}' % user["id"]).decode()
    assert (await allowed(client, project=project["full_path"], user_id=user["id"], gitaly_client_context_bin=good))[0] == 200
    no_scope = base64.b64encode(b'{"gitaly-session-id": "abc"}').decode()
    assert (await allowed(client, project=project["full_path"], user_id=user["id"], gitaly_client_context_bin=no_scope))[0] == 200
    assert (await allowed(client, project=project["full_path"], user_id=user["id"], gitaly_client_context_bin=None))[0] == 200
    cases = [
        ("%%%", "400 Bad request - malformed gitaly_client_context_bin"),
        (base64.b64encode(b"[1, 2]").decode(), "400 Bad request - Decoded gitaly_client_context_bin is not a valid JSON object"),
    ]
    for value, message in cases:
        assert await allowed(client, project=project["full_path"], user_id=user["id"], gitaly_client_context_bin=value) == (
            400, {"message": message},
        )


async def test_a_client_context_naming_no_user_is_404(client, db):
    import base64

    user = await make_user(db)
    project = await make_project(db, owner=user)
    missing = user["id"] + 1000
    for scoped, shown in [(str(missing), str(missing)), (missing, str(missing)), ("abc", "abc"), ("99999999999999999999", "99999999999999999999")]:
        value = base64.b64encode(orjson.dumps({"scoped-user-id": scoped})).decode()
        assert await allowed(client, project=project["full_path"], user_id=user["id"], gitaly_client_context_bin=value) == (
            404, {"message": f"404 User ID {shown} not found Not Found"},
        )


async def test_guests_may_clone_the_wiki_but_not_the_code(client, db):
    owner = await make_user(db)
    guest = await make_user(db)
    project = await make_project(db, owner=owner)  # private
    await add_member(db, guest, project, 10)
    assert (await allowed(client, project=project["full_path"] + ".wiki.git", user_id=guest["id"]))[0] == 200
    await denied(client, 401, "You are not allowed to download code from this project.", project=project["full_path"], user_id=guest["id"])


async def test_a_push_without_changes_is_refused(client, db):
    user = await make_user(db)
    project = await make_project(db, owner=user)
    status, body = await allowed(client, project=project["full_path"], user_id=user["id"], action="git-receive-pack", changes=None)
    assert (status, body) == (400, {"message": "400 Bad request - changes is missing"})


async def test_auto_create_respects_the_projects_limit_in_the_personal_namespace_only(client, db):
    """User#projects_limit_left counts personal projects, and only UserNamespacePolicy applies it."""
    user = await make_user(db, projects_limit=1)
    group = await make_group(db, "limitless")
    await add_member(db, user, group, 40)
    assert (await allowed(client, action="git-receive-pack", project=f"{user['username']}/first", user_id=user["id"]))[0] == 200
    await denied(client, 404, PROJECT_NOT_FOUND, action="git-receive-pack", project=f"{user['username']}/second", user_id=user["id"])
    for name in ("g1", "g2"):  # projects in a group count against nothing
        assert (await allowed(client, action="git-receive-pack", project=f"limitless/{name}", user_id=user["id"]))[0] == 200
    none_left = await make_user(db, projects_limit=0)
    await add_member(db, none_left, group, 40)
    assert (await allowed(client, action="git-receive-pack", project="limitless/g3", user_id=none_left["id"]))[0] == 200
    await denied(client, 404, PROJECT_NOT_FOUND, action="git-receive-pack", project=f"{none_left['username']}/x", user_id=none_left["id"])


async def test_unreadable_body_without_credentials_is_401(client):
    resp = await client.post(ALLOWED, data=b"{broken", headers={"Content-Type": "application/json"})
    assert (resp.status, await resp.json()) == (401, {"message": "401 Unauthorized"})
