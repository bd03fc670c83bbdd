"""The PostReceive job's planning and payloads against GitLab's: the hooks limit per kind of change
(Git::ProcessRefChangesService), ref_protected (Project#protected_for?), Commit#hook_attrs,
PushEventPayloadService#commit_title, user_email, tag messages as Gitaly gives them and the commits
of a new branch (Git::BranchHooksService).

Jobs run directly (no worker, no receiver): a delivery is a web_hook_deliveries row with its payload.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import web

from service import app_keys
from service.config import Storage
from service.domain.push_jobs import PostReceiveJob, PushDeps, hook_timestamp, run_post_receive_job
from service.domain.repository import RepositoryInspector
from tests.admin_helpers import make_admin
from tests.git_repos import git, repositories
from tests.factories import make_project

BLANK = "0" * 40
A, B, C = "a" * 40, "b" * 40, "c" * 40


def deps_for(app: web.Application, storage: Path | None = None) -> PushDeps:
    """The app's pool and URLs; with `storage`, repositories read from that directory."""
    repositories = app[app_keys.REPOSITORIES]
    if storage is not None:
        repositories = RepositoryInspector(
            {"default": Storage("default", "unix:/tmp/gitaly-test.socket", None, storage)}
        )
    return PushDeps(app[app_keys.DB_POOL], repositories, app[app_keys.URLS])


async def add_hook(db: asyncpg.Connection, project: asyncpg.Record, *, tags: bool = True) -> None:
    await db.execute(
        "INSERT INTO web_hooks (type, project_id, url, push_events, tag_push_events)"
        " VALUES ('ProjectHook', $1, 'http://hooks.example/push', true, $2)",
        project["id"],
        tags,
    )


async def run_job(
    deps: PushDeps, project: asyncpg.Record, user: asyncpg.Record, changes: list[str], job_id: int = 1
) -> list[dict[str, Any]]:
    """Runs one job; the payloads of the deliveries it created, in order."""
    job = PostReceiveJob(f"project-{project['id']}", f"user-{user['id']}", "\n".join(changes))
    await run_post_receive_job(deps, job_id, job)
    async with deps.pool.acquire() as conn:
        stored = await conn.fetch(
            "SELECT payload::text FROM web_hook_deliveries WHERE delivery_key LIKE $1 ORDER BY id", f"{job_id}:%"
        )
    return [json.loads(row["payload"]) for row in stored]


async def events(db: asyncpg.Connection) -> list[tuple[Any, ...]]:
    return [
        tuple(row)
        for row in await db.fetch(
            "SELECT push_action, ref_type, ref, ref_count, commit_count, commit_title FROM events ORDER BY id"
        )
    ]


def commit(work: Path, message: str, files: dict[str, str], **env: str) -> str:
    for name, text in files.items():
        (work / name).write_text(text)
    git("add", "-A", cwd=work)
    git("commit", "-q", "--allow-empty", "-m", message, cwd=work, **env)
    return git("rev-parse", "HEAD", cwd=work)


# --- 1. the hooks limit counts the refs of one kind of change -------------------------------------


async def test_hooks_limit_is_per_kind_and_action_as_gitlabs_process_ref_changes(client, app, db):
    admin, _ = await make_admin(db)
    project = await make_project(db, owner=admin)
    await add_hook(db, project)
    deps = deps_for(app)

    # two branch updates and two new tags: two groups of 2, each under the limit (listed tags first:
    # GitLab still handles the branches' groups first)
    payloads = await run_job(
        deps,
        project,
        admin,
        [f"{BLANK} {C} refs/tags/t1", f"{BLANK} {C} refs/tags/t2", f"{A} {B} refs/heads/x", f"{A} {B} refs/heads/y"],
        job_id=1,
    )
    assert [(p["object_kind"], p["ref"]) for p in payloads] == [
        ("push", "refs/heads/x"),
        ("push", "refs/heads/y"),
        ("tag_push", "refs/tags/t1"),
        ("tag_push", "refs/tags/t2"),
    ]
    assert [e[:3] for e in await events(db)] == [
        ("pushed", "branch", "x"),
        ("pushed", "branch", "y"),
        ("created", "tag", "t1"),
        ("created", "tag", "t2"),
    ]

    # one new branch and three updated ones: groups of 1 and 3
    payloads = await run_job(
        deps,
        project,
        admin,
        [f"{BLANK} {B} refs/heads/new", f"{A} {B} refs/heads/u1", f"{A} {B} refs/heads/u2", f"{A} {B} refs/heads/u3"],
        job_id=2,
    )
    assert sorted(p["ref"] for p in payloads) == ["refs/heads/new", "refs/heads/u1", "refs/heads/u2", "refs/heads/u3"]

    # four updates of one kind: past the limit, no hooks, and one bulk event
    await db.execute("DELETE FROM events")
    payloads = await run_job(deps, project, admin, [f"{A} {B} refs/heads/v{n}" for n in range(4)], job_id=3)
    assert payloads == []
    assert await events(db) == [("pushed", "branch", None, 4, 0, None)]


