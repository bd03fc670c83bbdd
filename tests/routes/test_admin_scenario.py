"""An operator populates the instance with python-gitlab, then GitLab Shell, Gitaly and the
error-tracking service get their answers from the internal endpoints for exactly those objects."""

from __future__ import annotations

import gitlab
import pytest

from service.domain.tokens import token_digest
from tests.admin_helpers import call, gitlab_client, make_admin
from tests.factories import ed25519_public_key
from tests.helpers import kas_headers, shell_headers

ZERO = "0" * 40
SHA = "a" * 40


async def _allowed(client, **params):
    body = {"protocol": "ssh", "changes": "_any", **params}
    resp = await client.post("/api/v4/internal/allowed", json=body, headers=shell_headers())
    return resp.status, await resp.json()


async def test_objects_made_with_python_gitlab_answer_on_the_internal_endpoints(client, db):
    _, admin_token = await make_admin(db)
    public_key = ed25519_public_key("alice@laptop")
    with gitlab_client(client, admin_token) as gl:
        alice = await call(
            lambda: gl.users.create(
                {
                    "username": "alice",
                    "email": "alice@example.com",
                    "name": "Alice",
                    "password": "correct-horse-1",
                    "skip_confirmation": True,
                }
            )
        )
        key = await call(lambda: alice.keys.create({"title": "laptop", "key": public_key}))
        group = await call(lambda: gl.groups.create({"name": "Platform", "path": "platform"}))
        project = await call(
            lambda: gl.projects.create(
                {
                    "name": "API",
                    "path": "api",
                    "namespace_id": group.id,
                    "default_branch": "main",
                    "initialize_with_readme": True,
                }
            )
        )
        await call(lambda: project.members.create({"user_id": alice.id, "access_level": 30}))
        # the README commit made main, which the default branch protection protected (fully)
        branch = await call(lambda: project.protectedbranches.get("main"))
        agent = await call(lambda: project.cluster_agents.create({"name": "production"}))
        agent_token = await call(
            lambda: gl.http_post(
                f"/projects/{project.id}/cluster_agents/{agent.id}/tokens", post_data={"name": "deploy"}
            )
        )

    # The data model is consistent: namespace traversal ids and full-path routes.
    assert await db.fetchval("SELECT traversal_ids FROM namespaces WHERE id = $1", group.id) == [group.id]
    assert (
        await db.fetchval(
            "SELECT path FROM routes WHERE source_type = 'Project' AND source_id = $1", project.id
        )
        == "platform/api"
    )
    user_ns = await db.fetchrow("SELECT id, traversal_ids FROM namespaces WHERE owner_id = $1", alice.id)
    assert user_ns["traversal_ids"] == [user_ns["id"]]
    assert branch.push_access_levels[0]["access_level_description"] == "Maintainers"

    # The agent token is shown once and only its digest is kept.
    assert agent_token["token"].startswith("glagent-")
    stored = await db.fetchrow("SELECT * FROM cluster_agent_tokens WHERE id = $1", agent_token["id"])
    assert stored["token_digest"] == token_digest(agent_token["token"])
    assert agent_token["token"] not in [str(v) for v in stored.values()]

    # gitlab-shell: the new key may clone the project its owner is a developer of...
    status, body = await _allowed(
        client, action="git-upload-pack", project="platform/api.git", key_id=str(key.id)
    )
    assert status == 200, body
    assert body["gl_id"] == f"user-{alice.id}"
    assert body["gl_repository"] == f"project-{project.id}"
    # ...but not push to the branch protected for maintainers.
    status, body = await _allowed(
        client,
        action="git-receive-pack",
        project="platform/api.git",
        key_id=str(key.id),
        changes=f"{SHA} {'b' * 40} refs/heads/main",
    )
    assert status == 401
    assert "protected branch" in body["message"]

    # sshd's AuthorizedKeysCommand finds the key by its blob.
    resp = await client.get(
        "/api/v4/internal/authorized_keys", params={"key": public_key.split()[1]}, headers=shell_headers()
    )
    assert resp.status == 200
    assert (await resp.json())["id"] == key.id


