"""After the push: the PostReceive job, push events, webhooks and push options (issue 13).

A real HTTP receiver (aiohttp, on a free port) stands for Jenkins or a chat integration; the local
address is allowed for it through allow_local_requests_from_web_hooks_and_services, as an operator
would. Jobs run in a worker inside the test's application, or in a real `gitlab-internal-api worker`
subprocess for the crash test.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import gitlab
import pytest
from aiohttp import web

from service import app_keys
from service.app import create_app
from service.config import ROOT, Storage
from service.domain.push_jobs import PostReceiveJob, PushDeps, run_post_receive_job
from service.domain.push_options import parse_push_options
from service.domain.reference_counter import counter_key
from service.domain.webhooks import after_failure, branch_filter_matches
from service.jobs import run_worker
from tests.admin_helpers import call, created, error_of, gitlab_client, make_admin
from tests.factories import make_project, set_application_settings
from tests.git_repos import git, repositories
from tests.helpers import shell_headers

INTERNAL = "/api/v4/internal"
BLANK = "0" * 40
A, B, C = "a" * 40, "b" * 40, "c" * 40
FAST_JOBS = {
    "jobs_in_process": True,
    "jobs_stalled_seconds": 2.0,
    "webhook_retry_seconds": 0.1,
    "webhook_timeout": 5.0,
}


@dataclass
class Receiver:
    """A webhook receiver that records each request and answers `status` (after `gate`, if set)."""

    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200
    gate: asyncio.Event | None = None
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append({"path": request.path, "headers": dict(request.headers), "json": await request.json()})
        self.arrived.set()
        if self.gate is not None:
            await self.gate.wait()
        return web.Response(status=self.status, text="ok")


@pytest.fixture
async def receiver(aiohttp_server: Callable[..., Awaitable[Any]]) -> AsyncIterator[Receiver]:
    found = Receiver()
    app = web.Application()
    app.router.add_post("/{tail:.*}", found.handle)
    server = await aiohttp_server(app)
    found.url = str(server.make_url("/hook"))
    yield found
    if found.gate is not None:
        found.gate.set()


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> float:
    """Seconds until `check()` holds; fails after `timeout`."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout} s")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def push(client: Any, gl_repository: str, changes: str, identifier: str, **extra: Any) -> dict[str, Any]:
    resp = await client.post(f"{INTERNAL}/pre_receive", json={"gl_repository": gl_repository}, headers=shell_headers())
    assert resp.status == 200
    body = {"gl_repository": gl_repository, "identifier": identifier, "changes": changes, **extra}
    resp = await client.post(f"{INTERNAL}/post_receive", json=body, headers=shell_headers())
    assert resp.status == 200, await resp.text()
    answer: dict[str, Any] = await resp.json()
    return answer


def start_job_worker(app: web.Application, settings: Any, concurrency: int, **overrides: Any) -> asyncio.Task[None]:
    """A job worker on the app's pool and services, as `gitlab-internal-api worker` runs one."""
    return asyncio.create_task(
        run_worker(
            settings.with_overrides(**{**FAST_JOBS, **overrides}),
            app[app_keys.DB_POOL],
            app[app_keys.REPOSITORIES],
            app[app_keys.URLS],
            concurrency,
            app[app_keys.TOKEN_BOX],
        )
    )


async def jobs_client(aiohttp_client: Any, settings: Any, secrets: Any, **overrides: Any) -> Any:
    return await aiohttp_client(create_app(settings.with_overrides(**{**FAST_JOBS, **overrides}), secrets))


def make_repository(storage: Path, project_id: int) -> list[str]:
    """A bare repository where the project's hashed path says, with two commits on main."""
    bare, work = repositories(storage, project_id)
    (work / "README.md").write_text("hello\n")
    git("add", "README.md", cwd=work)
    git("commit", "-q", "-m", "Add README\n\nThe body.", cwd=work)
    (work / "README.md").write_text("hello again\n")
    (work / "LICENSE").write_text("MIT\n")
    git("add", ".", cwd=work)
    git("commit", "-q", "-m", "Add LICENSE", cwd=work)
    git("push", "-q", str(bare), "main", cwd=work)
    return git("rev-list", "--reverse", "main", cwd=work).split()


