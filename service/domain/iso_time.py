"""The one ISO 8601 formatter of the API's answers: GitLab's `2024-01-31T12:00:00.000Z`."""

from __future__ import annotations

from datetime import UTC, date, datetime


def iso(value: datetime | date | None) -> str | None:
    """Times in UTC with milliseconds and a Z (a naive time is already UTC, as the database keeps
    it); dates as YYYY-MM-DD."""
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return value.isoformat()