async def test_renamed_and_transferred_project_reports_the_move_to_the_pusher(client, db):
    _, admin_token = await make_admin(db)
    with gitlab_client(client, admin_token) as gl:
        alice = await call(
            lambda: gl.users.create(
                {"username": "alice", "email": "alice@example.com", "name": "Alice", "reset_password": True}
            )
        )
        key = await call(lambda: alice.keys.create({"title": "laptop", "key": ed25519_public_key()}))
        group = await call(lambda: gl.groups.create({"name": "Platform", "path": "platform"}))
        project = await call(lambda: gl.projects.create({"name": "API", "namespace_id": group.id}))
        await call(lambda: project.members.create({"user_id": alice.id, "access_level": 40}))
        project.path = "api-v2"
        await call(project.save)
        renamed = await call(lambda: gl.projects.get("platform/api-v2"))
        assert renamed.path_with_namespace == "platform/api-v2"
        # The old path still leads to the project through its redirect route.
        assert (await call(lambda: gl.projects.get("platform/api"))).id == project.id
        team = await call(lambda: gl.groups.create({"name": "Team", "path": "team"}))
        await call(lambda: gl.groups.create({"name": "Backend", "path": "backend", "parent_id": team.id}))
        await call(lambda: project.transfer("team/backend"))
        moved = await call(lambda: gl.projects.get(project.id))
        await call(lambda: gl.broadcastmessages.create({"message": "Maintenance at 22:00 UTC"}))
    assert moved.path_with_namespace == "team/backend/api-v2"
    redirects = {
        r["path"] for r in await db.fetch("SELECT path FROM redirect_routes WHERE source_id = $1", project.id)
    }
    assert redirects == {"platform/api", "platform/api-v2"}

    status, body = await _allowed(
        client,
        action="git-receive-pack",
        project="platform/api.git",
        key_id=str(key.id),
        changes=f"{ZERO} {SHA} refs/heads/main",
    )
    assert status == 200, body
    assert body["gl_project_path"] == "team/backend/api-v2"

    gl_repository = f"project-{project.id}"
    await client.post(
        "/api/v4/internal/pre_receive", json={"gl_repository": gl_repository}, headers=shell_headers()
    )
    resp = await client.post(
        "/api/v4/internal/post_receive",
        json={
            "gl_repository": gl_repository,
            "identifier": f"user-{alice.id}",
            "changes": f"{ZERO} {SHA} refs/heads/main",
        },
        headers=shell_headers(),
    )
    assert resp.status == 200
    messages = (await resp.json())["messages"]
    assert {"message": "Maintenance at 22:00 UTC", "type": "alert"} in messages
    moved_notice = next(
        m["message"] for m in messages if m["type"] == "basic" and "was moved" in m["message"]
    )
    assert moved_notice.startswith("Project 'platform/api' was moved to 'team/backend/api-v2'.")


async def test_renaming_a_user_moves_its_projects_and_keeps_redirects(client, db):
    _, admin_token = await make_admin(db)
    with gitlab_client(client, admin_token) as gl:
        bob = await call(
            lambda: gl.users.create(
                {"username": "bob", "email": "bob@example.com", "name": "Bob", "password": "hunter2hunter2"}
            )
        )
        project = await call(
            lambda: gl.projects.create({"name": "dotfiles", "namespace_id": bob.namespace_id})
        )
        bob.username = "robert"
        await call(bob.save)
        found = await call(lambda: gl.projects.get(project.id))
    assert found.path_with_namespace == "robert/dotfiles"
    routes = {r["path"] for r in await db.fetch("SELECT path FROM routes")}
    assert {"robert", "robert/dotfiles"} <= routes
    redirects = {r["path"] for r in await db.fetch("SELECT path FROM redirect_routes")}
    assert redirects == {"bob", "bob/dotfiles"}


async def test_error_tracking_client_key_and_settings_reach_the_internal_endpoint(client, db):
    _, admin_token = await make_admin(db)
    with gitlab_client(client, admin_token) as gl:
        project = await call(lambda: gl.projects.create({"name": "web"}))
        client_key = await call(lambda: gl.http_post(f"/projects/{project.id}/error_tracking/client_keys"))
        settings = await call(gl.settings.get)
        settings.error_tracking_enabled = True
        settings.error_tracking_access_token = "et-secret-token"
        await call(settings.save)
        shown = await call(gl.settings.get)
    assert shown.error_tracking_enabled is True
    assert "error_tracking_access_token" not in shown.attributes
    stored = await db.fetchval("SELECT error_tracking_access_token_digest FROM application_settings")
    assert stored == token_digest("et-secret-token")

    resp = await client.post(
        "/api/v4/internal/error_tracking/allowed",
        json={"project_id": project.id, "public_key": client_key["public_key"]},
        headers={"Gitlab-Error-Tracking-Token": "et-secret-token"},
    )
    assert resp.status == 200
    assert await resp.json() == {"enabled": True}


async def test_agent_token_from_the_admin_api_authenticates_the_agent_at_kas(client, db):
    _, admin_token = await make_admin(db)
    with gitlab_client(client, admin_token) as gl:
        project = await call(lambda: gl.projects.create({"name": "cluster-config"}))
        agent = await call(lambda: project.cluster_agents.create({"name": "staging"}))
        tokens = f"/projects/{project.id}/cluster_agents/{agent.id}/tokens"
        created = await call(lambda: gl.http_post(tokens, post_data={"name": "agentk"}))

    async def agent_info() -> int:
        headers = {**kas_headers(), "Authorization": f"Bearer {created['token']}"}
        resp = await client.get("/api/v4/internal/kubernetes/agent_info", headers=headers)
        if resp.status == 200:
            assert (await resp.json())["agent_id"] == agent.id
        return resp.status

    assert await agent_info() == 200
    with gitlab_client(client, admin_token) as gl:
        await call(lambda: gl.http_delete(f"{tokens}/{created['id']}"))
    assert await agent_info() == 401


