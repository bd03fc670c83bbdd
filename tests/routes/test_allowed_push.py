"""POST /internal/allowed from Gitaly's pre-receive hook: real change lists, and the push deadline."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
from pathlib import Path

import asyncpg
import orjson
import pytest

from service.app import create_app
from service.config import Storage
from service.domain.repository import hashed_disk_path
from service.domain.branch_protection import LEGACY_LEVELS
from tests.factories import (
    add_member,
    enable_deploy_key,
    make_group,
    make_key,
    make_project,
    make_user,
    protect_branch,
    protect_tag,
    set_application_settings,
)
from tests.helpers import shell_headers

ALLOWED = "/api/v4/internal/allowed"
BLANK = "0" * 40
A = "a" * 40
B = "b" * 40


async def push(client, project, changes, *, protocol="ssh", env=None, **actor):
    body = {
        "action": "git-receive-pack",
        "gl_repository": f"project-{project['id']}",
        "project": f"/var/opt/gitlab/git-data/repositories/{project['id']}.git",
        "changes": changes,
        "protocol": protocol,
        **{k: str(v) for k, v in actor.items()},
    }
    if env is not None:
        body["env"] = orjson.dumps(env).decode()
    # a stream: aiohttp's client warns about bytes bodies over 1 MB (a long change list)
    resp = await client.post(ALLOWED, data=io.BytesIO(orjson.dumps(body)), headers=shell_headers())
    return resp.status, await resp.json()


@pytest.fixture
async def team(db):
    owner = await make_user(db)
    project = await make_project(db, owner=owner, default_branch="main")
    developer = await make_user(db)
    maintainer = await make_user(db)
    await add_member(db, developer, project, 30)
    await add_member(db, maintainer, project, 40)
    return {"project": project, "developer": developer, "maintainer": maintainer, "owner": owner}


async def test_unprotected_branch_and_several_lines(client, db, team):
    changes = f"{A} {B} refs/heads/feature\n{BLANK} {B} refs/heads/other\n"
    status, body = await push(client, team["project"], changes, user_id=team["developer"]["id"])
    assert status == 200 and body["status"] is True


async def test_protected_branch_push_levels(client, db, team):
    await protect_branch(db, team["project"], "main", push=[40], merge=[40])
    await protect_branch(db, team["project"], "release/*", push=[30], merge=[30])
    update_main = f"{A} {B} refs/heads/main"
    assert await push(client, team["project"], update_main, user_id=team["developer"]["id"]) == (
        401,
        {"status": False, "message": "You are not allowed to push code to protected branches on this project."},
    )
    assert (await push(client, team["project"], update_main, user_id=team["maintainer"]["id"]))[0] == 200
    # wildcard rule lets developers push release branches
    assert (await push(client, team["project"], f"{A} {B} refs/heads/release/1.0", user_id=team["developer"]["id"]))[0] == 200
    # the first failing line decides, whatever comes before it
    two = f"{A} {B} refs/heads/feature\n{update_main}\n"
    assert (await push(client, team["project"], two, user_id=team["developer"]["id"]))[0] == 401


async def test_wildcard_rules_against_long_branch_names_answer_at_once(client, db, team):
    """A regular expression for `*/*/*/*-rc` took seconds per 1,000-character name (backtracking),
    holding the worker's loop until gunicorn killed it; the push never got its answer."""
    await protect_branch(db, team["project"], "*/*/*/*-rc", push=[40], merge=[40])
    long_names = "\n".join(f"{BLANK} {B} refs/heads/{'a/' * 500}x{i}" for i in range(3))
    status, body = await asyncio.wait_for(push(client, team["project"], long_names, user_id=team["developer"]["id"]), 10)
    assert (status, body["status"]) == (200, True)
    protected = f"{BLANK} {B} refs/heads/{'a/' * 500}x-rc"
    assert await asyncio.wait_for(push(client, team["project"], protected, user_id=team["developer"]["id"]), 10) == (
        401, {"status": False, "message": "You are not allowed to create protected branches on this project."}
    )


async def test_no_one_may_push_and_specific_users(client, db, team):
    await protect_branch(db, team["project"], "main", push=[0], push_users=[team["developer"]["id"]])
    assert (await push(client, team["project"], f"{A} {B} refs/heads/main", user_id=team["maintainer"]["id"]))[0] == 401
    assert (await push(client, team["project"], f"{A} {B} refs/heads/main", user_id=team["developer"]["id"]))[0] == 200