async def test_push_delivers_one_push_hook_in_gitlabs_format_and_records_one_event(
    aiohttp_client, settings, secrets, db, redis, receiver, tmp_path
):
    await set_application_settings(db, allow_local_requests_from_web_hooks_and_services=True)
    admin, token = await make_admin(db)
    project = await make_project(db, owner=admin, default_branch=None)
    first, second = make_repository(tmp_path, project["id"])
    storage = Storage("default", "unix:/tmp/gitaly-test.socket", None, tmp_path)
    client = await jobs_client(aiohttp_client, settings, secrets, storages={"default": storage})
    with gitlab_client(client, token) as gl:
        hook = await call(
            lambda: gl.projects.get(project["id"], lazy=True).hooks.create(
                # a token pasted with its newline: sent without it (Gitlab::Utils.remove_line_breaks)
                {"url": receiver.url, "push_events": True, "token": "s3cret\n", "enable_ssl_verification": False}
            )
        )
        assert hook.alert_status == "executable" and hook.push_events is True
        stored = await db.fetchval("SELECT token FROM web_hooks WHERE id = $1", hook.id)
        assert "s3cret" not in stored and stored.startswith("v1:")  # sealed at rest, sent in clear below

        started = time.monotonic()
        await push(
            client,
            f"project-{project['id']}",
            f"{BLANK} {second} refs/heads/main",
            f"user-{admin['id']}",
            push_options=["ci.skip"],
        )
        await eventually(lambda: _true(receiver.requests))
        latency = time.monotonic() - started
        assert latency < 5, latency  # within a second on an idle machine; generous for a busy one
        await eventually(lambda: _settled(db))
        assert len(receiver.requests) == 1  # exactly one delivery

        request = receiver.requests[0]
        headers = request["headers"]
        assert headers["X-Gitlab-Event"] == "Push Hook"
        assert headers["X-Gitlab-Token"] == "s3cret"
        assert headers["X-Gitlab-Instance"] == "http://gitlab.test"
        assert headers["User-Agent"] == f"GitLab/{settings.gitlab_version}"
        assert len(headers["X-Gitlab-Webhook-UUID"]) == 36 and len(headers["X-Gitlab-Event-UUID"]) == 36
        assert headers["Content-Type"] == "application/json"
        data = request["json"]
        assert data["object_kind"] == data["event_name"] == "push"
        assert (data["before"], data["after"], data["ref"]) == (BLANK, second, "refs/heads/main")
        assert data["checkout_sha"] == second
        assert data["user_id"] == admin["id"] and data["user_username"] == admin["username"]
        assert data["project_id"] == project["id"]
        assert data["project"]["path_with_namespace"] == project["full_path"]
        assert data["project"]["web_url"] == f"http://gitlab.test/{project['full_path']}"
        assert data["total_commits_count"] == 2
        assert [c["id"] for c in data["commits"]] == [first, second]  # oldest first
        assert data["commits"][0]["title"] == "Add README"
        assert data["commits"][0]["message"].startswith("Add README\n\nThe body.")
        assert data["commits"][1]["added"] == ["LICENSE"] and data["commits"][1]["modified"] == ["README.md"]
        assert data["commits"][1]["author"] == {"name": "Ada", "email": "ada@example.com"}
        assert data["push_options"] == {"ci": {"skip": True}}
        assert data["repository"]["name"] == project["name"]

        events = await call(lambda: gl.projects.get(project["id"], lazy=True).events.list())
        assert len(events) == 1
        assert events[0].action_name == "pushed new"
        assert events[0].push_data == {
            "commit_count": 2,
            "action": "created",
            "ref_type": "branch",
            "commit_from": None,
            "commit_to": second,
            "ref": "main",
            "commit_title": "Add LICENSE",
            "ref_count": None,
        }
        own = await call(lambda: gl.events.list())
        assert [e.id for e in own] == [events[0].id]
        assert [e.id for e in await call(lambda: gl.users.get(admin["id"], lazy=True).events.list())] == [events[0].id]

        log_path = f"/projects/{project['id']}/hooks/{hook.id}/events"
        await eventually(lambda: _has_log(gl, log_path))  # written once the receiver has answered
        log = await call(lambda: gl.http_get(log_path))
        assert [(entry["trigger"], entry["response_status"]) for entry in log] == [("push_hooks", "200")]
        assert log[0]["request_headers"]["X-Gitlab-Token"] == "[REDACTED]"
        # WebHookLog keeps no e-mail address of the payload it logs (redact_user_emails)
        assert log[0]["request_data"]["commits"][1]["author"] == {"name": "Ada", "email": "[REDACTED]"}
        assert "ada@example.com" not in str(log[0]["request_data"])
    touched = await db.fetchrow(
        "SELECT last_activity_at, last_repository_updated_at FROM projects WHERE id = $1", project["id"]
    )
    assert (
        touched["last_repository_updated_at"] is not None and touched["last_activity_at"] >= project["last_activity_at"]
    )


async def _true(value: Any) -> bool:
    return bool(value)


async def test_a_job_run_twice_records_one_event_and_one_delivery(client, app, db, receiver):
    await set_application_settings(db, allow_local_requests_from_web_hooks_and_services=True)
    admin, _ = await make_admin(db)
    project = await make_project(db, owner=admin)
    await db.execute(
        "INSERT INTO web_hooks (type, project_id, url) VALUES ('ProjectHook', $1, $2)", project["id"], receiver.url
    )
    deps = PushDeps(app[app_keys.DB_POOL], app[app_keys.REPOSITORIES], app[app_keys.URLS])
    job = PostReceiveJob(
        f"project-{project['id']}", f"user-{admin['id']}", f"{A} {B} refs/heads/main\n{BLANK} {C} refs/tags/v1"
    )
    assert await run_post_receive_job(deps, 41, job) == 1  # the tag: the hook has no tag_push_events
    assert await run_post_receive_job(deps, 41, job) == 0
    assert await db.fetchval("SELECT count(*) FROM events WHERE project_id = $1", project["id"]) == 2
    assert await db.fetchval("SELECT count(*) FROM web_hook_deliveries") == 1
    assert await db.fetchval("SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'deliver_web_hook'") == 1


async def test_failing_receiver_is_retried_then_auto_disabled(aiohttp_client, settings, secrets, db, redis, receiver):
    await set_application_settings(db, allow_local_requests_from_web_hooks_and_services=True)
    receiver.status = 500
    admin, token = await make_admin(db)
    project = await make_project(db, owner=admin)
    client = await jobs_client(aiohttp_client, settings, secrets, webhook_max_attempts=2)
    gl_repository, pusher = f"project-{project['id']}", f"user-{admin['id']}"
    with gitlab_client(client, token) as gl:
        hooks = gl.projects.get(project["id"], lazy=True).hooks
        hook = await call(lambda: hooks.create({"url": receiver.url}))
        await push(client, gl_repository, f"{A} {B} refs/heads/main", pusher)
        await eventually(lambda: _settled(db))
        # both attempts of the one delivery are the same event, and it counts as one failure
        assert len(receiver.requests) == 2
        assert len({r["headers"]["X-Gitlab-Event-UUID"] for r in receiver.requests}) == 1
        assert await db.fetchval("SELECT recent_failures FROM web_hooks WHERE id = $1", hook.id) == 1
        # GitLab: failures 1..3 are the grace; the 4th disables the hook for a backoff (1 minute)
        for n, (old, new) in enumerate(((B, C), (C, A), (A, B)), start=2):
            await push(client, gl_repository, f"{old} {new} refs/heads/main", pusher)
            await eventually(lambda n=n: _count(db, "SELECT count(*) FROM events", n))
            await eventually(lambda: _settled(db))
        assert len(receiver.requests) == 8
        shown = await call(lambda: hooks.get(hook.id))
        assert shown.alert_status == "temporarily_disabled" and shown.disabled_until is not None
        log = await call(lambda: gl.http_get(f"/projects/{project['id']}/hooks/{hook.id}/events"))
        assert [entry["response_status"] for entry in log] == ["500"] * 8
        # while disabled, a push does not reach it
        await push(client, gl_repository, f"{B} {C} refs/heads/main", pusher)
        await eventually(lambda: _count(db, "SELECT count(*) FROM events", 5))
        await eventually(lambda: _settled(db))
        assert len(receiver.requests) == 8


