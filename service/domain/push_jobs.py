"""The PostReceive job: what a push changes outside the repository (GitLab app/workers/post_receive.rb,
Git::ProcessRefChangesService, Git::BranchPushService / Git::TagPushService, PushEventPayloadService,
Gitlab::DataBuilder::Push).

Per push: one push event per ref change (one bulk event per kind of change past 3 refs), the
project's last_activity_at and last_repository_updated_at, and one Push Hook / Tag Push Hook
delivery per matching project hook and system hook (none for the refs of one kind of change, a
branch or tag created, updated or removed, when more than 3 of them were pushed at once: GitLab's
push_event_hooks_limit, counted per kind as Git::ProcessRefChangesService#process_changes_by_action).
Everything is written in one transaction together with the delivery jobs, and keyed by the job's id,
so a job that runs twice (at-least-once) records one event and creates one delivery per hook.

Wiki pushes touch the project's last_activity_at only (GitLab's wiki pushes create wiki page events,
which this service does not have). A deleted default branch is recorded and announced like any
other deleted branch (GitLab's pre-receive check refuses it; when it happens anyway, the worker has
no special case for it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from service.db.rows import Pool
from service.db import push_jobs as jobs_db
from service.db.push_jobs import NewDelivery, PushEventRow, PushHook, PushJobContext
from service.domain.actors import InvalidRepository, parse_gl_repository, parse_identifier
from service.domain.checks import Change, parse_changes
from service.domain.push_options import parse_push_options
from service.domain.ref_matcher import wildcard_matches
from service.domain.repository import Git, RepositoryInspector, hashed_disk_path
from service.domain.urls import InstanceUrls
from service.domain.webhooks import PUSH_HOOK, SYSTEM_HOOK, TAG_PUSH_HOOK, hook_fires
from service.unavailable import BackendUnavailable

log = logging.getLogger("gitlab_internal_api.post_receive_job")

BLANK_SHA = "0" * 40
# GitLab's ApplicationSetting push_event_hooks_limit and push_event_activities_limit (both 3)
PUSH_EVENT_HOOKS_LIMIT = 3
PUSH_EVENT_ACTIVITIES_LIMIT = 3
MAX_HOOK_COMMITS = 20  # Gitlab::DataBuilder::Push: at most the 20 latest commits
COMMIT_TITLE_MAX = 70  # PushEventPayloadService: the title truncated to 70 characters
# Commit#title: a first line of 100 characters or more is cut at a space within its first 78, "..." added
TITLE_FULL_BELOW = 100
TITLE_TRUNCATED_TO = 81
NO_COMMIT_MESSAGE = "No commit message"  # Commit#full_title of a blank message
# String#strip's whitespace (Ruby): not Unicode spaces as Python's str.strip()
_RUBY_SPACE = " \t\n\v\f\r\0"
# When no storage path is configured the commits cannot be read: hooks get `commits: []` and
# `total_commits_count: 0` (documented in the README), events a commit_count of 0.


@dataclass(frozen=True)
class PostReceiveJob:
    gl_repository: str
    identifier: Any
    changes: str
    push_options: list[str] = field(default_factory=list)
    correlation_id: str = ""


@dataclass(frozen=True)
class PushDeps:
    pool: Pool
    repositories: RepositoryInspector
    urls: InstanceUrls


@dataclass(frozen=True)
class Commits:
    listed: list[dict[str, Any]]  # hook attributes, oldest first, at most 20
    total: int
    tag_message: str | None = None
    checkout_sha: str | None = None


# --- reading the repository ----------------------------------------------------------------------

_RECORD = "\x1e"
_FIELD = "\x00"


class GitTimeout(BackendUnavailable):
    """The repository storage did not answer in time: a job is retried, an admin call answered 503."""

    def __init__(self, reason: str) -> None:
        super().__init__("repository storage", reason)


async def run_git(git: Git, repo: Path, *args: str) -> tuple[int, str]:
    timeout = git.timeout
    process = await asyncio.create_subprocess_exec(
        git.binary,
        *args,
        env={"GIT_DIR": str(repo), "LC_ALL": "C", "PATH": "/usr/bin:/bin"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,  # a group of its own: git's own children are killed with it
    )
    try:
        async with asyncio.timeout(timeout):
            out, _ = await process.communicate()
    except (TimeoutError, asyncio.CancelledError) as stopped:
        # timed out, or the job was cancelled (the worker stopping): never leave git running
        await _kill_group(process)
        if isinstance(stopped, TimeoutError):
            raise GitTimeout(f"git {args[0]} took more than {timeout:g} s in {repo}") from None
        raise
    return process.returncode or 0, out.decode("utf-8", "replace")


async def _kill_group(process: asyncio.subprocess.Process) -> None:
    """SIGKILL to git and its children, then reap it; a git stuck in the kernel (a dead storage)
    that a SIGKILL cannot end yet is left to the event loop's child watcher after 5 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(5):
            await process.wait()