async def test_branch_rules(client, db, team):
    dev = {"user_id": team["maintainer"]["id"]}
    await protect_branch(db, team["project"], "stable")
    cases = [
        (f"{A} {BLANK} refs/heads/main", "The default branch of a project cannot be deleted."),
        (f"{BLANK} {B} refs/heads/{'c' * 40}", "You cannot create a branch with a 40-character hexadecimal branch name."),
        (f"{A} {BLANK} refs/heads/stable", "You can only delete protected branches using the web interface."),
    ]
    for changes, message in cases:
        assert await push(client, team["project"], changes, **dev) == (401, {"status": False, "message": message})
    assert (await push(client, team["project"], f"{A} {BLANK} refs/heads/stable", protocol="web", **dev))[0] == 200
    assert await push(client, team["project"], f"{A} {BLANK} refs/heads/stable", protocol="web", user_id=team["developer"]["id"]) == (
        401,
        {
            "status": False,
            "message": "You are not allowed to delete protected branches from this project. "
            "Only a project maintainer or owner can delete a protected branch.",
        },
    )
    # a 40-hex name may still be deleted
    assert (await push(client, team["project"], f"{A} {BLANK} refs/heads/{'c' * 40}", **dev))[0] == 200


async def test_creating_protected_branches(client, db, team):
    await protect_branch(db, team["project"], "prod-*", push=[40], merge=[30])
    create = f"{BLANK} {B} refs/heads/prod-1"
    reporter = await make_user(db)
    await add_member(db, reporter, team["project"], 20)
    assert (await push(client, team["project"], create, user_id=team["maintainer"]["id"]))[0] == 200
    assert await push(client, team["project"], create, user_id=team["developer"]["id"]) == (
        401,
        {"status": False, "message": "You can only create protected branches using the web interface and API."},
    )
    assert (await push(client, team["project"], create, user_id=reporter["id"]))[0] == 401


async def test_the_first_push_into_an_empty_repository_takes_the_push_checks(client, db, team):
    """BranchCheck: in an empty repository (no default branch yet) a new protected branch is checked
    as a push, and its refusal tells the pusher that a default branch does not exist yet."""
    owner = team["owner"]
    project = await make_project(db, owner=owner, default_branch=None)
    developer = await make_user(db)
    await add_member(db, developer, project, 30)
    await protect_branch(db, project, "main", push=[40], merge=[30])
    create_main = f"{BLANK} {B} refs/heads/main"
    members_url = f"http://gitlab.test/{project['full_path']}/-/project_members"
    message = (
        f"A default branch (e.g. main) does not yet exist for {project['full_path']}\n"
        f"Ask a project Owner or Maintainer to create a default branch:\n\n  {members_url}\n"
    )
    assert await push(client, project, create_main, user_id=developer["id"]) == (401, {"status": False, "message": message})
    # the creation checks would have let a merger create it from the web; the push checks do not
    assert (await push(client, project, create_main, protocol="web", user_id=developer["id"]))[0] == 401
    assert (await push(client, project, create_main, user_id=owner["id"]))[0] == 200


