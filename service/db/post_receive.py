"""The query behind /internal/post_receive."""

from __future__ import annotations

from dataclasses import dataclass, replace

from service.db.queries import sql
from service.db.rows import Conn, row

_CONTEXT = sql("post_receive_context")
_ADOPT_DEFAULT_BRANCH = sql("adopt_default_branch")


@dataclass(frozen=True)
class PostReceiveContext:
    user_id: int | None
    project_id: int | None
    full_path: str | None
    default_branch: str | None
    printing_merge_request_link_enabled: bool | None
    merge_requests_access_level: int | None
    access_level: int | None
    broadcast_message: str | None
    open_merge_requests: str  # JSON array of {source_branch, iid, target_path}


async def post_receive_context(
    conn: Conn,
    *,
    project_id: int | None,
    user_id: int | None,
    key_id: int | None,
    username: str | None,
    branches: list[str],
) -> PostReceiveContext:
    found = row(
        PostReceiveContext, await conn.fetchrow(_CONTEXT, project_id, user_id, key_id, username, branches)
    )
    assert found is not None
    return found


async def adopt_default_branch(conn: Conn, ctx: PostReceiveContext, created_branches: list[str]) -> PostReceiveContext:
    """Give an empty project the default branch its first push created; returns the updated context."""
    branch = await conn.fetchval(_ADOPT_DEFAULT_BRANCH, ctx.project_id, created_branches)
    return ctx if branch is None else replace(ctx, default_branch=branch)