# --- 2. ref_protected ----------------------------------------------------------------------------


async def test_ref_protected_is_projects_protected_for_with_wildcards(client, app, db):
    admin, _ = await make_admin(db)
    project = await make_project(db, owner=admin)
    await add_hook(db, project)
    for name in ("main", "release/*"):
        await db.execute("INSERT INTO protected_branches (project_id, name) VALUES ($1, $2)", project["id"], name)
    await db.execute("INSERT INTO protected_tags (project_id, name) VALUES ($1, 'v*')", project["id"])

    deps = deps_for(app)
    branches = [f"{A} {B} refs/heads/main", f"{A} {B} refs/heads/feature", f"{A} {B} refs/heads/release/1.0"]
    tags = [f"{BLANK} {C} refs/tags/v1.0", f"{BLANK} {C} refs/tags/nightly"]
    payloads = await run_job(deps, project, admin, branches, job_id=1)
    payloads += await run_job(deps, project, admin, tags, job_id=2)
    assert {p["ref"]: p["ref_protected"] for p in payloads} == {
        "refs/heads/main": True,
        "refs/heads/feature": False,
        "refs/heads/release/1.0": True,
        "refs/tags/v1.0": True,
        "refs/tags/nightly": False,
    }


# --- 4. user_email -------------------------------------------------------------------------------


async def test_user_email_is_the_pushers_public_email_null_when_unset(client, app, db):
    """Gitlab::DataBuilder::Push: user.public_email. This service keeps none: null (never "" nor the
    pusher's private e-mail address)."""
    admin, _ = await make_admin(db)
    project = await make_project(db, owner=admin)
    await add_hook(db, project)
    [payload] = await run_job(deps_for(app), project, admin, [f"{A} {B} refs/heads/main"])
    assert "user_email" in payload and payload["user_email"] is None


# --- 3. Commit#hook_attrs and the event's commit_title --------------------------------------------

LONG_SUBJECT = "Make the webhook delivery pipeline retry, back off and auto-disable hooks exactly as GitLab does, with tests for each!!!"


async def test_commit_attributes_are_gitlabs_hook_attrs(client, app, db, tmp_path):
    assert len(LONG_SUBJECT) == 120
    admin, _ = await make_admin(db)
    project = await make_project(db, owner=admin)
    await add_hook(db, project)
    bare, work = repositories(tmp_path, project["id"])
    first = commit(
        work,
        "First line\nsecond line of the subject\n\nThe body.",
        {"é.txt": "accent\n", "plain.txt": "x\n"},
        GIT_AUTHOR_DATE="2001-02-03T04:05:06 +0100",
        GIT_COMMITTER_DATE="1700000000 +0200",
    )
    second = commit(
        work,
        f"  {LONG_SUBJECT}\n\nWhy.",
        {"é.txt": "changed\n"},
        GIT_AUTHOR_DATE="2001-02-03T04:05:06 +0100",
        GIT_COMMITTER_DATE="1700003600 +0000",
    )
    git("push", "-q", str(bare), "main", cwd=work)

    [payload] = await run_job(deps_for(app, tmp_path), project, admin, [f"{BLANK} {second} refs/heads/main"])
    one, two = payload["commits"]
    assert (one["id"], two["id"]) == (first, second)
    # Commit#title: the first line only, not git's %s (the subject paragraph joined)
    assert one["title"] == "First line"
    assert one["message"].startswith("First line\nsecond line of the subject\n\nThe body.")
    # Commit#timestamp: the committer's date in the committer's offset, not the author's
    assert one["timestamp"] == "2023-11-15T00:13:20+02:00"
    assert two["timestamp"] == "2023-11-14T23:13:20+00:00"
    # paths as they are, not quoted with octal escapes
    assert sorted(one["added"]) == ["plain.txt", "é.txt"]
    assert two["modified"] == ["é.txt"]
    # a first line of 100 characters or more: cut at a space within 78, then "..."
    assert two["title"] == "  Make the webhook delivery pipeline retry, back off and auto-disable hooks..."

    # PushEventPayloadService#commit_title: the newest commit's first line, stripped, truncate(70)
    [(_, _, _, _, count, title)] = await events(db)
    assert count == 2
    assert title == "Make the webhook delivery pipeline retry, back off and auto-disable..."
    assert len(title) == 70


async def test_a_short_title_and_a_long_one_without_spaces(client, app, db, tmp_path):
    admin, _ = await make_admin(db)
    project = await make_project(db, owner=admin)
    await add_hook(db, project)
    bare, work = repositories(tmp_path, project["id"])
    short = commit(work, "x" * 99 + "\r\nrest", {"a": "1\n"})
    long = commit(work, "y" * 100, {"a": "2\n"})
    git("push", "-q", str(bare), "main", cwd=work)
    [payload] = await run_job(deps_for(app, tmp_path), project, admin, [f"{BLANK} {long} refs/heads/main"])
    assert [c["id"] for c in payload["commits"]] == [short, long]
    assert payload["commits"][0]["title"] == "x" * 99  # under 100: whole, up to the \r
    assert payload["commits"][1]["title"] == "y" * 78 + "..."  # no space to cut at: 78 and "..."