def truncate(text: str, length: int, *, separator: str | None = None, omission: str = "...") -> str:
    """ActiveSupport's String#truncate."""
    if len(text) <= length:
        return text
    stop = length - len(omission)
    if separator is not None:
        found = text.rfind(separator, 0, stop + len(separator))
        stop = found if found >= 0 else stop
    return text[:stop] + omission


def commit_title(message: str) -> str:
    """Commit#title: the message's first line (ended by \\r or \\n), shortened past 99 characters."""
    full = message.split("\n", 1)[0].split("\r", 1)[0] if message.strip() else NO_COMMIT_MESSAGE
    if len(full) < TITLE_FULL_BELOW:
        return full
    return truncate(full, TITLE_TRUNCATED_TO, separator=" ")


def hook_timestamp(raw_date: str) -> str:
    """Commit#timestamp (committed_date.xmlschema) from git's raw `<seconds> <±hhmm>` date.

    Gitaly passes the committer's offset along and GitLab parses it with Time.strptime('%s %z'),
    which keeps +0000 as an offset ("+00:00") and only -0000 as UTC ("Z")."""
    seconds, _, zone = raw_date.partition(" ")
    if zone != "-0000":
        try:
            offset = timedelta(hours=int(zone[1:3] or 0), minutes=int(zone[3:5] or 0))
            when = datetime.fromtimestamp(int(seconds), timezone(-offset if zone.startswith("-") else offset))
            return when.isoformat()
        except (ValueError, OverflowError, OSError):
            pass  # git checks only a date's shape: an offset of 24 hours or more is taken as UTC
    try:
        return datetime.fromtimestamp(int(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (ValueError, OverflowError, OSError):
        # a date past what can be written must not fail the push's job either: the latest that can
        # (Gitaly's own fallback for a date it cannot parse is later still)
        return "9999-12-31T23:59:59Z"


def _commit_attrs(block: str, project_url: str) -> dict[str, Any] | None:
    """Commit#hook_attrs (with_changed_files) from one `git log -z --name-status` record: the
    header fields, then NUL-separated status and path pairs (-z: paths as they are, never quoted)."""
    head, _, files = block.partition(_FIELD + "\n")
    parts = head.split(_FIELD)
    if len(parts) < 5:
        return None
    sha, raw_date, name, email, message = parts[:5]
    added, modified, removed = [], [], []
    entries = files.split(_FIELD)
    for status, path in zip(entries[::2], entries[1::2]):
        if status.startswith("A"):
            added.append(path)
        elif status.startswith("D"):
            removed.append(path)
        else:
            modified.append(path)
    return {
        "id": sha,
        "message": message,
        "title": commit_title(message),
        "timestamp": hook_timestamp(raw_date),
        "url": f"{project_url}/-/commit/{sha}",
        "author": {"name": name, "email": email},
        "added": added,
        "modified": modified,
        "removed": removed,
    }


async def _has_ref(git: Git, repo: Path, ref: str) -> bool:
    code, _ = await run_git(git, repo, "show-ref", "--verify", "--quiet", ref)
    return code == 0


async def _tag_message(git: Git, repo: Path, change: Change) -> str | None:
    """Git::TagHooksService#event_message: the tag's message, if the tag still points at the pushed
    object (else GitLab finds no tag: nil). Gitaly's FindTag gives an annotated tag's message
    without its trailing newlines (catfile.TrimTagMessage) and a lightweight tag's as empty, where
    %(contents) would give the tagged commit's message."""
    code, out = await run_git(
        git, repo, "for-each-ref", "--format=%(objectname)%00%(objecttype)%00%(contents)", change.ref
    )
    name, _, rest = out.partition(_FIELD)
    kind, _, contents = rest.partition(_FIELD)
    if code != 0 or name != change.newrev:
        return None
    return contents.rstrip("\n") if kind == "tag" else ""


async def read_commits(
    repositories: RepositoryInspector, ctx: PushJobContext, change: Change, project_url: str
) -> Commits:
    """The commits a change brought, from `git` in the storage's path (empty without one)."""
    assert ctx.project_id is not None and ctx.repository_storage is not None
    relative = (ctx.legacy_disk_path or hashed_disk_path(ctx.project_id)) + ".git"
    repo = repositories.repository_dir(ctx.repository_storage, relative)
    git = repositories.job_git
    if repo is None or git is None or change.deletion:
        return Commits([], 0)
    tag_message = None
    tip = change.newrev
    if change.tag_name is not None:
        tag_message = await _tag_message(git, repo, change)
        code, out = await run_git(git, repo, "rev-parse", "--verify", "--quiet", f"{change.newrev}^{{commit}}")
        if code != 0:
            return Commits([], 0, tag_message)
        tip = out.strip()
        # Git::TagHooksService: the tagged commit is the push's one commit
        spec = [tip, "-1"]
    elif change.creation and ctx.default_branch not in (None, change.branch_name) and await _has_ref(
        git, repo, f"refs/heads/{ctx.default_branch}"
    ):
        # Git::BranchHooksService#threshold_commits: a new branch other than the default one brings
        # what the default branch has not (commits_between(default_branch, newrev))
        spec = [tip, "--not", f"refs/heads/{ctx.default_branch}"]
    elif change.creation:
        # ... and the new default branch (or any branch of a project without one, or whose default
        # branch is not in the repository: never pushed, or deleted) all its commits
        # (repository.commits(newrev), counted by commit_count_for_ref)
        spec = [tip]
    else:
        spec = [f"{change.oldrev}..{tip}"]
    code, out = await run_git(git, repo, "rev-list", "--count", *spec)
    if code != 0:
        return Commits([], 0, tag_message, tip)
    total = int(out.strip() or 0)
    code, out = await run_git(
        git,
        repo,
        "log",
        f"-{MAX_HOOK_COMMITS}",
        "--name-status",
        "--no-renames",
        "-z",
        "--date=raw",
        "--format=%x1e%H%x00%cd%x00%an%x00%ae%x00%B%x00",
        *spec,
    )
    listed = [attrs for block in out.split(_RECORD) if block.strip() if (attrs := _commit_attrs(block, project_url))]
    listed.reverse()  # oldest first, as GitLab's commits.last(20)
    return Commits(listed, total, tag_message, tip)


# --- payloads ------------------------------------------------------------------------------------


def project_hook_attrs(ctx: PushJobContext, urls: InstanceUrls) -> dict[str, Any]:
    """Project#hook_attrs."""
    assert ctx.full_path is not None
    web_url = urls.project_url(ctx.full_path)
    ssh_url = urls.ssh_url_to_repo(ctx.full_path)
    http_url = urls.http_url_to_repo(ctx.full_path)
    return {
        "id": ctx.project_id,
        "name": ctx.project_name,
        "description": ctx.project_description,
        "web_url": web_url,
        "avatar_url": None,
        "git_ssh_url": ssh_url,
        "git_http_url": http_url,
        "namespace": ctx.namespace_name,
        "visibility_level": ctx.visibility_level,
        "path_with_namespace": ctx.full_path,
        "default_branch": ctx.default_branch,
        "ci_config_path": None,
        "homepage": web_url,
        "url": ssh_url,
        "ssh_url": ssh_url,
        "http_url": http_url,
    }


def ref_protected(ctx: PushJobContext, change: Change) -> bool:
    """Project#protected_for?(ref): a protected branch (or tag) whose name or wildcard matches."""
    if change.branch_name is not None:
        return any(wildcard_matches(rule, change.branch_name) for rule in ctx.protected_branches)
    if change.tag_name is not None:
        return any(wildcard_matches(rule, change.tag_name) for rule in ctx.protected_tags)
    return False


def push_data(
    ctx: PushJobContext, urls: InstanceUrls, change: Change, commits: Commits, push_options: dict[str, Any]
) -> dict[str, Any]:
    """Gitlab::DataBuilder::Push.build."""
    kind = "tag_push" if change.tag_name is not None else "push"
    project = project_hook_attrs(ctx, urls)
    if change.deletion:
        checkout_sha = None
    elif kind == "tag_push":
        checkout_sha = commits.checkout_sha
    else:
        checkout_sha = change.newrev
    return {
        "object_kind": kind,
        "event_name": kind,
        "before": change.oldrev,
        "after": change.newrev,
        "ref": change.ref,
        "ref_protected": ref_protected(ctx, change),
        "checkout_sha": checkout_sha,
        "message": commits.tag_message if kind == "tag_push" else None,
        "user_id": ctx.user_id,
        "user_name": ctx.user_name,
        "user_username": ctx.user_username,
        # User#public_email: this service keeps none, so null as GitLab's for a user who set none
        "user_email": None,
        "user_avatar": None,
        "project_id": ctx.project_id,
        "project": project,
        "commits": commits.listed,
        "total_commits_count": commits.total,
        "push_options": push_options,
        "repository": {
            key: project[key]
            for key in ("name", "url", "description", "homepage", "git_http_url", "git_ssh_url", "visibility_level")
        },
    }


def push_action(change: Change) -> str:
    if change.creation:
        return "created"
    if change.deletion:
        return "removed"
    return "pushed"


def event_commit_title(commits: Commits) -> str | None:
    """PushEventPayloadService#commit_title: the newest commit's message up to its first newline,
    stripped, then truncate(70)."""
    if not commits.listed:
        return None
    message: str = commits.listed[-1]["message"]
    return truncate(message.split("\n", 1)[0].strip(_RUBY_SPACE), COMMIT_TITLE_MAX)


def event_row(change: Change, commits: Commits, key: str) -> PushEventRow:
    """PushEventPayloadService."""
    return PushEventRow(
        push_action=push_action(change),
        ref_type="tag" if change.tag_name is not None else "branch",
        ref=change.short_ref,
        commit_from=None if change.creation else change.oldrev,
        commit_to=None if change.deletion else change.newrev,
        commit_count=commits.total,
        commit_title=event_commit_title(commits),
        idempotency_key=key,
    )


@dataclass
class PushPlan:
    events: list[PushEventRow] = field(default_factory=list)
    deliveries: list[NewDelivery] = field(default_factory=list)


def _ref_changes(changes: str) -> list[Change]:
    return [c for c in parse_changes(changes, strict=False) if c.branch_name is not None or c.tag_name is not None]


async def plan_push(
    deps: PushDeps,
    ctx: PushJobContext,
    job_id: int,
    changes: Sequence[Change],
    hooks: Sequence[PushHook],
    options: dict[str, Any],
) -> PushPlan:
    plan = PushPlan()
    assert ctx.full_path is not None
    project_url = deps.urls.project_url(ctx.full_path)
    groups: dict[tuple[str, str], list[tuple[int, Change]]] = defaultdict(list)
    for index, change in enumerate(changes):
        groups[("tag" if change.tag_name is not None else "branch", push_action(change))].append((index, change))
    # Git::ProcessRefChangesService: the branches' groups, then the tags', each in order of first
    # appearance; both limits count the refs of one group, not of the push
    ordered = sorted(groups.items(), key=lambda group: group[0][0] == "tag")
    for (ref_type, action), members in ordered:
        execute_hooks = len(members) <= PUSH_EVENT_HOOKS_LIMIT
        bulk = len(members) > PUSH_EVENT_ACTIVITIES_LIMIT
        if bulk:
            # BulkPushEventPayloadService: one event for the lot, with their number
            first = members[0][0]
            plan.events.append(
                PushEventRow(
                    action,
                    ref_type,
                    None,
                    None,
                    None,
                    0,
                    None,
                    f"{job_id}:bulk:{ref_type}:{action}:{first}",
                    ref_count=len(members),
                )
            )
        for index, change in members:
            if bulk and not execute_hooks:
                continue  # neither an event nor hooks need its commits
            commits = await read_commits(deps.repositories, ctx, change, project_url)
            if not bulk:
                plan.events.append(event_row(change, commits, f"{job_id}:{index}"))
            if not execute_hooks:
                continue
            data = None
            event_uuid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"post-receive/{job_id}/{index}"))
            for hook in hooks:
                if not hook_fires(hook, ref_type, change.branch_name or ""):
                    continue
                data = data or push_data(ctx, deps.urls, change, commits, options)
                plan.deliveries.append(
                    NewDelivery(
                        hook_id=hook.id,
                        delivery_key=f"{job_id}:{index}:{hook.id}",
                        event_header=SYSTEM_HOOK
                        if hook.type == "SystemHook"
                        else (TAG_PUSH_HOOK if ref_type == "tag" else PUSH_HOOK),
                        trigger="tag_push_hooks" if ref_type == "tag" else "push_hooks",
                        payload=data,
                        event_uuid=event_uuid,
                    )
                )
    return plan