async def test_default_branch_protection_decides_the_first_push_into_an_empty_project(client, db, team):
    """ProtectedBranch.protected?: in an empty project under default branch protection every branch
    is protected, rule or none; maintainers push, a developer only when the setting lets developers
    push (first); a group's own setting overrides the instance's, a personal namespace never has one."""
    owner = team["owner"]
    project = await make_project(db, owner=owner, default_branch=None)
    developer, maintainer = await make_user(db), await make_user(db)
    await add_member(db, developer, project, 30)
    await add_member(db, maintainer, project, 40)
    members_url = f"http://gitlab.test/{project['full_path']}/-/project_members"
    not_yet = (
        f"A default branch (e.g. main) does not yet exist for {project['full_path']}\n"
        f"Ask a project Owner or Maintainer to create a default branch:\n\n  {members_url}\n"
    )
    for branch in ("main", "feature"):  # GitLab's default: fully protected, whatever the branch's name
        create = f"{BLANK} {B} refs/heads/{branch}"
        assert await push(client, project, create, user_id=developer["id"]) == (401, {"status": False, "message": not_yet})
        assert (await push(client, project, create, user_id=maintainer["id"]))[0] == 200
    create_main = f"{BLANK} {B} refs/heads/main"
    for level, developer_pushes in ((0, True), (1, True), (2, False), (3, False), (4, True)):
        await set_application_settings(db, default_branch_protection_defaults=orjson.dumps(LEGACY_LEVELS[level]).decode())
        assert (await push(client, project, create_main, user_id=developer["id"]))[0] == (200 if developer_pushes else 401), level
    # developer_can_initial_push is for developers exactly: a reporter still may not push code
    reporter = await make_user(db)
    await add_member(db, reporter, project, 20)
    assert (await push(client, project, create_main, user_id=reporter["id"]))[0] == 401

    await set_application_settings(db, default_branch_protection_defaults=orjson.dumps(LEGACY_LEVELS[2]).decode())
    group = await make_group(db)
    in_group = await make_project(db, group, default_branch=None)
    await add_member(db, developer, in_group, 30)
    assert (await push(client, in_group, create_main, user_id=developer["id"]))[0] == 401
    await db.execute(
        "UPDATE namespaces SET default_branch_protection_defaults = $2 WHERE id = $1",
        group["id"],
        orjson.dumps(LEGACY_LEVELS[0]).decode(),
    )
    assert (await push(client, in_group, create_main, user_id=developer["id"]))[0] == 200
    # once the project has its default branch, only its protected-branch rules count
    assert (await push(client, team["project"], f"{A} {B} refs/heads/feature", user_id=team["developer"]["id"]))[0] == 200


async def test_tag_rules(client, db, team):
    project = team["project"]
    await protect_tag(db, project, "v*", create=[40])
    dev, maint = {"user_id": team["developer"]["id"]}, {"user_id": team["maintainer"]["id"]}
    cases = [
        (dev, f"{BLANK} {B} refs/tags/v1.0", "You are not allowed to create this tag as it is protected."),
        (maint, f"{A} {B} refs/tags/v1.0", "Protected tags cannot be updated."),
        (maint, f"{A} {BLANK} refs/tags/v1.0", "You can only delete protected tags using the web interface."),
        (dev, f"{BLANK} {B} refs/tags/main", "You cannot use default branch name to create a tag"),
        (dev, f"{BLANK} {B} refs/tags/{'d' * 40}", "You cannot create a tag with a SHA-1 or SHA-256 tag name."),
        # TagCheck's STARTS_WITH_SHA_REGEX: a name that starts with one is refused too
        (dev, f"{BLANK} {B} refs/tags/{'c' * 40}-rc1", "You cannot create a tag with a SHA-1 or SHA-256 tag name."),
        (dev, f"{BLANK} {B} refs/tags/refs/tags/x", "You cannot create a tag with a prohibited pattern."),
        (dev, f"{BLANK} {B} refs/tags/bad..name", "You cannot create a tag with a prohibited pattern."),
        # prohibited_tag_checks skip only deletions: moving such a tag is refused too
        (dev, f"{A} {B} refs/tags/{'c' * 40}", "You cannot create a tag with a SHA-1 or SHA-256 tag name."),
    ]
    for actor, changes, message in cases:
        assert await push(client, project, changes, **actor) == (401, {"status": False, "message": message}), changes
    assert (await push(client, project, f"{BLANK} {B} refs/tags/v1.0", **maint))[0] == 200
    assert (await push(client, project, f"{BLANK} {B} refs/tags/nightly", **dev))[0] == 200
    assert (await push(client, project, f"{A} {B} refs/tags/nightly", **dev))[0] == 200  # developers have admin_tag


async def test_deploy_keys_on_protected_branches(client, db, team):
    """DeployKeyAccess checks a key's changes as its creator: the creator's role counts against a
    rule's roles, and a key listed in the rule passes while its creator is a member."""
    project = team["project"]
    key, _ = await make_key(db, team["developer"], deploy_key=True)
    listed, _ = await make_key(db, team["developer"], deploy_key=True)
    by_maintainer, _ = await make_key(db, team["maintainer"], deploy_key=True)
    for each in (key, listed, by_maintainer):
        await enable_deploy_key(db, each, project, can_push=True)
    await protect_branch(db, project, "main", push=[40], push_deploy_keys=[listed["id"]])
    assert (await push(client, project, f"{A} {B} refs/heads/feature", key_id=key["id"]))[0] == 200
    assert await push(client, project, f"{A} {B} refs/heads/main", key_id=key["id"]) == (
        401,
        {"status": False, "message": "You are not allowed to push code to protected branches on this project."},
    )
    assert (await push(client, project, f"{A} {B} refs/heads/main", key_id=listed["id"]))[0] == 200
    assert (await push(client, project, f"{A} {B} refs/heads/main", key_id=by_maintainer["id"]))[0] == 200


