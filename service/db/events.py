"""Push events for GitLab's Events API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from service.db.queries import many
from service.db.rows import Conn, rows

_LIST = many("list_events")


@dataclass(frozen=True)
class EventRow:
    id: int
    project_id: int | None
    action: str
    author_id: int
    created_at: datetime
    push_action: str
    ref_type: str
    ref: str | None
    commit_from: str | None
    commit_to: str | None
    commit_count: int
    commit_title: str | None
    ref_count: int | None
    author_name: str
    author_username: str
    author_state: str
    total: int


@dataclass(frozen=True)
class EventFilter:
    project_id: int | None = None
    author_id: int | None = None
    action: str | None = None
    before: date | None = None
    after: date | None = None
    ascending: bool = False
    viewer_id: int | None = None  # None: an administrator


async def list_events(conn: Conn, f: EventFilter, *, limit: int, offset: int) -> tuple[list[EventRow], int]:
    found = rows(
        EventRow,
        await conn.fetch(
            _LIST, f.project_id, f.author_id, f.action, f.before, f.after, f.ascending, limit, offset, f.viewer_id
        ),
    )
    return found, found[0].total if found else 0