async def test_a_redirect_answer_is_a_delivery(aiohttp_client, settings, secrets, db, redis, receiver):
    """WebHookService#response_category: success or redirection is :ok (enable!), so a hook whose
    receiver redirects to another origin (http to https, say) is neither retried nor backed off."""
    await set_application_settings(db, allow_local_requests_from_web_hooks_and_services=True)
    receiver.status = 301
    admin, token = await make_admin(db)
    project = await make_project(db, owner=admin)
    client = await jobs_client(aiohttp_client, settings, secrets, webhook_max_attempts=3)
    with gitlab_client(client, token) as gl:
        hook = await call(lambda: gl.projects.get(project["id"], lazy=True).hooks.create({"url": receiver.url}))
        await push(client, f"project-{project['id']}", f"{A} {B} refs/heads/main", f"user-{admin['id']}")
        await eventually(lambda: _settled(db))
    assert len(receiver.requests) == 1
    assert await db.fetchval("SELECT recent_failures FROM web_hooks WHERE id = $1", hook.id) == 0
    assert await db.fetchval("SELECT state FROM web_hook_deliveries") == "delivered"


async def _at_least(items: list[Any], n: int) -> bool:
    return len(items) >= n


async def _count(db: Any, query: str, expected: int) -> bool:
    return bool(await db.fetchval(query) == expected)


async def _settled(db: Any) -> bool:
    """Nothing left that could still reach a receiver: no job to run or running (finished ones are
    deleted), no delivery pending. Counts asserted after this are final, not a guess after a sleep."""
    return bool(
        await db.fetchval(
            "SELECT NOT EXISTS (SELECT 1 FROM procrastinate_jobs WHERE status IN ('todo', 'doing'))"
            " AND NOT EXISTS (SELECT 1 FROM web_hook_deliveries WHERE state = 'pending')"
        )
    )


async def test_branch_filter_skips_pushes_to_other_branches(aiohttp_client, settings, secrets, db, redis, receiver):
    await set_application_settings(db, allow_local_requests_from_web_hooks_and_services=True)
    admin, token = await make_admin(db)
    project = await make_project(db, owner=admin)
    client = await jobs_client(aiohttp_client, settings, secrets)
    with gitlab_client(client, token) as gl:
        await call(
            lambda: gl.projects.get(project["id"], lazy=True).hooks.create(
                {"url": receiver.url, "push_events_branch_filter": "release/*", "tag_push_events": True}
            )
        )
        changes = f"{A} {B} refs/heads/main\n{A} {C} refs/heads/release/1.0\n{BLANK} {C} refs/tags/v1.0"
        await push(client, f"project-{project['id']}", changes, f"user-{admin['id']}")
        await eventually(lambda: _at_least(receiver.requests, 2))
        await eventually(lambda: _settled(db))
    delivered = sorted((r["headers"]["X-Gitlab-Event"], r["json"]["ref"]) for r in receiver.requests)
    assert delivered == [("Push Hook", "refs/heads/release/1.0"), ("Tag Push Hook", "refs/tags/v1.0")]
    tag = next(r["json"] for r in receiver.requests if r["json"]["object_kind"] == "tag_push")
    assert tag["event_name"] == "tag_push" and tag["before"] == BLANK
    assert await db.fetchval("SELECT count(*) FROM events") == 3


def test_branch_filters_match_as_gitlabs():
    assert branch_filter_matches("wildcard", "release/*", "release/1.0")
    assert not branch_filter_matches("wildcard", "release/*", "main")
    assert branch_filter_matches("wildcard", "main", "main") and not branch_filter_matches(
        "wildcard", "main", "mainline"
    )
    assert branch_filter_matches("wildcard", "", "anything") and branch_filter_matches("wildcard", None, "x")
    assert branch_filter_matches("regex", "^feat", "feature/x") and not branch_filter_matches("regex", "^feat", "fix")
    assert branch_filter_matches("all_branches", "release/*", "main")


def test_regex_branch_filters_are_re2s(capfd):
    """Gitlab::UntrustedRegexp: linear whatever the pattern; what RE2 cannot match so is refused."""
    from service.domain.errors import Invalid
    from service.domain.webhooks import validate_branch_filter

    for pattern in (r"(a)\1", "(?=main)", "(?<!x)y", "[unclosed"):  # Python's re takes the first three
        with pytest.raises(Invalid) as refused:
            validate_branch_filter("regex", pattern)
        assert refused.value.errors == {"push_events_branch_filter": ["is not a valid regular expression"]}
        assert not branch_filter_matches("regex", pattern, "main")  # one stored before: matches nothing
    validate_branch_filter("regex", "^(main|release/.+)$")
    # a backtracking engine takes exponential time on this (minutes at 30 characters)
    assert not branch_filter_matches("regex", "(a+)+$", "a" * 100_000 + "!")
    assert branch_filter_matches("regex", "(a+)+!$", "a" * 100_000 + "!")
    assert "Error parsing" not in capfd.readouterr().err  # RE2 told not to write its refusals


