"""Project hooks, system hooks, push events and dead jobs as GitLab's API shows them
(lib/api/project_hooks.rb, system_hooks.rb, events.rb, entities/project_hook.rb, entities/event.rb)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import orjson

from service.db import events as events_db
from service.db.webhooks import PROJECT_HOOK as PROJECT_HOOK  # the hook kinds routes name
from service.db.webhooks import SYSTEM_HOOK as SYSTEM_HOOK
from service.db import push_jobs as jobs_db
from service.db import webhooks as hooks_db
from service.db.events import EventFilter, EventRow
from service.db.push_jobs import NewDelivery
from service.db.rows import Conn, Paged
from service.db.webhooks import HookRow
from service.domain import webhooks
from service.domain.token_box import TokenBox
from service.domain.webhooks import HookClient
from service.domain.admin.pagination import Page
from service.domain.checks import Change
from service.domain.errors import Missing
from service.domain.iso_time import iso
from service.domain.push_jobs import Commits, PushDeps, push_data, read_commits, run_git
from service.domain.repository import hashed_disk_path
from service.domain.urls import InstanceUrls

# Entities::ProjectHook shows every trigger flag; the ones this service has nothing for are false.
_OTHER_TRIGGERS = (
    "issues_events",
    "confidential_issues_events",
    "note_events",
    "confidential_note_events",
    "pipeline_events",
    "wiki_page_events",
    "deployment_events",
    "feature_flag_events",
    "job_events",
    "releases_events",
    "milestone_events",
    "emoji_events",
    "resource_access_token_events",
    "vulnerability_events",
    "member_events",
    "project_events",
)


def render_hook(hook: HookRow) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": hook.id,
        "url": hook.url,
        "name": hook.name,
        "description": hook.description,
        "created_at": iso(hook.created_at),
        "push_events": hook.push_events,
        "tag_push_events": hook.tag_push_events,
        "merge_requests_events": hook.merge_requests_events,
        "repository_update_events": hook.repository_update_events,
        "enable_ssl_verification": hook.enable_ssl_verification,
        "alert_status": webhooks.alert_status(hook.type, hook.recent_failures, hook.disabled_until, datetime.now(UTC)),
        "disabled_until": iso(hook.disabled_until),
        "url_variables": [],
        "push_events_branch_filter": hook.push_events_branch_filter,
        "branch_filter_strategy": hook.branch_filter_strategy,
        "custom_webhook_template": None,
        "custom_headers": [],
    }
    if hook.type == hooks_db.PROJECT_HOOK:
        body["project_id"] = hook.project_id
        body.update({name: False for name in _OTHER_TRIGGERS})
    return body


async def seal_stored_urls(conn: Conn, box: TokenBox) -> int:
    """Hook URLs stored in plain text before URLs were sealed, sealed now, and the credentials in
    their delivery log masked (run at start-up, after the migrations). How many URLs it sealed."""
    plain = await hooks_db.plain_hook_urls(conn)
    for hook_id, url in plain:
        await hooks_db.seal_hook_url(conn, hook_id, url, box.seal(url))
    for log_id, url in await hooks_db.logged_urls_with_credentials(conn):
        masked = webhooks.masked_url(url)
        if masked != url:
            await hooks_db.mask_logged_url(conn, log_id, masked)
    return len(plain)


def _opened(hook: HookRow, box: TokenBox) -> HookRow:
    return replace(hook, url=box.open_url(hook.url))


async def list_hooks(conn: Conn, box: TokenBox, hook_type: str, project_id: int | None, page: Page) -> Paged[HookRow]:
    found, total = await hooks_db.list_hooks(conn, hook_type, project_id, limit=page.limit, offset=page.offset)
    return Paged(total, [_opened(hook, box) for hook in found])


async def get_hook(conn: Conn, box: TokenBox, hook_type: str, project_id: int | None, hook_id: int) -> HookRow:
    """A hook, its URL opened (the token stays sealed: no answer shows it)."""
    hook = await hooks_db.find_hook(conn, hook_type, project_id, hook_id)
    if hook is None:
        raise Missing("Hook")
    return _opened(hook, box)


def _sealed(values: dict[str, Any], box: TokenBox) -> dict[str, Any]:
    """The URL (it may carry basic-auth credentials) and the token encrypted before they are stored
    (an empty token clears it)."""
    sealed = dict(values)
    if values.get("url"):
        sealed["url"] = box.seal(values["url"])
    if values.get("token"):
        sealed["token"] = box.seal(values["token"])
    return sealed


async def create_hook(
    conn: Conn, hook_type: str, project_id: int | None, values: dict[str, Any], box: TokenBox
) -> HookRow:
    await webhooks.check_hook_url(values["url"], await hooks_db.allow_local_requests(conn, hook_type))
    webhooks.validate_branch_filter(values.get("branch_filter_strategy"), values.get("push_events_branch_filter"))
    if hook_type == hooks_db.SYSTEM_HOOK:
        # SystemHook's defaults: push_events and tag_push_events off unless asked for
        values = {"push_events": False, **values}
    hook_id = await hooks_db.insert_hook(conn, hook_type, project_id, _sealed(values, box))
    return await get_hook(conn, box, hook_type, project_id, hook_id)


async def update_hook(
    conn: Conn, hook_type: str, project_id: int | None, hook_id: int, values: dict[str, Any], box: TokenBox
) -> HookRow:
    current = await get_hook(conn, box, hook_type, project_id, hook_id)
    if "url" in values:  # "" too: refused as at creation, never stored
        await webhooks.check_hook_url(values["url"], await hooks_db.allow_local_requests(conn, hook_type))
    webhooks.validate_branch_filter(
        values.get("branch_filter_strategy", current.branch_filter_strategy),
        values.get("push_events_branch_filter", current.push_events_branch_filter),
    )
    await hooks_db.update_hook(conn, hook_type, hook_id, _sealed(values, box))
    return await get_hook(conn, box, hook_type, project_id, hook_id)


async def delete_hook(conn: Conn, hook_type: str, project_id: int | None, hook_id: int) -> None:
    if await hooks_db.find_hook(conn, hook_type, project_id, hook_id) is None:
        raise Missing("Hook")
    await hooks_db.delete_hook(conn, hook_type, hook_id)


async def hook_events(conn: Conn, hook: HookRow, page: Page) -> Paged[dict[str, Any]]:
    found, total = await hooks_db.hook_logs(conn, hook.id, limit=page.limit, offset=page.offset)
    return Paged(total, [webhooks.render_log(entry) for entry in found])


async def test_hook(
    deps: PushDeps,
    http: HookClient,
    config: webhooks.DeliveryConfig,
    hook: HookRow,
    project_id: int | None,
    user_id: int,
) -> str:
    """TestHooks::ProjectService / SystemService for push events: the sample data of the project's
    default branch (its last commits when the repository can be read), sent now, logged like any
    delivery. Returns the response status."""
    pool = deps.pool
    async with pool.acquire() as conn:
        ctx = await jobs_db.push_job_context(conn, project_id, user_id, None, None)
    if ctx.project_id is not None and ctx.full_path is not None:
        branch = ctx.default_branch or "master"
        change = Change("0" * 40, "0" * 40, f"refs/heads/{branch}")
        commits = Commits([], 0)
        relative = f"refs/heads/{branch}"
        tip = await _resolve(deps, ctx, relative)
        if tip is not None:
            change = Change(tip, tip, relative)
            commits = await read_commits(
                deps.repositories, ctx, Change("0" * 40, tip, relative), deps.urls.project_url(ctx.full_path)
            )
        data = push_data(ctx, deps.urls, change, commits, {})
    else:
        data = {
            "object_kind": "push",
            "event_name": "push",
            "user_id": user_id,
            "commits": [],
            "total_commits_count": 0,
        }
    header = webhooks.SYSTEM_HOOK if hook.type == hooks_db.SYSTEM_HOOK else webhooks.PUSH_HOOK
    async with pool.acquire() as conn:
        ids = await jobs_db.insert_deliveries(
            conn,
            [NewDelivery(hook.id, f"test:{uuid.uuid4()}", header, "push_hooks", data, str(uuid.uuid4()))],
        )
    outcome = await webhooks.send(pool, http, config, ids[0], last_attempt=True)
    return outcome.status if outcome is not None else "skipped"


async def _resolve(deps: PushDeps, ctx: jobs_db.PushJobContext, ref: str) -> str | None:
    assert ctx.project_id is not None and ctx.repository_storage is not None
    repo = deps.repositories.repository_dir(
        ctx.repository_storage, (ctx.legacy_disk_path or hashed_disk_path(ctx.project_id)) + ".git"
    )
    git = deps.repositories.job_git
    if repo is None or git is None:
        return None
    code, out = await run_git(git, repo, "rev-parse", "--verify", "--quiet", ref)
    return out.strip() if code == 0 and out.strip() else None


# --- events --------------------------------------------------------------------------------------

_ACTION_NAMES = {"created": "pushed new", "removed": "deleted", "pushed": "pushed to"}


def render_event(event: EventRow, urls: InstanceUrls) -> dict[str, Any]:
    """Entities::Event for a push event."""
    author = {
        "id": event.author_id,
        "username": event.author_username,
        "name": event.author_name,
        "state": event.author_state,
        "locked": False,
        "avatar_url": None,
        "web_url": f"{urls.base}/{event.author_username}",
    }
    return {
        "id": event.id,
        "title": None,
        "project_id": event.project_id,
        "action_name": _ACTION_NAMES[event.push_action],
        "target_id": None,
        "target_iid": None,
        "target_type": None,
        "author_id": event.author_id,
        "target_title": None,
        "created_at": iso(event.created_at),
        "author": author,
        "imported": False,
        "imported_from": "none",
        "push_data": {
            "commit_count": event.commit_count,
            "action": event.push_action,
            "ref_type": event.ref_type,
            "commit_from": event.commit_from,
            "commit_to": event.commit_to,
            "ref": event.ref,
            "commit_title": event.commit_title,
            "ref_count": event.ref_count,
        },
        "author_username": event.author_username,
    }


async def list_events(conn: Conn, values: dict[str, Any], page: Page, **scope: Any) -> Paged[EventRow]:
    """Only push events exist here: any other action or a target_type filter finds nothing."""
    action = values.get("action")
    if values.get("target_type") or (action and action != "pushed"):
        return Paged(0, [])
    event_filter = EventFilter(
        action=action,
        before=values.get("before"),
        after=values.get("after"),
        ascending=values.get("sort") == "asc",
        **scope,
    )
    found, total = await events_db.list_events(conn, event_filter, limit=page.limit, offset=page.offset)
    return Paged(total, found)


# --- dead jobs -----------------------------------------------------------------------------------


def render_dead_job(job: jobs_db.DeadJob) -> dict[str, Any]:
    return {
        "id": job.id,
        "queue": job.queue_name,
        "task": job.task_name,
        "status": job.status,
        "args": orjson.loads(job.args),
        "attempts": job.attempts,
        "failed_at": iso(job.failed_at),
    }


async def dead_jobs(conn: Conn, page: Page) -> Paged[jobs_db.DeadJob]:
    found, total = await jobs_db.dead_jobs(conn, limit=page.limit, offset=page.offset)
    return Paged(total, found)


async def retry_dead_job(conn: Conn, job_id: int) -> None:
    if not await jobs_db.retry_dead_job(conn, job_id):
        raise Missing("Job")