PUSH_CODE = (401, {"status": False, "message": "You are not allowed to push code to this project."})
PROTECTED = (401, {"status": False, "message": "You are not allowed to push code to protected branches on this project."})


async def test_a_role_rule_takes_a_membership_and_an_administrator_has_none_by_being_one(client, db, team):
    """role_access_allowed? asks max_member_access: an administrator who is not a member passes no
    role rule, nor does a deploy key that administrator added (the admin API's keys all have an
    administrator as creator); only an empty repository lets administrators in regardless."""
    project = team["project"]
    admin = await make_user(db, admin=True)
    key, _ = await make_key(db, admin, deploy_key=True)
    await enable_deploy_key(db, key, project, can_push=True)
    await protect_branch(db, project, "main", push=[40], merge=[40])
    await protect_tag(db, project, "v*", create=[40])
    update_main = f"{A} {B} refs/heads/main"
    assert await push(client, project, update_main, user_id=admin["id"]) == PROTECTED
    assert await push(client, project, update_main, key_id=key["id"]) == PROTECTED
    assert await push(client, project, f"{BLANK} {B} refs/tags/v1", key_id=key["id"]) == (
        401,
        {"status": False, "message": "You are not allowed to create this tag as it is protected."},
    )
    await add_member(db, admin, project, 40)
    assert (await push(client, project, update_main, user_id=admin["id"]))[0] == 200
    assert (await push(client, project, update_main, key_id=key["id"]))[0] == 200

    empty = await make_project(db, owner=team["owner"], default_branch=None)
    await protect_branch(db, empty, "main", push=[40], merge=[40])
    outsider = await make_user(db, admin=True)
    assert (await push(client, empty, f"{BLANK} {B} refs/heads/main", user_id=outsider["id"]))[0] == 200


async def test_a_user_rule_takes_that_user_as_a_member(client, db):
    """user_access_allowed?: the named user, while a member; a deploy key whose creator is named but
    not a member of the (public) project does not pass."""
    owner = await make_user(db)
    project = await make_project(db, owner=owner, visibility_level=20, default_branch="main")
    creator = await make_user(db)
    key, _ = await make_key(db, creator, deploy_key=True)
    await enable_deploy_key(db, key, project, can_push=True)
    await protect_branch(db, project, "main", push=[40], push_users=[creator["id"]])
    update_main = f"{A} {B} refs/heads/main"
    assert (await push(client, project, f"{A} {B} refs/heads/feature", key_id=key["id"]))[0] == 200
    assert await push(client, project, update_main, key_id=key["id"]) == PROTECTED
    await add_member(db, creator, project, 10)
    assert (await push(client, project, update_main, key_id=key["id"]))[0] == 200


async def test_a_deploy_key_stops_pushing_when_its_creator_is_blocked_removed_or_deleted(client, db, team):
    """GitLab's deploy keys "are deactivated when the user is blocked or removed" (UserAccess
    #can_access_git? and DeployKeyAccess#can_collaborate? of the creator); cloning goes on."""
    project = team["project"]  # private
    creator = await make_user(db)
    await add_member(db, creator, project, 40)
    key, _ = await make_key(db, creator, deploy_key=True)
    await enable_deploy_key(db, key, project, can_push=True)
    feature = f"{A} {B} refs/heads/feature"
    assert (await push(client, project, feature, key_id=key["id"]))[0] == 200

    await db.execute("UPDATE users SET state = 'blocked' WHERE id = $1", creator["id"])
    assert await push(client, project, feature, key_id=key["id"]) == PUSH_CODE
    await db.execute("UPDATE users SET state = 'deactivated' WHERE id = $1", creator["id"])
    assert await push(client, project, feature, key_id=key["id"]) == PUSH_CODE
    await db.execute("UPDATE users SET state = 'active' WHERE id = $1", creator["id"])
    assert (await push(client, project, feature, key_id=key["id"]))[0] == 200

    await db.execute("DELETE FROM members WHERE user_id = $1", creator["id"])  # no longer reads the project
    assert await push(client, project, feature, key_id=key["id"]) == PUSH_CODE
    await db.execute("UPDATE keys SET user_id = NULL WHERE id = $1", key["id"])  # the creator deleted
    assert await push(client, project, feature, key_id=key["id"]) == PUSH_CODE
    clone = {"action": "git-upload-pack", "project": project["full_path"], "changes": "_any", "protocol": "ssh"}
    resp = await client.post(ALLOWED, json={**clone, "key_id": str(key["id"])}, headers=shell_headers())
    assert resp.status == 200