def test_backoff_follows_gitlabs_auto_disabling():
    from datetime import UTC, datetime, timedelta

    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert after_failure(0, now) == (1, None) and after_failure(2, now) == (3, None)
    # next_backoff reads the backoff count before this failure: the 4th failure backs off 1 minute
    assert after_failure(3, now) == (4, now + timedelta(minutes=1))
    assert after_failure(4, now) == (5, now + timedelta(minutes=2))
    assert after_failure(5, now) == (6, now + timedelta(minutes=4))
    assert after_failure(30, now) == (31, now + timedelta(days=1))
    assert after_failure(40, now)[0] == 40


async def test_local_hook_refused_at_creation_and_at_delivery(aiohttp_client, settings, secrets, db, redis, receiver):
    admin, token = await make_admin(db)
    project = await make_project(db, owner=admin)
    client = await jobs_client(aiohttp_client, settings, secrets)
    with gitlab_client(client, token) as gl:
        hooks = gl.projects.get(project["id"], lazy=True).hooks
        refused = await error_of(lambda: hooks.create({"url": receiver.url}))
        assert refused.response_code == 400
        assert "is blocked: Requests to localhost are not allowed" in str(refused.error_message)
        refused = await error_of(lambda: hooks.create({"url": "http://10.1.2.3/hook"}))
        assert "Requests to the local network are not allowed" in str(refused.error_message)
        refused = await error_of(lambda: hooks.create({"url": "http://100.100.100.200/latest/meta-data"}))
        assert "Requests to the shared address space are not allowed" in str(refused.error_message)
        # a system hook is an administrator's: allow_local_requests_from_system_hooks, on by default
        system = await call(lambda: gl.hooks.create({"url": "http://10.1.2.3/hook"}))
        await call(lambda: gl.hooks.delete(system.id))
        await set_application_settings(db, allow_local_requests_from_system_hooks=False)
        refused = await error_of(lambda: gl.hooks.create({"url": "http://10.1.2.3/hook"}))
        assert "Requests to the local network are not allowed" in str(refused.error_message)
        # allowed while it is created, then the administrator switches the protection back on
        await set_application_settings(db, allow_local_requests_from_web_hooks_and_services=True)
        hook = await call(lambda: hooks.create({"url": receiver.url}))
        await set_application_settings(db, allow_local_requests_from_web_hooks_and_services=False)
        await push(client, f"project-{project['id']}", f"{A} {B} refs/heads/main", f"user-{admin['id']}")
        log_path = f"/projects/{project['id']}/hooks/{hook.id}/events"
        await eventually(lambda: _has_log(gl, log_path))
        log = await call(lambda: gl.http_get(log_path))
    assert receiver.requests == []
    assert log[0]["response_status"] == "internal error"
    assert "URL is blocked: Requests to localhost are not allowed" in log[0]["internal_error_message"]


async def _has_log(gl: gitlab.Gitlab, path: str) -> bool:
    return bool(await call(lambda: gl.http_get(path)))


async def test_system_hook_and_test_delivery(aiohttp_client, settings, secrets, db, redis, receiver):
    # the project hook needs the switch; the system hook reaches the local receiver without it
    await set_application_settings(db, allow_local_requests_from_web_hooks_and_services=True)
    admin, token = await make_admin(db)
    project = await make_project(db, owner=admin)
    client = await jobs_client(aiohttp_client, settings, secrets)
    with gitlab_client(client, token) as gl:
        system = await call(lambda: gl.hooks.create({"url": receiver.url + "/system", "push_events": True}))
        assert [h.id for h in await call(lambda: gl.hooks.list())] == [system.id]
        project_hook = await call(lambda: gl.projects.get(project["id"], lazy=True).hooks.create({"url": receiver.url}))
        await call(lambda: project_hook.test("push_events"))
        assert [r["headers"]["X-Gitlab-Event"] for r in receiver.requests] == ["Push Hook"]
        await push(client, f"project-{project['id']}", f"{A} {B} refs/heads/main", f"user-{admin['id']}")
        await eventually(lambda: _at_least(receiver.requests, 3))
        await call(lambda: gl.hooks.delete(system.id))
    events = sorted(r["headers"]["X-Gitlab-Event"] for r in receiver.requests[1:])
    assert events == ["Push Hook", "System Hook"]
    assert len({r["headers"]["X-Gitlab-Event-UUID"] for r in receiver.requests[1:]}) == 1  # one event, two hooks


async def test_push_options_are_parsed_passed_on_and_unsupported_ones_announced(client, db):
    admin, _ = await make_admin(db)
    project = await make_project(db, owner=admin)
    answer = await push(
        client,
        f"project-{project['id']}",
        f"{A} {B} refs/heads/main",
        f"user-{admin['id']}",
        push_options=["ci.skip", "merge_request.create", "mr.target=main", "unknown.option"],
    )
    notices = [m["message"] for m in answer["messages"] if m["message"].startswith("Push options ignored")]
    assert notices == [
        "Push options ignored: merge_request.create, merge_request.target. This GitLab internal API has no merge "
        "requests or secret detection; the options were passed to webhooks in push_options."
    ]
    args = await db.fetchval("SELECT args FROM procrastinate_jobs WHERE task_name = 'post_receive'")
    assert "merge_request.create" in args and "correlation_id" in args


def test_push_options_parse_as_gitlabs():
    assert parse_push_options(
        [
            "ci.skip",
            "ci.variable=A=1",
            "ci.variable=A=1",
            "ci.variable=B=2",
            "mr.label=x",
            "integrations.skip_ci",
            "ci.bogus",
            "nonsense",
        ]
    ) == {
        "ci": {"skip": True, "variable": {"A=1": 2, "B=2": 1}},
        "merge_request": {"label": {"x": 1}},
        "integrations": {"skip_ci": True},
    }


