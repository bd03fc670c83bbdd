"""Instance-wide records: broadcast messages and application settings (GitLab
lib/api/broadcast_messages.rb, lib/api/settings.rb)."""

from __future__ import annotations

from typing import Any

from service.db import application_settings as settings_db
from service.db import broadcast_messages as broadcasts_db
from service.db.broadcast_messages import BroadcastRow
from service.db.rows import Conn, Paged
from service.domain.admin.pagination import Page
from service.domain.app_settings import SettingsCache
from service.domain.errors import Missing
from service.domain.tokens import token_digest


async def list_broadcast_messages(conn: Conn, page: Page) -> Paged[BroadcastRow]:
    return await broadcasts_db.list_broadcast_messages(conn, limit=page.limit, offset=page.offset)


async def broadcast_message(conn: Conn, message_id: int) -> BroadcastRow:
    found = await broadcasts_db.find_broadcast_message(conn, message_id)
    if found is None:
        raise Missing()  # BroadcastMessage.find: ActiveRecord::RecordNotFound
    return found


async def create_broadcast_message(conn: Conn, values: dict[str, Any]) -> int:
    return await broadcasts_db.insert_broadcast_message(conn, values)


async def update_broadcast_message(conn: Conn, message_id: int, values: dict[str, Any]) -> None:
    if not await broadcasts_db.update_broadcast_message(conn, message_id, values):
        raise Missing()


async def delete_broadcast_message(conn: Conn, message_id: int) -> None:
    await broadcasts_db.delete_broadcast_message(conn, message_id)


async def settings(conn: Conn) -> dict[str, Any]:
    return await settings_db.get_application_settings(conn)


async def update_settings(conn: Conn, values: dict[str, Any], cache: SettingsCache) -> None:
    """error_tracking_access_token is stored as its digest only; "" or null clears it, and a null
    max_personal_access_token_lifetime clears the limit."""
    token = values.get("error_tracking_access_token")
    await settings_db.update_application_settings(
        conn,
        values,
        token_digest=token_digest(token) if token else None,
        clear_token="error_tracking_access_token" in values and not token,
        clear_lifetime=(
            "max_personal_access_token_lifetime" in values and values["max_personal_access_token_lifetime"] is None
        ),
    )
    # The internal endpoints read settings through a per-process cache; drop it so they see the change.
    cache.invalidate()