async def test_deploy_keys_change_existing_tags_with_their_creators_admin_tag(client, db, team):
    """TagCheck: changing an existing tag takes admin_tag, a deploy key's creator's (developers up)."""
    project = team["project"]
    reporter = await make_user(db)
    await add_member(db, reporter, project, 20)
    by_developer, _ = await make_key(db, team["developer"], deploy_key=True)
    by_reporter, _ = await make_key(db, reporter, deploy_key=True)
    for each in (by_developer, by_reporter):
        await enable_deploy_key(db, each, project, can_push=True)
    move_tag = f"{A} {B} refs/tags/v1"
    assert (await push(client, project, move_tag, key_id=by_developer["id"]))[0] == 200
    assert (await push(client, project, f"{A} {BLANK} refs/tags/v1", key_id=by_developer["id"]))[0] == 200
    # a reporter's key pushes branches (DeployKeyAccess#can_collaborate? asks the key's write access
    # and the creator's read access), but a tag stays where it is
    assert (await push(client, project, f"{A} {B} refs/heads/feature", key_id=by_reporter["id"]))[0] == 200
    assert await push(client, project, move_tag, key_id=by_reporter["id"]) == (
        401,
        {"status": False, "message": "You are not allowed to change existing tags on this project."},
    )


async def test_malformed_change_lines_are_refused(client, db, team):
    status, body = await push(client, team["project"], "not a change line", user_id=team["developer"]["id"])
    assert status == 401 and body["status"] is False


# --- questions for the repository itself ----------------------------------------------------------


