"""PostReceiveService's answer: the messages a pusher sees after `git push` (reference 3.9)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, NamedTuple

import orjson

from service.db.rows import Conn, Pool
from service.db import post_receive as post_receive_db
from service.db.batch import BatchLoader
from service.db.pool import is_database_outage
from service.db.post_receive import PostReceiveContext, PushLookup
from service.db.push_jobs import JobRequest
from service.domain.actors import RepositoryRef, parse_identifier, repository_from_params
from service.domain.branch_protection import protect_default_branch
from service.domain.checks import parse_changes
from service.domain.push_options import parse_push_options, unsupported_notice
from service.domain.reference_counter import Decrease, ReferenceCounter
from service.domain.urls import InstanceUrls
from service.unavailable import BackendUnavailable

log = logging.getLogger("gitlab_internal_api")

MERGE_REQUESTS_DISABLED = 0


def pushed_branches(changes: str) -> list[tuple[str, bool, bool]]:
    """(branch, created, deleted) for each branch line of the change list, in push order."""
    return [
        (change.branch_name, change.creation, change.deletion)
        for change in parse_changes(changes, strict=False)
        if change.branch_name is not None
    ]


def merge_request_messages(ctx: PostReceiveContext, branches: Sequence[str], urls: InstanceUrls) -> list[str]:
    """MergeRequests::GetUrlsService: a link per pushed branch, except the default and deleted ones."""
    if ctx.full_path is None or ctx.default_branch is None:
        return []
    if not ctx.printing_merge_request_link_enabled or ctx.merge_requests_access_level == MERGE_REQUESTS_DISABLED:
        return []
    messages: list[str] = []
    open_requests: dict[str, Any] | None = None
    for branch in branches:
        if branch == ctx.default_branch:
            continue
        if open_requests is None:  # decoded for the first branch that needs it (most pushes are to the default)
            open_requests = {mr["source_branch"]: mr for mr in orjson.loads(ctx.open_merge_requests)}
        existing = open_requests.get(branch)
        if existing is not None:
            url = urls.merge_request_url(existing["target_path"], existing["iid"])
            messages.append(f"View merge request for {branch}:\n  {url}")
        else:
            messages.append(
                f"To create a merge request for {branch}, visit:\n  {urls.new_merge_request_url(ctx.full_path, branch)}"
            )
    return messages


def post_receive_messages(
    ctx: PostReceiveContext,
    decrease: Decrease,
    branches: Sequence[str],
    repository: RepositoryRef | None,
    urls: InstanceUrls,
    push_options_notice: str | None = None,
) -> list[dict[str, Any]]:
    """Alerts go in front, basic messages after them; blank texts are left out.

    branches: the pushed branches that were not deleted, in push order.
    """
    alerts: list[str] = []
    basics: list[str] = []
    if ctx.broadcast_message:
        alerts.insert(0, ctx.broadcast_message)
    if repository is not None and repository.repo_type == "project":
        basics.extend(merge_request_messages(ctx, branches, urls))
    if ctx.user_id is not None:
        basics.extend(m for m in (decrease.moved_message, decrease.created_message) if m)
    if push_options_notice:
        basics.append(push_options_notice)
    return [{"message": m, "type": "alert"} for m in alerts if m.strip()] + [
        {"message": m, "type": "basic"} for m in basics if m.strip()
    ]


class PostReceiveAnswer(NamedTuple):
    messages: list[dict[str, Any]]
    reference_counter_decreased: bool


async def post_receive(
    contexts: BatchLoader[PushLookup, PostReceiveContext],
    pool: Pool,
    counter: ReferenceCounter,
    urls: InstanceUrls,
    gl_repository: str,
    identifier: Any,
    changes: str,
    jobs: BatchLoader[JobRequest, bool] | None = None,
    push_options: list[str] | None = None,
    correlation_id: str = "",
) -> PostReceiveAnswer:
    """GitLab's PostReceiveService: queue the PostReceive job, adopt a first default branch, lower
    the counter, tell the pusher.

    The job is queued while the context is read (both batched; the insert may first wait for the
    worker's insert in flight, service/db/batch.py); if queueing fails the call fails (503) before
    the counter is touched, and Gitaly's retry queues it again.
    """
    repository = repository_from_params({"gl_repository": gl_repository}) if gl_repository else None
    project_id = repository.container_id if repository and repository.repo_type in ("project", "wiki") else None
    pusher = parse_identifier(identifier)
    pushed = pushed_branches(changes)
    lookup = PushLookup(
        project_id=project_id,
        user_id=pusher.user_id,
        key_id=pusher.owner_of_key_id,
        username=pusher.username,
        branches=tuple(branch for branch, _created, deleted in pushed if not deleted),
    )
    # The database work comes first and the counter's decrease last: a post_receive that fails
    # (503) must leave the counter as it was, or Gitaly's retry would decrease it twice and the
    # counter would reach 0 while another push is still in flight.
    queued = None
    if jobs is not None and project_id is not None:
        queued = jobs.submit(
            JobRequest(
                orjson.dumps(
                    {
                        "gl_repository": gl_repository,
                        "identifier": identifier if isinstance(identifier, str) else None,
                        "changes": changes,
                        "push_options": push_options or [],
                        "correlation_id": correlation_id,
                    }
                ),
                gl_repository,
            )
        )
    try:
        ctx = await contexts.load(lookup)
    except Exception as exc:
        if queued is None:
            raise
        # The job's outcome decides: not queued, the call fails (503) as queueing failed; queued,
        # a 503 (or a 500) would make Gitaly's retry queue it again, so the push is answered
        # without what needs the context (the merge request links, the broadcast message).
        await queued
        if not (isinstance(exc, BackendUnavailable) or is_database_outage(exc)):  # else a bug: say so
            log.exception("post_receive answered without its context (its job is queued)")
        ctx = PostReceiveContext.unknown()
    else:
        if queued is not None:
            await queued
    is_project = repository is not None and repository.repo_type == "project"
    project_found = ctx.project_id
    if project_found is not None and is_project and any(created for _branch, created, _deleted in pushed):
        created_branches = [branch for branch, created, deleted in pushed if created and not deleted]
        if ctx.default_branch is None:
            async with pool.acquire() as conn:
                ctx = await adopt_default_branch(conn, ctx, created_branches)
        elif ctx.default_branch in created_branches:
            # BranchHooksService#branch_create_hooks: the push that creates the default branch set
            # before it existed (a README project's, or one changed through the API) protects it too
            async with pool.acquire() as conn, conn.transaction():  # the rule with its access levels
                await protect_default_branch(conn, project_found, ctx.default_branch)
    decrease = await counter.decrease(gl_repository, ctx.user_id, project_id)
    notice = unsupported_notice(parse_push_options(push_options)) if push_options else None
    messages = post_receive_messages(ctx, decrease, lookup.branches, repository, urls, notice)
    return PostReceiveAnswer(messages, decrease.decreased)


async def adopt_default_branch(conn: Conn, ctx: PostReceiveContext, created_branches: list[str]) -> PostReceiveContext:
    """An empty project's first push gives it its default branch, protected as its default branch
    protection says (GitLab: BranchHooksService#branch_create_hooks, after_create_default_branch).
    One transaction: a default branch is never adopted without its protection."""
    async with conn.transaction():
        adopted = await post_receive_db.adopt_default_branch(conn, ctx, created_branches)
        if adopted.default_branch is not None and adopted.project_id is not None:
            await protect_default_branch(conn, adopted.project_id, adopted.default_branch)
    return adopted