async def test_wiki_push_touches_the_project_only(client, app, db):
    admin, _ = await make_admin(db)
    project = await make_project(db, owner=admin)
    deps = PushDeps(app[app_keys.DB_POOL], app[app_keys.REPOSITORIES], app[app_keys.URLS])
    job = PostReceiveJob(f"wiki-{project['id']}", f"user-{admin['id']}", f"{A} {B} refs/heads/main")
    assert await run_post_receive_job(deps, 7, job) == 0
    row = await db.fetchrow(
        "SELECT last_activity_at, last_repository_updated_at FROM projects WHERE id = $1", project["id"]
    )
    assert row["last_activity_at"] > project["last_activity_at"] and row["last_repository_updated_at"] is None
    assert await db.fetchval("SELECT count(*) FROM events") == 0


async def test_many_refs_at_once_make_bulk_events_and_no_hooks(client, app, db, receiver):
    await set_application_settings(db, allow_local_requests_from_web_hooks_and_services=True)
    admin, _ = await make_admin(db)
    project = await make_project(db, owner=admin)
    await db.execute(
        "INSERT INTO web_hooks (type, project_id, url) VALUES ('ProjectHook', $1, $2)", project["id"], receiver.url
    )
    deps = PushDeps(app[app_keys.DB_POOL], app[app_keys.REPOSITORIES], app[app_keys.URLS])
    changes = "\n".join(f"{BLANK} {A} refs/heads/b{n}" for n in range(4))
    assert (
        await run_post_receive_job(deps, 9, PostReceiveJob(f"project-{project['id']}", f"user-{admin['id']}", changes))
        == 0
    )
    assert [tuple(r) for r in await db.fetch("SELECT push_action, ref_type, ref_count FROM events")] == [
        ("created", "branch", 4)
    ]


async def test_dead_jobs_are_listed_and_can_be_retried(aiohttp_client, settings, secrets, db, redis):
    admin, token = await make_admin(db)
    client = await jobs_client(aiohttp_client, settings, secrets, post_receive_max_attempts=1)
    # arguments the task does not take: it fails at once, and with one attempt it is dead
    await db.execute(
        "SELECT procrastinate_defer_jobs_v1(ARRAY[ROW('post_receive', 'post_receive', 0, NULL, NULL,"
        " '{\"bogus\": 1}'::jsonb, NULL)::procrastinate_job_to_defer_v1])"
    )
    with gitlab_client(client, token) as gl:
        await eventually(lambda: _has(gl, "/admin/background_jobs/dead"))
        dead = await call(lambda: gl.http_get("/admin/background_jobs/dead"))
        assert [(j["task"], j["status"], j["args"]) for j in dead] == [("post_receive", "failed", {"bogus": 1})]
        await call(lambda: gl.http_post(f"/admin/background_jobs/dead/{dead[0]['id']}/retry"))
        missing = await error_of(lambda: gl.http_post("/admin/background_jobs/dead/999999/retry"))
        assert missing.response_code == 404


async def _has(gl: gitlab.Gitlab, path: str) -> bool:
    return bool(await call(lambda: gl.http_get(path)))


async def test_a_worker_killed_mid_job_loses_no_job(
    aiohttp_client, app, settings, secrets, db, redis, receiver, backends
):
    """A real `gitlab-internal-api worker` takes the delivery and is SIGKILLed while the receiver
    holds the request; another worker finds the dead worker's job and delivers it."""
    await set_application_settings(db, allow_local_requests_from_web_hooks_and_services=True)
    admin, _ = await make_admin(db)
    project = await make_project(db, owner=admin)
    await db.execute(
        "INSERT INTO web_hooks (type, project_id, url) VALUES ('ProjectHook', $1, $2)", project["id"], receiver.url
    )
    receiver.gate = asyncio.Event()
    client = await aiohttp_client(app)  # the API, without an in-process worker
    env = {
        **os.environ,
        "GITLAB_INTERNAL_API_CONFIG": str(ROOT / "config" / "test.toml"),
        "GITLAB_INTERNAL_API_ROOT": str(Path(settings.state_dir).parent),
        "DATABASE_URL": backends.database_url,
        "REDIS_URL": backends.redis_url,
        "GITLAB_INTERNAL_API_JOBS_STALLED_SECONDS": "2",
        "LOG_LEVEL": "INFO",
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "service", "worker", "--concurrency", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    rescuer: asyncio.Task[None] | None = None
    try:
        await push(client, f"project-{project['id']}", f"{A} {B} refs/heads/main", f"user-{admin['id']}")
        await asyncio.wait_for(receiver.arrived.wait(), 30)
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        receiver.gate.set()
        assert await db.fetchval("SELECT state FROM web_hook_deliveries") == "pending"
        rescuer = start_job_worker(app, settings, 2)
        await eventually(
            lambda: _count(db, "SELECT count(*) FROM web_hook_deliveries WHERE state = 'delivered'", 1), 30
        )
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)
        if worker.stderr is not None:
            worker.stderr.close()
        if rescuer is not None:
            rescuer.cancel()
            await asyncio.gather(rescuer, return_exceptions=True)
    assert len(receiver.requests) == 2  # the interrupted attempt and the one that completed
    assert receiver.requests[0]["headers"]["Idempotency-Key"] == receiver.requests[1]["headers"]["Idempotency-Key"]
    assert await db.fetchval("SELECT count(*) FROM events") == 1
    assert await db.fetchval("SELECT count(*) FROM procrastinate_jobs WHERE status <> 'succeeded'") == 0