async def run_post_receive_job(deps: PushDeps, job_id: int, job: PostReceiveJob) -> int:
    """The job; returns how many deliveries it created (0 when run again)."""
    try:
        repository = parse_gl_repository(job.gl_repository)
    except InvalidRepository:
        log.error("post_receive job %s: invalid gl_repository %r", job_id, job.gl_repository)
        return 0
    if repository.repo_type not in ("project", "wiki"):
        return 0  # snippets and designs: nothing outside the repository changes
    pusher = parse_identifier(job.identifier)
    async with deps.pool.acquire() as conn:
        ctx = await jobs_db.push_job_context(
            conn, repository.container_id, pusher.user_id, pusher.owner_of_key_id, pusher.username
        )
        if ctx.project_id is None:
            log.warning("post_receive job %s: project of %s not found", job_id, job.gl_repository)
            return 0
        if repository.repo_type == "wiki":
            await jobs_db.touch_pushed_project(conn, ctx.project_id, repository_updated=False)
            return 0
        if ctx.user_id is None:
            # PostReceive#identify_user: "Triggered hook for non-existing user"
            log.error("post_receive job %s: no user for identifier %r", job_id, job.identifier)
            return 0
        hooks = await jobs_db.hooks_for_push(conn, ctx.project_id)
    changes = _ref_changes(job.changes)
    plan = await plan_push(deps, ctx, job_id, changes, hooks, parse_push_options(job.push_options))
    async with deps.pool.acquire() as conn, conn.transaction():
        await jobs_db.insert_push_events(conn, ctx.project_id, ctx.user_id, plan.events)
        await jobs_db.touch_pushed_project(conn, ctx.project_id, repository_updated=True)
        created = await jobs_db.insert_deliveries(conn, plan.deliveries)
        await jobs_db.enqueue_deliveries(conn, created)
    log.info(
        "post_receive job %s: %d events, %d deliveries",
        job_id,
        len(plan.events),
        len(created),
        extra={"project_id": ctx.project_id, "recorded_at": datetime.now(UTC).isoformat()},
    )
    return len(created)
