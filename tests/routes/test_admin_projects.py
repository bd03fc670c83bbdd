"""Groups, projects and what hangs off them, driven with python-gitlab."""

from __future__ import annotations

import json

from tests.admin_helpers import call, error_of, gitlab_client, make_admin
from tests.factories import ed25519_public_key, make_user, user_namespace_id
from tests.helpers import shell_headers


def body_of(error) -> dict:
    return json.loads(error.response_body)


async def _allowed(client, **params) -> tuple[int, dict]:
    body = {"protocol": "ssh", "changes": "_any", **params}
    resp = await client.post("/api/v4/internal/allowed", json=body, headers=shell_headers())
    return resp.status, await resp.json()


async def test_groups_and_subgroups(client, db):
    admin, token = await make_admin(db)
    with gitlab_client(client, token) as gl:
        top = await call(
            lambda: gl.groups.create({"name": "Platform", "path": "platform", "visibility": "internal"})
        )
        sub = await call(
            lambda: gl.groups.create({"name": "Infra Team", "path": "infra", "parent_id": top.id})
        )
        by_path = await call(lambda: gl.groups.get("platform/infra"))
        listed = await call(lambda: gl.groups.list(get_all=True))
        searched = await call(lambda: gl.groups.list(search="infra"))
        owners = await call(lambda: top.members.list(get_all=True))
        taken = await error_of(lambda: gl.groups.create({"name": "Again", "path": "PLATFORM"}))
        too_open = await error_of(
            lambda: gl.groups.create(
                {"name": "Open", "path": "open", "parent_id": sub.id, "visibility": "public"}
            )
        )
        no_parent = await error_of(lambda: gl.groups.create({"name": "X", "path": "x", "parent_id": 9999}))
        missing = await error_of(lambda: gl.groups.get("nope"))
    assert (top.visibility, top.full_path, sub.full_path, sub.parent_id) == (
        "internal",
        "platform",
        "platform/infra",
        top.id,
    )
    assert sub.full_name == "Platform / Infra Team"
    assert by_path.id == sub.id
    assert [g.full_path for g in listed] == ["platform/infra", "platform"]  # by name: "Infra Team", "Platform"
    assert [g.id for g in searched] == [sub.id]
    assert [(m.id, m.access_level) for m in owners] == [(admin["id"], 50)]
    assert (taken.response_code, body_of(taken)) == (400, {"message": {"path": ["has already been taken"]}})
    assert body_of(too_open) == {
        "message": {
            "visibility_level": ["public is not allowed since the parent group has a private visibility."]
        }
    }
    assert (no_parent.response_code, body_of(no_parent)) == (404, {"message": "404 Group Not Found"})
    assert (missing.response_code, body_of(missing)) == (404, {"message": "404 Group Not Found"})
    traversal = await db.fetchval("SELECT traversal_ids FROM namespaces WHERE id = $1", sub.id)
    assert traversal == [top.id, sub.id]


async def test_group_rename_moves_descendants_and_delete_removes_them(client, db):
    _, token = await make_admin(db)
    with gitlab_client(client, token) as gl:
        top = await call(lambda: gl.groups.create({"name": "Platform", "path": "platform"}))
        sub = await call(lambda: gl.groups.create({"name": "Infra", "path": "infra", "parent_id": top.id}))
        project = await call(lambda: gl.projects.create({"name": "tf", "namespace_id": sub.id}))
        top.path = "plat"
        await call(top.save)
        moved = await call(lambda: gl.projects.get(project.id))
        via_old_path = await call(lambda: gl.projects.get("platform/infra/tf"))
        accepted = await call(lambda: gl.http_delete(f"/groups/{top.id}"))
        gone = await error_of(lambda: gl.projects.get(project.id))
    assert moved.path_with_namespace == "plat/infra/tf"
    assert via_old_path.id == project.id
    assert accepted.status_code == 202 and accepted.json() == {"message": "202 Accepted"}
    assert (gone.response_code, body_of(gone)) == (404, {"message": "404 Project Not Found"})
    for table in ("namespaces", "projects", "routes", "redirect_routes", "members"):
        remaining = await db.fetchval(
            f"SELECT count(*) FROM {table} WHERE "
            + (
                "type = 'Group'"
                if table == "namespaces"
                else "true"
                if table == "projects"
                else "source_type = 'Project' OR path LIKE 'plat%'"
                if "routes" in table
                else "source_type = 'Project' OR source_id <> 0 AND source_type = 'Namespace'"
            )
        )
        assert remaining == 0, table


