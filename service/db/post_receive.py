"""The query behind /internal/post_receive."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple

import orjson

from service.db.queries import many, returning
from service.db.rows import Conn, rows

_CONTEXTS = many("post_receive_contexts")
_ADOPT_DEFAULT_BRANCH = returning("adopt_default_branch")


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

    @classmethod
    def unknown(cls) -> PostReceiveContext:
        """What a push is answered with when its context could not be read: no messages, and no
        default branch adopted (a later push adopts it)."""
        return cls(None, None, None, None, None, None, None, None, "[]")


class PushLookup(NamedTuple):
    project_id: int | None
    user_id: int | None
    key_id: int | None
    username: str | None
    branches: tuple[str, ...]


async def post_receive_contexts(conn: Conn, lookups: Sequence[PushLookup]) -> list[PostReceiveContext]:
    """One context per push, in order, from one query (batched, see service/db/batch.py)."""
    return rows(
        PostReceiveContext,
        await conn.fetch(
            _CONTEXTS,
            [lookup.project_id for lookup in lookups],
            [lookup.user_id for lookup in lookups],
            [lookup.key_id for lookup in lookups],
            [lookup.username for lookup in lookups],
            [orjson.dumps(lookup.branches).decode() for lookup in lookups],
        ),
    )


async def adopt_default_branch(conn: Conn, ctx: PostReceiveContext, created_branches: list[str]) -> PostReceiveContext:
    """Give an empty project the default branch its first push created; returns the updated context."""
    branch = await conn.fetchval(_ADOPT_DEFAULT_BRANCH, ctx.project_id, created_branches)
    return ctx if branch is None else replace(ctx, default_branch=branch)