async def test_who_may_create_projects_by_push_is_set_through_the_groups_and_settings_api(client, db):
    """The groups API's project_creation_level and the instance's default_project_creation decide
    whether a push to a new path in the group creates its project (GroupPolicy's create_projects)."""
    _, admin_token = await make_admin(db)
    with gitlab_client(client, admin_token) as gl:
        developer = await call(
            lambda: gl.users.create(
                {"username": "dev", "email": "dev@example.com", "name": "Dev", "password": "correct-horse-1"}
            )
        )
        team = await call(lambda: gl.groups.create({"name": "Team", "path": "team"}))
        strict = await call(
            lambda: gl.groups.create({"name": "Strict", "path": "strict", "project_creation_level": "maintainer"})
        )
        for group in (team, strict):
            await call(lambda group=group: group.members.create({"user_id": developer.id, "access_level": 30}))
        assert (team.project_creation_level, strict.project_creation_level) == ("developer", "maintainer")

        push = {"action": "git-receive-pack", "user_id": developer.id}
        assert (await _allowed(client, project="team/one", **push))[0] == 200
        assert (await _allowed(client, project="strict/one", **push))[0] == 404

        strict.project_creation_level = "developer"
        await call(strict.save)
        assert (await _allowed(client, project="strict/one", **push))[0] == 200
        settings = await call(gl.settings.get)
        settings.default_project_creation = 1  # maintainers, for groups without their own level
        await call(settings.save)
        assert (await call(lambda: gl.groups.get(team.id))).project_creation_level == "maintainer"
        assert (await _allowed(client, project="team/two", **push))[0] == 404
        assert (await _allowed(client, project="strict/two", **push))[0] == 200

        with pytest.raises(gitlab.exceptions.GitlabCreateError) as refused:
            await call(lambda: gl.groups.create({"name": "Bad", "path": "bad", "project_creation_level": "everyone"}))
        assert refused.value.response_code == 400


async def test_default_branch_protection_is_set_through_the_settings_and_groups_api(client, db):
    """default_branch_protection_defaults (a hash) and the deprecated default_branch_protection
    (0-4, translated into the hash) on the instance and on groups; a group without its own shows
    the instance's; the setting then decides a developer's first push into an empty project."""
    fully = {
        "allowed_to_push": [{"access_level": 40}],
        "allowed_to_merge": [{"access_level": 40}],
        "allow_force_push": False,
        "developer_can_initial_push": False,
    }
    _, admin_token = await make_admin(db)
    with gitlab_client(client, admin_token) as gl:
        settings = await call(gl.settings.get)
        assert (settings.default_branch_protection, settings.default_branch_protection_defaults) == (2, fully)
        developer = await call(
            lambda: gl.users.create(
                {"username": "dev", "email": "dev@example.com", "name": "Dev", "password": "correct-horse-1"}
            )
        )
        team = await call(lambda: gl.groups.create({"name": "Team", "path": "team"}))
        assert (team.default_branch_protection, team.default_branch_protection_defaults) == (2, fully)
        initial = await call(lambda: gl.groups.create({"name": "Init", "path": "init", "default_branch_protection": 4}))
        assert initial.default_branch_protection == 4
        assert initial.default_branch_protection_defaults == {**fully, "developer_can_initial_push": True}
        projects = {}
        for group in (team, initial):
            await call(lambda group=group: group.members.create({"user_id": developer.id, "access_level": 30}))
            projects[group.path] = await call(
                lambda group=group: gl.projects.create({"name": "app", "namespace_id": group.id})
            )
        first_push = {"action": "git-receive-pack", "user_id": developer.id, "changes": f"{'0' * 40} {'a' * 40} refs/heads/main"}
        assert (await _allowed(client, project="team/app", **first_push))[0] == 401
        assert (await _allowed(client, project="init/app", **first_push))[0] == 200

        settings.default_branch_protection_defaults = {
            "allowed_to_push": [{"access_level": 30}],
            "allowed_to_merge": [{"access_level": 40}],
            "allow_force_push": False,
        }
        await call(settings.save)
        assert settings.default_branch_protection == 1
        assert (await call(lambda: gl.groups.get(team.id))).default_branch_protection == 1
        assert (await _allowed(client, project="team/app", **first_push))[0] == 200
        team.default_branch_protection_defaults = fully
        await call(team.save)
        assert (await _allowed(client, project="team/app", **first_push))[0] == 401

        # both given: the integer replaces the hash (handle_default_branch_protection)
        both = {"default_branch_protection": 0, "default_branch_protection_defaults": fully}
        none_wins = await call(lambda: gl.groups.create({"name": "Both", "path": "both", **both}))
        assert none_wins.default_branch_protection == 0
        for bad in (
            {"default_branch_protection": 5},
            {"default_branch_protection_defaults": {"allowed_to_push": [{"access_level": 20}]}},
            {"default_branch_protection_defaults": "fully"},
        ):
            with pytest.raises(gitlab.exceptions.GitlabCreateError) as refused:
                await call(lambda bad=bad: gl.groups.create({"name": "Bad", "path": "bad", **bad}))
            assert refused.value.response_code == 400, bad