async def test_renaming_a_group_renames_the_full_names_under_it(client, db):
    """Route#rename_descendants: the display names of subgroups and projects start with the new name."""
    _, token = await make_admin(db)
    with gitlab_client(client, token) as gl:
        top = await call(lambda: gl.groups.create({"name": "Platform", "path": "platform"}))
        sub = await call(lambda: gl.groups.create({"name": "Infra", "path": "infra", "parent_id": top.id}))
        await call(lambda: gl.projects.create({"name": "tf", "namespace_id": sub.id}))
        other = await call(lambda: gl.groups.create({"name": "Platform Two", "path": "platform2"}))
        await call(lambda: gl.projects.create({"name": "app", "namespace_id": other.id}))
        top.name = "Core"
        await call(top.save)
        renamed = await call(lambda: gl.projects.get("platform/infra/tf"))
    names = dict(await db.fetch("SELECT path, name FROM routes WHERE path LIKE 'platform%'"))
    assert names == {
        "platform": "Core",
        "platform/infra": "Core / Infra",
        "platform/infra/tf": "Core / Infra / tf",
        "platform2": "Platform Two",
        "platform2/app": "Platform Two / app",
    }
    assert renamed.name_with_namespace == "Core / Infra / tf"


async def test_group_and_project_members(client, db):
    _, token = await make_admin(db)
    dev = await make_user(db, username="dev")
    with gitlab_client(client, token) as gl:
        group = await call(lambda: gl.groups.create({"name": "G", "path": "g"}))
        project = await call(lambda: gl.projects.create({"name": "p", "namespace_id": group.id}))
        member = await call(lambda: group.members.create({"user_id": dev["id"], "access_level": 20}))
        created = (member.username, member.access_level)
        again = await error_of(lambda: group.members.create({"user_id": dev["id"], "access_level": 20}))
        bad_level = await error_of(lambda: group.members.create({"user_id": dev["id"], "access_level": 45}))
        no_user = await error_of(lambda: group.members.create({"user_id": 9999, "access_level": 30}))
        member.access_level = 40
        await call(member.save)
        updated = await call(lambda: group.members.get(dev["id"]))
        pmember = await call(
            lambda: project.members.create(
                {"user_id": dev["id"], "access_level": 30, "expires_at": "2099-12-31"}
            )
        )
        await call(lambda: group.members.delete(dev["id"]))
        removed = await error_of(lambda: group.members.get(dev["id"]))
        project_members = await call(lambda: project.members.list(get_all=True))
        remove_missing = await error_of(lambda: group.members.delete(dev["id"]))
    assert created == ("dev", 20)
    assert (again.response_code, body_of(again)) == (409, {"message": "Member already exists"})
    assert body_of(bad_level) == {"error": "access_level does not have a valid value"}
    assert (no_user.response_code, body_of(no_user)) == (404, {"message": "404 User Not Found"})
    assert updated.access_level == 40
    assert (pmember.access_level, pmember.expires_at) == (30, "2099-12-31")
    assert (removed.response_code, body_of(removed)) == (404, {"message": "404 Member Not Found"})
    assert [m.id for m in project_members] == [dev["id"]]
    assert remove_missing.response_code == 404