# --- 5. tag messages -----------------------------------------------------------------------------


async def test_a_lightweight_tags_message_is_empty_and_an_annotated_ones_its_own(client, app, db, tmp_path):
    """Gitaly's FindTag: a lightweight tag has no message (""), an annotated tag its message
    without trailing newlines; Git::TagHooksService#event_message is tag.message."""
    admin, _ = await make_admin(db)
    project = await make_project(db, owner=admin)
    await add_hook(db, project)
    bare, work = repositories(tmp_path, project["id"])
    tip = commit(work, "The commit's own message\n\nbody", {"a": "1\n"})
    git("tag", "light", cwd=work)
    git("tag", "-a", "v1", "-m", "Release 1\n\nNotes.", cwd=work)
    annotated = git("rev-parse", "refs/tags/v1", cwd=work)
    git("push", "-q", str(bare), "main", "light", "v1", cwd=work)

    payloads = await run_job(
        deps_for(app, tmp_path),
        project,
        admin,
        [f"{BLANK} {tip} refs/tags/light", f"{BLANK} {annotated} refs/tags/v1"],
    )
    by_ref = {p["ref"]: p for p in payloads}
    assert by_ref["refs/tags/light"]["message"] == ""
    assert by_ref["refs/tags/v1"]["message"] == "Release 1\n\nNotes."
    for payload in payloads:
        assert payload["checkout_sha"] == tip
        assert [c["id"] for c in payload["commits"]] == [tip] and payload["total_commits_count"] == 1


# --- 6. the commits of a new branch --------------------------------------------------------------


async def test_a_new_branch_counts_as_gitlabs_branch_hooks_service(client, app, db, tmp_path):
    """The new default branch: all its commits, whatever other branch points at them too (`git push
    --all` into an empty project). Another new branch: what the default branch has not, whatever
    other branch points at them too (`git push origin HEAD:a HEAD:b`)."""
    admin, _ = await make_admin(db)
    project = await make_project(db, owner=admin, default_branch="main")
    await add_hook(db, project)
    bare, work = repositories(tmp_path, project["id"])
    first = commit(work, "one", {"a": "1\n"})
    second = commit(work, "two", {"a": "2\n"})
    git("branch", "develop", cwd=work)
    git("checkout", "-q", "-b", "feature", cwd=work)
    third = commit(work, "three", {"b": "3\n"})
    git("branch", "feature-copy", cwd=work)
    git("push", "-q", str(bare), "main", "develop", "feature", "feature-copy", cwd=work)
    deps = deps_for(app, tmp_path)

    [main] = await run_job(deps, project, admin, [f"{BLANK} {second} refs/heads/main"], job_id=1)
    assert main["total_commits_count"] == 2
    assert [c["id"] for c in main["commits"]] == [first, second]

    [feature] = await run_job(deps, project, admin, [f"{BLANK} {third} refs/heads/feature"], job_id=2)
    assert feature["total_commits_count"] == 1
    assert [c["id"] for c in feature["commits"]] == [third]

    # a new branch with nothing the default branch lacks
    [develop] = await run_job(deps, project, admin, [f"{BLANK} {second} refs/heads/develop"], job_id=3)
    assert (develop["total_commits_count"], develop["commits"]) == (0, [])
    assert [(e[2], e[4]) for e in await events(db)] == [("main", 2), ("feature", 1), ("develop", 0)]


async def test_a_new_branch_of_a_project_whose_default_branch_is_missing_lists_its_commits(client, app, db, tmp_path):
    """A project created with default_branch "main" whose first push is another branch (or whose
    default branch was deleted): nothing to exclude, so the branch's commits, not none."""
    admin, _ = await make_admin(db)
    project = await make_project(db, owner=admin, default_branch="main")
    await add_hook(db, project)
    bare, work = repositories(tmp_path, project["id"])
    git("checkout", "-q", "-b", "topic", cwd=work)
    first = commit(work, "one", {"a": "1\n"})
    git("push", "-q", str(bare), "topic", cwd=work)

    [topic] = await run_job(deps_for(app, tmp_path), project, admin, [f"{BLANK} {first} refs/heads/topic"], job_id=1)
    assert (topic["total_commits_count"], [c["id"] for c in topic["commits"]]) == (1, [first])


def test_a_commit_date_that_cannot_be_written_as_given_does_not_fail_the_job():
    """git checks only a date's shape: an offset of 24 hours or more, or a date past year 9999."""
    assert hook_timestamp("1234567890 +0200") == "2009-02-14T01:31:30+02:00"
    assert hook_timestamp("1234567890 +9999") == "2009-02-13T23:31:30Z"
    assert hook_timestamp("99999999999999 +0000") == "9999-12-31T23:59:59Z"
