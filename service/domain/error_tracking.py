"""Error tracking's key check (GitLab: lib/api/internal/error_tracking.rb)."""

from __future__ import annotations

from typing import Any

from service.db import projects as projects_db
from service.db.rows import Conn
from service.domain.ids import as_id
from service.domain.app_settings import AppSettings
from service.domain.errors import Missing, Unprocessable


async def enabled_for(conn: Conn, project_id: Any, public_key: Any, app_settings: AppSettings) -> bool:
    """Is error tracking on for this project and client key? Both parameters are required (422)."""
    if project_id in (None, "") or not public_key:
        raise Unprocessable()
    number = as_id(project_id, lenient=True)
    found = await projects_db.find_error_tracking_key(conn, number, str(public_key)) if number else None
    if found is None:
        raise Missing()  # ActiveRecord::RecordNotFound
    return bool(app_settings.error_tracking_enabled and found.active_key)