async def test_projects_create_get_edit_archive_delete(client, db):
    admin, token = await make_admin(db)
    with gitlab_client(client, token) as gl:
        group = await call(lambda: gl.groups.create({"name": "G", "path": "g", "visibility": "internal"}))
        project = await call(
            lambda: gl.projects.create(
                {
                    "name": "My Service",
                    "namespace_id": group.id,
                    "visibility": "internal",
                    "default_branch": "trunk",
                    "initialize_with_readme": True,
                    "lfs_enabled": False,
                    "description": "does things",
                }
            )
        )
        as_created = dict(project.attributes)
        personal = await call(lambda: gl.projects.create({"path": "scratch", "default_branch": "dev"}))
        personal_default_branch = personal.default_branch
        protected_trunk = await call(lambda: project.protectedbranches.list(get_all=True))
        personal.default_branch = "dev"  # an empty project: no branch to make its default
        empty_default = await error_of(personal.save)
        by_path = await call(lambda: gl.projects.get("g/my-service"))
        duplicate = await error_of(
            lambda: gl.projects.create({"name": "My Service", "namespace_id": group.id})
        )
        too_open = await error_of(
            lambda: gl.projects.create({"name": "pub", "namespace_id": group.id, "visibility": "public"})
        )
        bad_path = await error_of(lambda: gl.projects.create({"path": "x.git"}))
        nothing = await error_of(lambda: gl.http_post("/projects", post_data={"visibility": "private"}))
        no_namespace = await error_of(lambda: gl.projects.create({"name": "n", "namespace_id": 9999}))
        project.name = "Renamed"
        project.description = "new"
        project.visibility = "private"
        project.default_branch = "main"
        project.lfs_enabled = True
        await call(project.save)
        edited = await call(lambda: gl.projects.get(project.id))
        await call(project.archive)
        archived = (await call(lambda: gl.projects.get(project.id))).archived
        await call(project.unarchive)
        deleted = await call(lambda: gl.http_delete(f"/projects/{personal.id}"))
        missing = await error_of(lambda: gl.projects.get("nobody/nothing"))
        listed = await call(lambda: gl.projects.list(get_all=True))
        readme = {}
        for name, branch in (("blank", " "), ("wildcard", "ma*"), ("dots", "a..b")):
            made = await call(
                lambda name=name, branch=branch: gl.projects.create(
                    {"path": f"readme-{name}", "initialize_with_readme": True, "default_branch": branch}
                )
            )
            readme[name] = made.default_branch
    assert (as_created["path"], as_created["path_with_namespace"], as_created["visibility"]) == (
        "my-service",
        "g/my-service",
        "internal",
    )
    assert (
        as_created["default_branch"],
        as_created["lfs_enabled"],
        as_created["namespace"]["full_path"],
    ) == ("trunk", False, "g")
    assert personal.path_with_namespace == f"{admin['username']}/scratch"
    # default_branch takes initialize_with_readme (GitLab's README commit makes the branch, which is
    # then protected as the default branch protection says); without it the project stays empty
    assert personal_default_branch is None
    assert [(b.name, b.push_access_levels[0]["access_level"]) for b in protected_trunk] == [("trunk", 40)]
    assert (empty_default.response_code, body_of(empty_default)) == (
        400,
        {"message": {"base": ["Could not change HEAD: branch 'dev' does not exist"]}},
    )
    # the README commit's branch: a blank name is the instance's default; one git refuses fails the
    # commit, and the project stays empty
    assert [readme[name] for name in ("blank", "wildcard", "dots")] == ["main", None, None]
    assert by_path.id == project.id
    assert body_of(duplicate) == {
        "message": {"name": ["has already been taken"], "path": ["has already been taken"]}
    }
    assert body_of(too_open) == {
        "message": {"visibility_level": ["public is not allowed in a internal group."]}
    }
    assert bad_path.response_code == 400 and "path" in body_of(bad_path)["message"]
    assert body_of(nothing) == {"error": "name, path are missing, at least one parameter must be provided"}
    assert (no_namespace.response_code, body_of(no_namespace)) == (
        404,
        {"message": "404 Namespace Not Found"},
    )
    assert (
        edited.name,
        edited.description,
        edited.visibility,
        edited.default_branch,
        edited.lfs_enabled,
    ) == ("Renamed", "new", "private", "main", True)
    assert edited.name_with_namespace == "G / Renamed"
    assert archived is True
    assert (deleted.status_code, deleted.json()) == (202, {"message": "202 Accepted"})
    assert (missing.response_code, body_of(missing)) == (404, {"message": "404 Project Not Found"})
    assert [p.id for p in listed] == [project.id]
    # An archived project refuses pushes; unarchived it is writable again (checked by /allowed).
    assert await db.fetchval("SELECT archived FROM projects WHERE id = $1", project.id) is False