@pytest.mark.parametrize("listen", [True, False], ids=["listen", "polling"])
async def test_a_repositorys_backlog_drains_in_push_order(aiohttp_client, app, settings, db, redis, listen):
    """Pushes queued while no worker ran (an outage) run one after another, in push order, once a
    worker with several slots starts: when a repository's job ends, its next one is fetched at once
    (not after the worker's polling interval, which drained such a backlog at 1 job/s); also where
    the worker cannot LISTEN (PgBouncer without a direct URL)."""
    admin, _ = await make_admin(db)
    project = await make_project(db, owner=admin)
    client = await aiohttp_client(app)  # the API, without an in-process worker
    pushes = 40
    tips = [f"{n:040x}" for n in range(1, pushes + 1)]
    previous = A
    for tip in tips:
        await push(client, f"project-{project['id']}", f"{previous} {tip} refs/heads/main", f"user-{admin['id']}")
        previous = tip
    assert await db.fetchval("SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo'") == pushes
    overrides: dict[str, Any] = {} if listen else {"database_prepared_statements": False, "database_migration_url": ""}
    worker = start_job_worker(app, settings, 4, **overrides)
    try:
        # 40 jobs at the old 1 job/s would take 40 s; at once, they take well under a second
        await eventually(lambda: _count(db, "SELECT count(*) FROM events", pushes), 15)
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
    recorded = await db.fetch("SELECT commit_from, commit_to FROM events ORDER BY id")
    assert [r["commit_to"] for r in recorded] == tips
    assert [r["commit_from"] for r in recorded] == [A, *tips[:-1]]
    assert await db.fetchval("SELECT count(*) FROM procrastinate_jobs") == 0


async def test_an_idle_worker_runs_each_new_push_at_once_woken_by_its_notification(
    aiohttp_client, app, settings, db, redis
):
    """The "job inserted" NOTIFY (per statement since migration 0403) wakes an idle worker: each push
    to another repository runs well within the worker's 1 s polling interval, not at its next poll."""
    admin, _ = await make_admin(db)
    projects = [await make_project(db, owner=admin) for _ in range(10)]
    client = await aiohttp_client(app)  # the API, without an in-process worker
    worker = start_job_worker(app, settings, 2)
    try:
        waits = []
        for n, project in enumerate(projects, start=1):
            await asyncio.sleep(0.15)  # the worker has nothing to do and waits
            await push(client, f"project-{project['id']}", f"{BLANK} {A} refs/heads/main", f"user-{admin['id']}")
            waits.append(await eventually(lambda n=n: _count(db, "SELECT count(*) FROM events", n), 10))
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
    # Without the notification each waits for the next poll (0.85 s each when tried: 0403 without its
    # NOTIFY). Two slow ones are allowed for a loaded machine.
    assert sorted(waits)[7] < 0.4, waits


async def test_a_queued_job_is_answered_200_even_when_the_push_context_could_not_be_read(
    aiohttp_client, settings, secrets, db, redis
):
    """A 503 would make Gitaly queue the job a second time: once queued, the push is answered
    (without the messages its context gives), and the counter goes down once."""
    admin, _ = await make_admin(db)
    project = await make_project(db, owner=admin)
    repository = f"project-{project['id']}"
    client = await aiohttp_client(create_app(settings.with_overrides(command_timeout=1.0), secrets))
    resp = await client.post(f"{INTERNAL}/pre_receive", json={"gl_repository": repository}, headers=shell_headers())
    assert resp.status == 200
    async with db.transaction():  # the context's read of the broadcast banners waits, and times out
        await db.execute("LOCK TABLE broadcast_messages IN ACCESS EXCLUSIVE MODE")
        resp = await client.post(
            f"{INTERNAL}/post_receive",
            json={"gl_repository": repository, "identifier": f"user-{admin['id']}", "changes": f"{A} {B} refs/heads/main"},
            headers=shell_headers(),
        )
    assert resp.status == 200, await resp.text()
    assert await resp.json() == {"messages": [], "reference_counter_decreased": True}
    assert await db.fetchval("SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'post_receive'") == 1
    assert await redis.get(counter_key(repository)) in (None, "0")  # raised once, lowered once


LISTENERS = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
    " AND application_name = 'gitlab-internal-api-worker' AND query ILIKE 'LISTEN%'"
)


async def test_the_worker_listens_again_after_the_database_refused_it_for_a_while(
    aiohttp_client, app, settings, db, redis, backends
):
    """A restart or failover: the listener's connection breaks and reconnecting is refused for a
    moment. The worker listens again (and a repository's jobs still chain meanwhile) instead of
    polling at one job a second until the process restarts."""
    admin, _ = await make_admin(db)
    project = await make_project(db, owner=admin)
    client = await aiohttp_client(app)  # the API, without an in-process worker
    worker = start_job_worker(app, settings, 4)
    database = await db.fetchval("SELECT current_database()")
    # a database's connections are switched off from another one
    admin_db = await asyncpg.connect(urlunsplit(urlsplit(backends.database_url)._replace(path="/postgres")))
    try:
        await eventually(lambda: _count(db, LISTENERS, 1), 10)
        await admin_db.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')  # superusers too
        try:
            await db.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database()"
                " AND application_name = 'gitlab-internal-api-worker' AND query ILIKE 'LISTEN%'"
            )
            await asyncio.sleep(0.5)  # its reconnection is refused
        finally:
            await admin_db.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        await eventually(lambda: _count(db, LISTENERS, 1), 10)
        # and a repository's backlog still drains at once, not at one job per polling interval
        previous = A
        for n in range(1, 21):
            tip = f"{n:040x}"
            await push(client, f"project-{project['id']}", f"{previous} {tip} refs/heads/main", f"user-{admin['id']}")
            previous = tip
        assert await eventually(lambda: _count(db, "SELECT count(*) FROM events", 20), 15) < 10
    finally:
        await admin_db.close()
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)


