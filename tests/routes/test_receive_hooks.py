"""POST /internal/pre_receive and /internal/post_receive: Redis reference counters and push messages."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import orjson

from service.domain.branch_protection import LEGACY_LEVELS
from tests.factories import add_member, make_group, make_project, make_user, protect_branch, set_application_settings
from tests.helpers import shell_headers

INTERNAL = "/api/v4/internal"
BLANK = "0" * 40
A, B = "a" * 40, "b" * 40
COUNTER = "git-receive-pack-reference-counter:{project-7}"


async def pre_receive(client, gl_repository="project-7"):
    resp = await client.post(f"{INTERNAL}/pre_receive", json={"gl_repository": gl_repository}, headers=shell_headers())
    assert resp.status == 200 and resp.content_type == "application/json"
    return await resp.json()


async def post_receive(client, **body):
    body = {"gl_repository": "project-7", "identifier": "user-1", "changes": "", "push_options": None, **body}
    resp = await client.post(f"{INTERNAL}/post_receive", json=body, headers=shell_headers())
    assert resp.status == 200 and resp.content_type == "application/json", await resp.text()
    return await resp.json()


async def test_counter_increase_expires_and_decrease_deletes_below_zero(client, redis):
    assert await pre_receive(client) == {"reference_counter_increased": True}
    assert await redis.get(COUNTER) == "1"
    assert 590 <= await redis.ttl(COUNTER) <= 600
    await pre_receive(client)
    assert await redis.get(COUNTER) == "2"
    assert (await post_receive(client))["reference_counter_decreased"] is True
    assert await redis.get(COUNTER) == "1"
    await post_receive(client)
    assert await redis.get(COUNTER) == "0"
    await post_receive(client)  # below zero: the key goes away rather than staying negative
    assert await redis.exists(COUNTER) == 0


async def test_two_hundred_concurrent_pushes_leave_every_counter_at_zero(client, redis):
    repositories = [f"project-{n}" for n in range(1, 11)]

    async def one_push(gl_repository: str) -> None:
        assert (await pre_receive(client, gl_repository))["reference_counter_increased"] is True
        await asyncio.sleep(0)
        assert (await post_receive(client, gl_repository=gl_repository))["reference_counter_decreased"] is True

    await asyncio.gather(*(one_push(repositories[n % 10]) for n in range(200)))
    for gl_repository in repositories:
        assert await redis.get(f"git-receive-pack-reference-counter:{{{gl_repository}}}") == "0"


async def test_redis_failure_answers_false_not_500(aiohttp_client, settings, secrets, db, redis):
    """Redis going away mid-flight: the hooks answer false (Gitaly then refuses the push), never 500."""
    from service import app_keys
    from service.app import create_app
    from service.domain.reference_counter import ReferenceCounter

    app = create_app(settings, secrets)
    from service.redis_store import create_store

    unreachable = create_store("redis://127.0.0.1:1/0", timeout=0.5)

    async def point_counter_at_a_dead_server(app):  # runs after the real wiring at start-up
        app[app_keys.REFERENCE_COUNTER] = ReferenceCounter(unreachable)

    app.on_startup.append(point_counter_at_a_dead_server)
    client = await aiohttp_client(app)
    try:
        assert await pre_receive(client) == {"reference_counter_increased": False}
        assert (await post_receive(client))["reference_counter_decreased"] is False
    finally:
        await unreachable.close()


async def test_post_receive_messages(client, db, redis):
    user = await make_user(db)
    project = await make_project(db, owner=user, default_branch="main")
    gl_repository = f"project-{project['id']}"
    await db.execute(
        "INSERT INTO merge_requests (iid, target_project_id, source_project_id, source_branch, target_branch)"
        " VALUES (3, $1, $1, 'has-mr', 'main')",
        project["id"],
    )
    await db.execute(
        "INSERT INTO broadcast_messages (message, starts_at, ends_at) VALUES ('Maintenance tonight', $1, $2)",
        datetime.now(timezone.utc) - timedelta(hours=1),
        datetime.now(timezone.utc) + timedelta(hours=1),
    )
    await redis.set(f"redirect_namespace:{{{gl_repository}}}:{user['id']}", "Project 'a/b' was moved to 'c/d'.", ex=300)
    await redis.set(f"project_created:{{{gl_repository}}}:{user['id']}", "The private project was created.", ex=300)
    changes = (
        f"{A} {B} refs/heads/main\n"
        f"{A} {B} refs/heads/feature/x\n"
        f"{A} {B} refs/heads/has-mr\n"
        f"{A} {BLANK} refs/heads/gone\n"
        f"{BLANK} {B} refs/tags/v1\n"
    )
    body = await post_receive(client, gl_repository=gl_repository, identifier=f"user-{user['id']}", changes=changes)
    path = project["full_path"]
    assert body["messages"] == [
        {"message": "Maintenance tonight", "type": "alert"},
        {
            "message": "To create a merge request for feature/x, visit:\n"
            f"  http://gitlab.test/{path}/-/merge_requests/new?merge_request%5Bsource_branch%5D=feature%2Fx",
            "type": "basic",
        },
        {"message": f"View merge request for has-mr:\n  http://gitlab.test/{path}/-/merge_requests/3", "type": "basic"},
        {"message": "Project 'a/b' was moved to 'c/d'.", "type": "basic"},
        {"message": "The private project was created.", "type": "basic"},
    ]
    # the notices are shown once
    again = await post_receive(client, gl_repository=gl_repository, identifier=f"user-{user['id']}", changes="")
    assert again["messages"] == [{"message": "Maintenance tonight", "type": "alert"}]


async def test_broadcast_targeting_and_disabled_links(client, db):
    user = await make_user(db)
    project = await make_project(db, owner=user, printing_merge_request_link_enabled=False)
    now = datetime.now(timezone.utc)
    window = (now - timedelta(hours=1), now + timedelta(hours=1))
    await db.execute("INSERT INTO broadcast_messages (message, starts_at, ends_at) VALUES ('everyone', $1, $2)", *window)
    await db.execute(
        "INSERT INTO broadcast_messages (message, starts_at, ends_at, target_path) VALUES ('this group', $1, $2, $3)",
        *window,
        f"{user['username']}/*",
    )
    await db.execute(
        "INSERT INTO broadcast_messages (message, starts_at, ends_at, target_access_levels) VALUES ('reporters', $1, $2, '{20}')",
        *window,
    )
    await db.execute(
        "INSERT INTO broadcast_messages (message, starts_at, ends_at, show_in_cli) VALUES ('web only', $1, $2, false)", *window
    )
    body = await post_receive(
        client, gl_repository=f"project-{project['id']}", identifier=f"user-{user['id']}", changes=f"{A} {B} refs/heads/topic\n"
    )
    assert body["messages"] == [{"message": "this group", "type": "alert"}]


async def test_identifiers_and_unknown_repositories(client, db):
    user = await make_user(db)
    project = await make_project(db, owner=user)
    for identifier in ("key-999", "username-nobody", "garbage", None):
        body = await post_receive(client, gl_repository=f"project-{project['id']}", identifier=identifier)
        assert body["reference_counter_decreased"] is True
    body = await post_receive(client, gl_repository="project-424242", identifier=f"user-{user['id']}", changes=f"{A} {B} refs/heads/x")
    assert body == {"messages": [], "reference_counter_decreased": True}
    resp = await client.post(f"{INTERNAL}/post_receive", json={"gl_repository": "weird-1"}, headers=shell_headers())
    assert resp.status == 400


async def test_first_push_gives_an_empty_project_its_default_branch(client, db):
    user = await make_user(db)
    member = await make_user(db)
    project = await make_project(db, owner=user, default_branch=None)
    await add_member(db, member, project, 30)
    changes = f"{BLANK} {A} refs/heads/develop\n{BLANK} {B} refs/heads/main\n"
    body = await post_receive(client, gl_repository=f"project-{project['id']}", identifier=f"user-{member['id']}", changes=changes)
    assert await db.fetchval("SELECT default_branch FROM projects WHERE id = $1", project["id"]) == "main"
    assert [m["message"].split(",")[0] for m in body["messages"]] == ["To create a merge request for develop"]


async def test_the_default_branch_a_first_push_gives_is_protected_as_the_setting_says(client, db):
    """ProtectDefaultBranchService: GitLab's default protects it fully (maintainers push and merge,
    no force push); "not protected" leaves it; a group's own setting applies to its projects; a rule
    that already covers the branch (a wildcard) is left alone; GitLab's allowed check then reads it."""
    user = await make_user(db)

    async def first_push(project: dict) -> list[tuple]:
        changes = f"{BLANK} {A} refs/heads/main\n"
        await post_receive(client, gl_repository=f"project-{project['id']}", identifier=f"user-{user['id']}", changes=changes)
        return [
            tuple(r)
            for r in await db.fetch(
                "SELECT pb.name, pb.allow_force_push, al.kind, al.access_level FROM protected_branches pb"
                " JOIN protected_branch_access_levels al ON al.protected_branch_id = pb.id"
                " WHERE pb.project_id = $1 ORDER BY pb.name, al.kind",
                project["id"],
            )
        ]

    fully = await make_project(db, owner=user, default_branch=None)
    assert await first_push(fully) == [("main", False, "merge", 40), ("main", False, "push", 40)]
    developer = await make_user(db)
    await add_member(db, developer, fully, 30)
    resp = await client.post(
        "/api/v4/internal/allowed",
        json={"action": "git-receive-pack", "gl_repository": f"project-{fully['id']}", "project": fully["full_path"],
              "changes": f"{A} {B} refs/heads/main", "protocol": "ssh", "user_id": str(developer["id"])},
        headers=shell_headers(),
    )
    assert (resp.status, (await resp.json())["message"]) == (
        401, "You are not allowed to push code to protected branches on this project."
    )

    await set_application_settings(db, default_branch_protection_defaults=orjson.dumps(LEGACY_LEVELS[0]).decode())
    assert await first_push(await make_project(db, owner=user, default_branch=None)) == []
    group = await make_group(db)
    await db.execute(
        "UPDATE namespaces SET default_branch_protection_defaults = $2 WHERE id = $1",
        group["id"],
        orjson.dumps({**LEGACY_LEVELS[1], "allow_force_push": True}).decode(),
    )
    assert await first_push(await make_project(db, group, default_branch=None)) == [
        ("main", True, "merge", 40),
        ("main", True, "push", 30),
    ]
    await set_application_settings(db, default_branch_protection_defaults=orjson.dumps(LEGACY_LEVELS[2]).decode())
    # a default branch set before it existed (a README project's): the push that creates it protects it
    preset = await make_project(db, owner=user, default_branch="main")
    assert await first_push(preset) == [("main", False, "merge", 40), ("main", False, "push", 40)]
    covered = await make_project(db, owner=user, default_branch=None)
    await protect_branch(db, covered, "ma*", push=[30])
    assert [rule[0] for rule in await first_push(covered)] == ["ma*", "ma*"]  # no rule of its own for main


async def test_post_receive_decreases_even_with_a_malformed_client_context(client, redis):
    await pre_receive(client)
    body = await post_receive(client, gitaly_client_context_bin="%%% not base64")
    assert body["reference_counter_decreased"] is True
    assert await redis.get(COUNTER) == "0"