async def test_transfer_errors(client, db):
    _, token = await make_admin(db)
    with gitlab_client(client, token) as gl:
        a = await call(lambda: gl.groups.create({"name": "A", "path": "a"}))
        b = await call(lambda: gl.groups.create({"name": "B", "path": "b"}))
        pa = await call(lambda: gl.projects.create({"name": "app", "namespace_id": a.id}))
        await call(lambda: gl.projects.create({"name": "app", "namespace_id": b.id}))
        same = await error_of(
            lambda: gl.http_put(f"/projects/{pa.id}/transfer", post_data={"namespace": a.id})
        )
        clash = await error_of(
            lambda: gl.http_put(f"/projects/{pa.id}/transfer", post_data={"namespace": "b"})
        )
        nowhere = await error_of(
            lambda: gl.http_put(f"/projects/{pa.id}/transfer", post_data={"namespace": "zz"})
        )
    assert body_of(same) == {
        "message": 'Failed to transfer project {:new_namespace=>["Project is already in this namespace."]}'
    }
    assert body_of(clash) == {
        "message": "Failed to transfer project {:new_namespace=>["
        '"Project with same name or path in target namespace already exists"]}'
    }
    assert (nowhere.response_code, body_of(nowhere)) == (404, {"message": "404 Namespace Not Found"})
    assert await db.fetchval("SELECT count(*) FROM redirect_routes") == 0


async def test_deploy_keys(client, db):
    _, token = await make_admin(db)
    text = ed25519_public_key("deployer")
    with gitlab_client(client, token) as gl:
        one = await call(lambda: gl.projects.create({"name": "one"}))
        two = await call(lambda: gl.projects.create({"name": "two"}))
        key = await call(lambda: one.keys.create({"title": "ci", "key": text, "can_push": True}))
        enabled = await call(lambda: two.keys.enable(key.id))
        listed_two = await call(lambda: two.keys.list(get_all=True))
        same_again = await call(lambda: one.keys.create({"title": "ci", "key": text}))
        invalid = await error_of(lambda: one.keys.create({"title": "bad", "key": "ssh-rsa AAAA"}))
        unknown = await error_of(lambda: two.keys.enable(99999))
        user = await call(
            lambda: gl.users.create(
                {"username": "uma", "email": "u@x.org", "name": "U", "password": "12345678"}
            )
        )
        user_key_text = ed25519_public_key()
        await call(lambda: user.keys.create({"title": "mine", "key": user_key_text}))
        user_key_as_deploy = await error_of(lambda: one.keys.create({"title": "x", "key": user_key_text}))
    assert (key.can_push, key.fingerprint_sha256.startswith("SHA256:")) == (True, True)
    assert enabled["id"] == key.id
    assert [(k.id, k.can_push) for k in listed_two] == [(key.id, False)]
    assert same_again.id == key.id
    assert invalid.response_code == 400 and body_of(invalid)["message"]["deploy_key.key"] == ["is invalid"]
    assert (unknown.response_code, body_of(unknown)) == (404, {"message": "404 Deploy Key Not Found"})
    assert body_of(user_key_as_deploy) == {
        "message": {"deploy_key.fingerprint_sha256": ["has already been taken"]}
    }

    # The deploy key can push to project one (can_push) and read project two.
    status, body = await _allowed(
        client, action="git-upload-pack", project=two.path_with_namespace + ".git", key_id=str(key.id)
    )
    assert status == 200, body
    with gitlab_client(client, token) as gl:
        await call(lambda: one.keys.delete(key.id))
        assert await db.fetchval("SELECT count(*) FROM keys WHERE id = $1", key.id) == 1  # still used by two
        await call(lambda: two.keys.delete(key.id))
    assert await db.fetchval("SELECT count(*) FROM keys WHERE id = $1", key.id) == 0


