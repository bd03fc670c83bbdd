"""PostReceiveService's answer: the messages a pusher sees after `git push` (reference 3.9)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from service.db.post_receive import PostReceiveContext
from service.domain.actors import RepositoryRef
from service.domain.checks import BLANK_SHAS
from service.domain.reference_counter import Decrease
from service.domain.urls import InstanceUrls

MERGE_REQUESTS_DISABLED = 0


def pushed_branches(changes: str) -> list[tuple[str, bool, bool]]:
    """(branch, created, deleted) for each branch line of the change list, in push order."""
    result = []
    for line in changes.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2].startswith("refs/heads/"):
            result.append((parts[2][len("refs/heads/") :], parts[0] in BLANK_SHAS, parts[1] in BLANK_SHAS))
    return result


def branch_names(changes: str) -> list[str]:
    return [branch for branch, _created, deleted in pushed_branches(changes) if not deleted]


def created_branch_names(changes: str) -> list[str]:
    return [branch for branch, created, deleted in pushed_branches(changes) if created and not deleted]


def merge_request_messages(ctx: PostReceiveContext, branches: Sequence[str], urls: InstanceUrls) -> list[str]:
    """MergeRequests::GetUrlsService: a link per pushed branch, except the default and deleted ones."""
    if ctx.full_path is None or ctx.default_branch is None:
        return []
    if not ctx.printing_merge_request_link_enabled or ctx.merge_requests_access_level == MERGE_REQUESTS_DISABLED:
        return []
    open_requests = {mr["source_branch"]: mr for mr in orjson.loads(ctx.open_merge_requests)}
    messages = []
    for branch in branches:
        if branch == ctx.default_branch:
            continue
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
) -> list[dict[str, Any]]:
    """Alerts go in front, basic messages after them; blank texts are left out.

    branches: the pushed branches that were not deleted, in push order (branch_names).
    """
    alerts: list[str] = []
    basics: list[str] = []
    if ctx.broadcast_message:
        alerts.insert(0, ctx.broadcast_message)
    if repository is not None and repository.repo_type == "project":
        basics.extend(merge_request_messages(ctx, branches, urls))
    if ctx.user_id is not None:
        basics.extend(m for m in (decrease.moved_message, decrease.created_message) if m)
    return [{"message": m, "type": "alert"} for m in alerts if m.strip()] + [
        {"message": m, "type": "basic"} for m in basics if m.strip()
    ]