def git(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    full_env = {**os.environ, "GIT_DIR": str(repo), "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e",
                "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e", **(env or {})}
    return subprocess.run(["git", *args], env=full_env, check=True, capture_output=True, text=True).stdout.strip()


def commit(repo: Path, parent: str | None, message: str, env: dict[str, str] | None = None) -> str:
    tree = git(repo, "write-tree", env={**(env or {}), "GIT_INDEX_FILE": str(repo / "empty-index")})
    args = ["commit-tree", tree, "-m", message] + (["-p", parent] if parent else [])
    return git(repo, *args, env=env)


@pytest.fixture
async def storage_client(aiohttp_client, settings, secrets, db, redis, tmp_path):
    storage = Storage("default", "unix:/tmp/gitaly-test.socket", None, tmp_path / "repositories")
    app = create_app(settings.with_overrides(storages={"default": storage}), secrets)
    return await aiohttp_client(app), storage.path


async def test_force_push_detection_with_quarantined_objects(storage_client, db, team):
    client, root = storage_client
    project = team["project"]
    repo = root / (hashed_disk_path(project["id"]) + ".git")
    repo.parent.mkdir(parents=True)
    subprocess.run(["git", "init", "--bare", "-q", str(repo)], check=True)
    base = commit(repo, None, "base")
    child = commit(repo, base, "child")
    sibling = commit(repo, None, "rewritten history")
    # the pushed commit exists only in Gitaly's quarantine directory, as during a real pre-receive
    quarantine = repo / "objects" / "incoming-test"
    quarantine.mkdir()
    qenv = {"GIT_OBJECT_DIRECTORY": str(quarantine), "GIT_ALTERNATE_OBJECT_DIRECTORIES": str(repo / "objects")}
    quarantined = commit(repo, None, "quarantined rewrite", env=qenv)
    hook_env = {"GIT_OBJECT_DIRECTORY_RELATIVE": "objects/incoming-test", "GIT_ALTERNATE_OBJECT_DIRECTORIES_RELATIVE": ["objects"]}

    await protect_branch(db, project, "main", push=[40])
    maint = {"user_id": team["maintainer"]["id"]}
    forced = "You are not allowed to force push code to a protected branch on this project."
    assert (await push(client, project, f"{base} {child} refs/heads/main", **maint))[0] == 200  # fast-forward
    assert await push(client, project, f"{child} {sibling} refs/heads/main", **maint) == (401, {"status": False, "message": forced})
    assert await push(client, project, f"{child} {quarantined} refs/heads/main", env=hook_env, **maint) == (
        401, {"status": False, "message": forced},
    )
    # unprotected branches may be rewritten
    assert (await push(client, project, f"{child} {sibling} refs/heads/topic", **maint))[0] == 200
    await db.execute("UPDATE protected_branches SET allow_force_push = true WHERE project_id = $1", project["id"])
    assert (await push(client, project, f"{child} {sibling} refs/heads/main", **maint))[0] == 200


# --- the 50-second limit -------------------------------------------------------------------------------


async def test_deadline_answers_503_with_timing_and_cancels_the_statement(aiohttp_client, settings, secrets, db, redis, team, backends):
    client = await aiohttp_client(create_app(settings.with_overrides(allowed_timeout=0.5), secrets))
    blocker = await asyncpg.connect(backends.database_url)
    try:
        transaction = blocker.transaction()
        await transaction.start()
        # a slow step: the protected-branch lookup waits behind this lock
        await blocker.execute("LOCK TABLE protected_branches IN ACCESS EXCLUSIVE MODE")
        started = asyncio.get_running_loop().time()
        status, body = await push(client, team["project"], f"{A} {B} refs/heads/main", user_id=team["developer"]["id"])
        elapsed = asyncio.get_running_loop().time() - started
        assert status == 503
        assert body["status"] is False
        lines = body["message"].split("\n")
        assert lines[:3] == ["Push operation timed out", "", "Timing information for debugging purposes:"]
        assert lines[3].startswith("Loading protected branches and tags... (cancelled after ")
        assert 0.5 <= elapsed < 3
        # the statement was cancelled on the server, not left waiting for the lock
        for _ in range(50):
            waiting = await db.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'gitlab-internal-api'"
                " AND state = 'active' AND wait_event_type = 'Lock'"
            )
            if waiting == 0:
                break
            await asyncio.sleep(0.05)
        assert waiting == 0
        await transaction.rollback()
    finally:
        await blocker.close()
    # the worker and its connections are free again
    status, _ = await push(client, team["project"], f"{A} {B} refs/heads/feature", user_id=team["developer"]["id"])
    assert status == 200


async def test_the_deadline_also_ends_a_long_change_list(aiohttp_client, settings, secrets, db, redis, team):
    """Checking 100,000 changes is CPU, not I/O: the checks give the loop a turn every few hundred
    changes, so the deadline can end them (and the worker's other requests are answered meanwhile)."""
    client = await aiohttp_client(create_app(settings.with_overrides(allowed_timeout=0.05), secrets))
    await protect_branch(db, team["project"], "release-*", push=[40], merge=[40])
    changes = "\n".join(f"{BLANK} {B} refs/heads/feature-{i}" for i in range(100_000))
    status, body = await push(client, team["project"], changes, user_id=team["developer"]["id"])
    assert status == 503
    lines = body["message"].split("\n")
    assert lines[:3] == ["Push operation timed out", "", "Timing information for debugging purposes:"]
    checked = [line for line in lines if line.startswith("Running checks for ref: ")]
    assert checked[0] == "Running checks for ref: feature-0"
    assert len(checked) < 100_000  # stopped within the list


async def test_any_changes_are_not_subject_to_the_deadline(aiohttp_client, settings, secrets, db, redis, team, backends):
    client = await aiohttp_client(create_app(settings.with_overrides(allowed_timeout=0.2), secrets))
    blocker = await asyncpg.connect(backends.database_url)
    try:
        async with blocker.transaction():
            await blocker.execute("LOCK TABLE protected_branches IN ACCESS EXCLUSIVE MODE")
            status, _ = await push(client, team["project"], "_any", user_id=team["developer"]["id"])
            assert status == 200
    finally:
        await blocker.close()