async def test_protected_branches_and_tags(client, db):
    _, token = await make_admin(db)
    with gitlab_client(client, token) as gl:
        project = await call(lambda: gl.projects.create({"name": "p"}))
        branch = await call(
            lambda: project.protectedbranches.create(
                {
                    "name": "release/*",
                    "push_access_level": 0,
                    "merge_access_level": 30,
                    "allow_force_push": True,
                }
            )
        )
        again = await error_of(lambda: project.protectedbranches.create({"name": "release/*"}))
        bad = await error_of(lambda: project.protectedbranches.create({"name": "x", "push_access_level": 10}))
        fetched = await call(lambda: project.protectedbranches.get("release/*"))
        patched = await call(
            lambda: gl.http_patch(
                f"/projects/{project.id}/protected_branches/release%2F%2A",
                post_data={"allow_force_push": False},
            )
        )
        tag = await call(lambda: project.protectedtags.create({"name": "v*", "create_access_level": 30}))
        tag_again = await error_of(lambda: project.protectedtags.create({"name": "v*"}))
        tags = await call(lambda: project.protectedtags.list(get_all=True))
        await call(lambda: project.protectedbranches.delete("release/*"))
        gone = await error_of(lambda: project.protectedbranches.get("release/*"))
        await call(lambda: project.protectedtags.delete("v*"))
    assert branch.push_access_levels[0]["access_level"] == 0
    assert branch.push_access_levels[0]["access_level_description"] == "No one"
    assert branch.merge_access_levels[0]["access_level_description"] == "Developers + Maintainers"
    assert branch.allow_force_push is True
    assert (again.response_code, body_of(again)) == (
        409,
        {"message": "Protected branch 'release/*' already exists"},
    )
    assert body_of(bad) == {"error": "push_access_level does not have a valid value"}
    assert fetched.id == branch.id
    assert patched["allow_force_push"] is False
    assert tag.create_access_levels[0]["access_level_description"] == "Developers + Maintainers"
    assert (tag_again.response_code, body_of(tag_again)) == (
        409,
        {"message": "Protected tag 'v*' already exists"},
    )
    assert [t.name for t in tags] == ["v*"]
    assert (gone.response_code, body_of(gone)) == (404, {"message": "404 Not found"})
    assert await db.fetchval("SELECT count(*) FROM protected_tags") == 0


async def test_cluster_agents_and_tokens(client, db):
    _, token = await make_admin(db)
    with gitlab_client(client, token) as gl:
        project = await call(lambda: gl.projects.create({"name": "agents"}))
        agent = await call(lambda: project.cluster_agents.create({"name": "prod"}))
        dup = await error_of(lambda: project.cluster_agents.create({"name": "prod"}))
        bad = await error_of(lambda: project.cluster_agents.create({"name": "Prod_1"}))
        base = f"/projects/{project.id}/cluster_agents/{agent.id}/tokens"
        first = await call(lambda: gl.http_post(base, post_data={"name": "a", "description": "first"}))
        second = await call(lambda: gl.http_post(base, post_data={"name": "b"}))
        third = await error_of(lambda: gl.http_post(base, post_data={"name": "c"}))
        await call(lambda: gl.http_delete(f"{base}/{first['id']}"))
        listed = await call(lambda: gl.http_list(base, get_all=True))
        revoked = await call(lambda: gl.http_get(f"{base}/{first['id']}"))
        agents = await call(lambda: project.cluster_agents.list(get_all=True))
        await call(lambda: project.cluster_agents.delete(agent.id))
        gone = await error_of(lambda: project.cluster_agents.get(agent.id))
    assert (agent.name, agent.config_project["id"]) == ("prod", project.id)
    assert body_of(dup) == {"message": '400 Bad request - ["Name has already been taken"]'}
    assert bad.response_code == 400
    assert first["token"] != second["token"] and "token" not in listed[0]
    assert body_of(third) == {
        "message": "400 Bad request - An agent can have only two active tokens at a time"
    }
    assert [t["id"] for t in listed] == [second["id"]]
    assert revoked["status"] == "revoked"
    assert [a.id for a in agents] == [agent.id]
    assert (gone.response_code, body_of(gone)) == (404, {"message": "404 Not found"})
    assert await db.fetchval("SELECT count(*) FROM cluster_agent_tokens") == 0