async def test_a_job_whose_end_could_not_be_written_is_ended_once_it_can_be(
    aiohttp_client, app, settings, db, redis, backends
):
    """Writing the job's end fails (here cancelled, as a database going away breaks it): the job
    must not stay 'doing' under a live worker (no stalled-job rescue frees that), holding its
    repository's later jobs back."""
    admin, _ = await make_admin(db)
    project = await make_project(db, owner=admin)
    client = await aiohttp_client(app)
    worker = start_job_worker(app, settings, 2)
    row_holder = await asyncpg.connect(backends.database_url)
    try:
        async with db.transaction():  # the job waits for the events table
            await db.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
            await push(client, f"project-{project['id']}", f"{BLANK} {A} refs/heads/main", f"user-{admin['id']}")
            await eventually(lambda: _count(db, "SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing'", 1))
            holding = row_holder.transaction()  # ... and its end waits for its row
            await holding.start()
            await row_holder.execute("SELECT 1 FROM procrastinate_jobs FOR UPDATE")
        finishing = (
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name = 'gitlab-internal-api-worker' AND wait_event_type = 'Lock'"
        )
        await eventually(lambda: _count(db, f"SELECT count(*) FROM ({finishing}) AS waiting", 1))
        await db.execute(f"SELECT pg_cancel_backend(pid) FROM ({finishing}) AS waiting")
        await eventually(lambda: _count(db, f"SELECT count(*) FROM ({finishing}) AS waiting", 0))  # cancelled
        await holding.rollback()
        await eventually(lambda: _count(db, "SELECT count(*) FROM procrastinate_jobs", 0), 10)
        assert await db.fetchval("SELECT count(*) FROM events") == 1
    finally:
        await row_holder.close()
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)


async def test_a_hooks_url_credentials_are_sealed_at_rest_and_masked_in_its_log(aiohttp_client, settings, secrets, db, redis, receiver):
    """A URL may carry basic-auth credentials (http://user:password@host/): stored encrypted like the
    token, sent as the receiver's Authorization, kept masked in the delivery log."""
    await set_application_settings(db, allow_local_requests_from_web_hooks_and_services=True)
    admin, token = await make_admin(db)
    project = await make_project(db, owner=admin)
    client = await jobs_client(aiohttp_client, settings, secrets)
    with_credentials = receiver.url.replace("http://", "http://hookuser:S3cretPassw0rd@")
    headers = {"PRIVATE-TOKEN": token}
    resp = await client.post(
        f"/api/v4/projects/{project['id']}/hooks", json={"url": with_credentials, "token": "hooksecret123"}, headers=headers
    )
    hook = await resp.json()
    assert (resp.status, hook["url"]) == (201, with_credentials)  # an admin sees what was set, as in GitLab
    stored = await db.fetchrow("SELECT url, token FROM web_hooks WHERE id = $1", hook["id"])
    for fragment in ("S3cretPassw0rd", "hookuser", "hooksecret123", receiver.url):
        assert fragment not in stored["url"] + stored["token"]
    resp = await client.post(f"/api/v4/projects/{project['id']}/hooks/{hook['id']}/test/push_events", headers=headers)
    assert resp.status == 201
    [delivered] = receiver.requests
    assert delivered["headers"]["Authorization"] == "Basic " + base64.b64encode(b"hookuser:S3cretPassw0rd").decode()
    assert delivered["headers"]["X-Gitlab-Token"] == "hooksecret123"
    masked = receiver.url.replace("http://", "http://*****:*****@")
    assert await db.fetchval("SELECT url FROM web_hook_logs WHERE web_hook_id = $1", hook["id"]) == masked
    events = await (await client.get(f"/api/v4/projects/{project['id']}/hooks/{hook['id']}/events", headers=headers)).json()
    assert [event["url"] for event in events] == [masked]
    listed = await (await client.get(f"/api/v4/projects/{project['id']}/hooks", headers=headers)).json()
    assert [h["url"] for h in listed] == [with_credentials]



async def test_a_hook_sealed_with_another_db_key_base_is_not_sent_and_answered_500_without_a_traceback(
    aiohttp_client, settings, secrets, db, redis, receiver, caplog
):
    """A db_key_base other than the one a hook was stored with (a new secret file, another node's):
    its delivery is not sent and does not count against the hook, the admin API answers a 500,
    and each says in one log line what to check, without a traceback."""
    from service.domain.token_box import TokenBox

    await set_application_settings(db, allow_local_requests_from_web_hooks_and_services=True)
    admin, token = await make_admin(db)
    project = await make_project(db, owner=admin)
    client = await jobs_client(aiohttp_client, settings, secrets)
    headers = {"PRIVATE-TOKEN": token}
    hooks = f"/api/v4/projects/{project['id']}/hooks"
    hook = await created(client, token, hooks, {"url": receiver.url, "token": "hooksecret123"})
    other_key = TokenBox(b"another db_key_base, another node" * 2)
    await db.execute("UPDATE web_hooks SET token = $1 WHERE id = $2", other_key.seal("hooksecret123"), hook["id"])
    caplog.clear()
    resp = await client.post(f"{hooks}/{hook['id']}/test/push_events", headers=headers)
    assert resp.status < 500, await resp.text()
    assert receiver.requests == []
    assert await db.fetchval("SELECT state FROM web_hook_deliveries WHERE web_hook_id = $1", hook["id"]) == "failed"
    assert await db.fetchval("SELECT recent_failures FROM web_hooks WHERE id = $1", hook["id"]) == 0
    await db.execute("UPDATE web_hooks SET url = $1 WHERE id = $2", other_key.seal(receiver.url), hook["id"])
    resp = await client.get(f"{hooks}/{hook['id']}", headers=headers)
    assert (resp.status, await resp.json()) == (500, {"message": "500 Internal Server Error"})
    said = [r for r in caplog.records if "GITLAB_DB_KEY_BASE_FILE" in r.getMessage()]
    assert len(said) == 2 and not any(r.exc_info for r in said)
    assert not any(r.exc_info for r in caplog.records if r.levelname == "ERROR")