async def test_broadcast_messages(client, db):
    _, token = await make_admin(db)
    with gitlab_client(client, token) as gl:
        message = await call(
            lambda: gl.broadcastmessages.create(
                {"message": "Upgrade tonight", "target_path": "platform/*", "target_access_levels": [30, 40]}
            )
        )
        message.message = "Upgrade at 22:00"
        await call(message.save)
        await call(lambda: gl.broadcastmessages.create({"message": "second"}))
        listed = await call(lambda: gl.broadcastmessages.list(get_all=True))
        await call(lambda: gl.broadcastmessages.delete(message.id))
        gone = await error_of(lambda: gl.broadcastmessages.get(message.id))
    assert (message.target_path, message.target_access_levels, message.active) == (
        "platform/*",
        [30, 40],
        True,
    )
    assert [m.message for m in listed] == ["second", "Upgrade at 22:00"]  # newest first
    assert (gone.response_code, body_of(gone)) == (404, {"message": "404 Not found"})
    # Reading them needs no token, as in GitLab.
    assert (await client.get("/api/v4/broadcast_messages")).status == 200


async def test_application_settings_take_effect_at_once(client, db):
    _, token = await make_admin(db)
    alice = await make_user(db)
    with gitlab_client(client, token) as gl:
        key = await call(
            lambda: gl.users.get(alice["id"]).keys.create({"title": "k", "key": ed25519_public_key()})
        )
        project = await call(
            lambda: gl.projects.create({"name": "p", "namespace_id": gl.users.get(alice["id"]).namespace_id})
        )
        status_before, _ = await _allowed(
            client, action="git-upload-pack", key_id=str(key.id), project=project.path_with_namespace + ".git"
        )
        settings = await call(gl.settings.get)
        settings.enabled_git_access_protocol = "http"
        await call(settings.save)
        shown = await call(gl.settings.get)
        bad = await error_of(
            lambda: gl.http_put("/application/settings", post_data={"email_confirmation_setting": "maybe"})
        )
    assert status_before == 200
    assert shown.enabled_git_access_protocol == "http"
    assert body_of(bad) == {"error": "email_confirmation_setting does not have a valid value"}
    status, body = await _allowed(
        client, action="git-upload-pack", key_id=str(key.id), project=project.path_with_namespace + ".git"
    )
    assert (status, body["message"]) == (401, "Git access over SSH is not allowed")


async def test_a_project_moved_into_a_less_visible_group_takes_the_groups_visibility(client, db):
    _, token = await make_admin(db)
    outsider = await make_user(db)
    with gitlab_client(client, token) as gl:
        hidden = await call(lambda: gl.groups.create({"name": "Hidden", "path": "hidden", "visibility": "private"}))
        inner = await call(lambda: gl.groups.create({"name": "Inner", "path": "inner", "visibility": "internal"}))
        public = await call(lambda: gl.projects.create({"name": "open", "visibility": "public"}))
        also_public = await call(lambda: gl.projects.create({"name": "also", "visibility": "public"}))
        private = await call(lambda: gl.projects.create({"name": "quiet", "visibility": "private"}))
        path = public.path_with_namespace + ".git"
        status, _ = await _allowed(client, action="git-upload-pack", project=path, user_id=str(outsider["id"]))
        assert status == 200  # anyone may pull a public project
        await call(lambda: public.transfer(hidden.id))
        await call(lambda: also_public.transfer(inner.id))
        await call(lambda: private.transfer(inner.id))
        moved = await call(lambda: gl.projects.get(public.id))
        lowered = await call(lambda: gl.projects.get(also_public.id))
        kept = await call(lambda: gl.projects.get(private.id))
    # Projects::TransferService lowers a project above its new group to the group's level only
    assert (moved.visibility, lowered.visibility, kept.visibility) == ("private", "internal", "private")
    # ... and so the outsider's pull, decided on the project's own level, is denied now
    status, body = await _allowed(
        client, action="git-upload-pack", project=moved.path_with_namespace + ".git", user_id=str(outsider["id"])
    )
    assert (status, body["status"]) == (404, False), body