async def test_a_url_the_client_will_not_send_to_is_a_failed_attempt_and_a_blank_one_is_refused(
    aiohttp_client, settings, secrets, db, redis, receiver
):
    await set_application_settings(db, allow_local_requests_from_web_hooks_and_services=True)
    admin, token = await make_admin(db)
    project = await make_project(db, owner=admin)
    client = await jobs_client(aiohttp_client, settings, secrets)
    headers = {"PRIVATE-TOKEN": token}
    # a user name with an encoded ':' (aiohttp refuses to make Basic credentials of it)
    odd = receiver.url.replace("http://", "http://u%3Ax:p%2Fw@")
    hook = await created(client, token, f"/api/v4/projects/{project['id']}/hooks", {"url": odd})
    resp = await client.post(f"/api/v4/projects/{project['id']}/hooks/{hook['id']}/test/push_events", headers=headers)
    assert resp.status == 201
    [entry] = await (await client.get(f"/api/v4/projects/{project['id']}/hooks/{hook['id']}/events", headers=headers)).json()
    assert entry["response_status"] == "internal error"
    assert entry["internal_error_message"].startswith("Hook execution failed: ValueError: ")
    assert receiver.requests == []
    resp = await client.put(f"/api/v4/projects/{project['id']}/hooks/{hook['id']}", json={"url": ""}, headers=headers)
    assert resp.status == 400
    assert (await resp.json())["message"]["url"][0].startswith("is blocked: ")
    stored = await (await client.get(f"/api/v4/projects/{project['id']}/hooks/{hook['id']}", headers=headers)).json()
    assert stored["url"] == odd


async def test_urls_stored_before_they_were_sealed_are_sealed_at_start_up(client, db):
    """An upgraded install: hooks whose URL (with credentials) and delivery log were written in plain
    text. `serve` seals and masks them after the migrations; until then they are read as they are."""
    from service.domain.admin.hooks import seal_stored_urls
    from service.domain.token_box import TokenBox
    from tests.conftest import DB_KEY_BASE

    await set_application_settings(db, allow_local_requests_from_web_hooks_and_services=True)
    admin, token = await make_admin(db)
    project = await make_project(db, owner=admin)
    plain = "http://hookuser:S3cret@127.0.0.1:9/x"
    hook = await created(client, token, f"/api/v4/projects/{project['id']}/hooks", {"url": plain})
    await db.execute("UPDATE web_hooks SET url = $1 WHERE id = $2", plain, hook["id"])  # as stored before
    await db.execute(
        "INSERT INTO web_hook_logs (web_hook_id, trigger, url, request_headers, request_data, response_headers,"
        " response_body, response_status, execution_duration) VALUES ($1, 'push_hooks', $2, '{}', '{}', '{}', '', '200', 0.1)",
        hook["id"],
        plain,
    )
    shown = await (await client.get(f"/api/v4/projects/{project['id']}/hooks/{hook['id']}", headers={"PRIVATE-TOKEN": token})).json()
    assert shown["url"] == plain  # a plain row is read as it is
    assert await seal_stored_urls(db, TokenBox(DB_KEY_BASE)) == 1
    stored = await db.fetchval("SELECT url FROM web_hooks WHERE id = $1", hook["id"])
    assert stored.startswith("v1:") and "S3cret" not in stored
    assert await db.fetchval("SELECT url FROM web_hook_logs WHERE web_hook_id = $1", hook["id"]) == (
        "http://*****:*****@127.0.0.1:9/x"
    )
    shown = await (await client.get(f"/api/v4/projects/{project['id']}/hooks/{hook['id']}", headers={"PRIVATE-TOKEN": token})).json()
    assert shown["url"] == plain
    assert await seal_stored_urls(db, TokenBox(DB_KEY_BASE)) == 0  # nothing left to seal


@pytest.mark.parametrize("stopped_by", ["its timeout", "the job's cancellation"])
async def test_a_git_that_hangs_is_killed_and_does_not_hold_the_repositorys_jobs(tmp_path, stopped_by):
    """A git read stuck on a stalled storage: past its timeout the job fails (and is retried), and
    when the job is cancelled (the worker stopping) the git goes with it; neither leaves it running."""
    from service.domain.push_jobs import GitTimeout, run_git
    from service.domain.repository import Git

    pid_file = tmp_path / "pid"
    hanging_git = tmp_path / "git"
    # a git that started a child of its own, which holds its output open (as git's pagers and
    # helpers can): both must go
    hanging_git.write_text(f"#!/bin/sh\nsleep 60 &\necho $! > {pid_file}\nwait\n")
    hanging_git.chmod(0o755)
    began = time.monotonic()
    if stopped_by == "its timeout":
        with pytest.raises(GitTimeout, match="git rev-list took more than 2 s"):
            await run_git(Git(str(hanging_git), 2), tmp_path, "rev-list", "--count", "HEAD")
    else:
        reading = asyncio.create_task(run_git(Git(str(hanging_git), 55), tmp_path, "rev-list", "--count", "HEAD"))
        while not pid_file.exists() or not pid_file.read_text().strip():
            await asyncio.sleep(0.05)
        reading.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reading
    assert time.monotonic() - began < 10
    import psutil  # type: ignore[import-untyped]

    with contextlib.suppress(psutil.NoSuchProcess):  # the child of git is gone too (or dead, unreaped)
        assert psutil.Process(int(pid_file.read_text())).status() == psutil.STATUS_ZOMBIE


def test_the_git_timeout_setting_reaches_the_jobs_repository_reads(settings, secrets):
    app = create_app(settings.with_overrides(git_timeout=3.0), secrets)
    assert app[app_keys.REPOSITORIES].job_git.timeout == 3.0