async def test_a_group_cannot_be_hidden_below_its_projects_or_subgroups(client, db):
    _, token = await make_admin(db)
    with gitlab_client(client, token) as gl:
        top = await call(lambda: gl.groups.create({"name": "Top", "path": "top", "visibility": "public"}))
        await call(lambda: gl.projects.create({"name": "p", "namespace_id": top.id, "visibility": "public"}))
        await call(
            lambda: gl.groups.create({"name": "Sub", "path": "sub", "parent_id": top.id, "visibility": "internal"})
        )
        to_private = await error_of(lambda: gl.groups.update(top.id, {"visibility": "private"}))
        to_internal = await error_of(lambda: gl.groups.update(top.id, {"visibility": "internal"}))
        after = await call(lambda: gl.groups.get(top.id))
    assert (to_private.response_code, body_of(to_private)) == (
        400,
        {
            "message": {
                "visibility_level": [
                    "private is not allowed since this group contains projects with higher visibility.",
                    "private is not allowed since there are sub-groups with higher visibility.",
                ]
            }
        },
    )
    assert body_of(to_internal) == {
        "message": {
            "visibility_level": ["internal is not allowed since this group contains projects with higher visibility."]
        }
    }
    assert after.visibility == "public"  # nothing stored


async def test_a_deploy_keys_title_and_push_right_are_updated(client, db):
    _, token = await make_admin(db)
    with gitlab_client(client, token) as gl:
        one = await call(lambda: gl.projects.create({"name": "one"}))
        two = await call(lambda: gl.projects.create({"name": "two"}))
        key = await call(lambda: one.keys.create({"title": "ci", "key": ed25519_public_key()}))
        await call(lambda: two.keys.enable(key.id))
        pushing = await call(lambda: one.keys.update(key.id, {"can_push": True}))
        renamed = await call(lambda: one.keys.update(key.id, {"title": "deployer"}))
        stopped = await call(lambda: one.keys.update(key.id, {"can_push": False}))
        on_two = await call(lambda: two.keys.get(key.id))
        nothing = await error_of(lambda: one.keys.update(key.id, {}))
        blank = await error_of(lambda: one.keys.update(key.id, {"title": " "}))
        unknown = await error_of(lambda: one.keys.update(99999, {"can_push": True}))
    assert (pushing["can_push"], pushing["title"]) == (True, "ci")
    assert (renamed["can_push"], renamed["title"]) == (True, "deployer")
    assert stopped["can_push"] is False
    assert (on_two.title, on_two.can_push) == ("deployer", False)  # the title is the key's, can_push each project's
    assert (nothing.response_code, body_of(nothing)) == (
        400,
        {"error": "title, can_push are missing, at least one parameter must be provided"},
    )
    assert (blank.response_code, body_of(blank)) == (400, {"message": {"deploy_key.title": ["can't be blank"]}})
    assert (unknown.response_code, body_of(unknown)) == (404, {"message": "404 Deploy Key Not Found"})


async def test_projects_are_filtered_as_projectsfinder_filters_them(client, db):
    _, token = await make_admin(db)
    with gitlab_client(client, token) as gl:
        group = await call(lambda: gl.groups.create({"name": "G", "path": "g", "visibility": "public"}))
        mine = await call(lambda: gl.projects.create({"name": "mine", "visibility": "public"}))
        in_group = await call(lambda: gl.projects.create({"name": "team", "namespace_id": group.id}))
        other = await user_namespace_id(db, (await make_user(db, username="other"))["id"])
        elsewhere = await call(
            lambda: gl.projects.create({"name": "theirs", "namespace_id": other, "visibility": "internal"})
        )
        await call(lambda: gl.http_post(f"/projects/{in_group.id}/archive"))

        def ids(**filters):
            return {p.id for p in gl.projects.list(get_all=True, **filters)}

        archived = await call(lambda: ids(archived=True))
        active = await call(lambda: ids(archived=False))
        public = await call(lambda: ids(visibility="public"))
        internal = await call(lambda: ids(visibility="internal"))
        owned = await call(lambda: ids(owned=True))
        member = await call(lambda: ids(membership=True))
        everything = await call(ids)
        bad = await error_of(lambda: gl.projects.list(visibility="secret"))
    assert archived == {in_group.id} and active == {mine.id, elsewhere.id}
    assert public == {mine.id} and internal == {elsewhere.id}
    # the admin's personal project, and the group's whose owner it is; not another user's
    assert owned == member == {mine.id, in_group.id}
    assert everything == {mine.id, in_group.id, elsewhere.id}
    assert (bad.response_code, body_of(bad)) == (400, {"error": "visibility does not have a valid value"})
