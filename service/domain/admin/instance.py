"""Instance-wide records: broadcast messages and application settings (GitLab
lib/api/broadcast_messages.rb, lib/api/settings.rb)."""

from __future__ import annotations

import re
from typing import Any

import orjson

from service.db import application_settings as settings_db
from service.db import broadcast_messages as broadcasts_db
from service.db.broadcast_messages import BroadcastRow
from service.db.rows import Conn, Paged
from service.domain import branch_protection
from service.domain.admin.pagination import Page
from service.domain.app_settings import SettingsCache
from service.domain.errors import Invalid, Missing
from service.domain.ssh_keys import SUPPORTED_SIZES, exclusive_sentence
from service.domain.tokens import MAX_LIFETIME_DAYS, token_digest


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
    current = await settings_db.get_application_settings(conn)
    protection = orjson.loads(current["default_branch_protection_defaults"])
    return {**current, **branch_protection.shown_settings(protection)}


# ApplicationSetting's validation of personal_access_token_prefix
_TOKEN_PREFIX = re.compile(r"[a-zA-Z0-9_+=/@:.-]+\Z")
TOKEN_PREFIX_MESSAGE = "can contain only letters of the Base64 alphabet (RFC4648) with the addition of '@', ':' and '.'"


def settings_errors(values: dict[str, Any]) -> dict[str, list[str]]:
    """ApplicationSetting's model validations of the attributes being changed."""
    errors: dict[str, list[str]] = {}
    for technology, sizes in SUPPORTED_SIZES.items():
        attribute = f"{technology}_key_restriction"
        if attribute in values and values[attribute] not in (-1, 0, *sizes):
            choices = exclusive_sentence(["forbidden", "allowed", *map(str, sizes)])
            errors[attribute] = [f"must be {choices}"]
    prefix = values.get("personal_access_token_prefix")
    if prefix and not _TOKEN_PREFIX.match(prefix):
        errors["personal_access_token_prefix"] = [TOKEN_PREFIX_MESSAGE]
    lifetime = values.get("max_personal_access_token_lifetime")
    if lifetime is not None and lifetime > MAX_LIFETIME_DAYS:
        errors["max_personal_access_token_lifetime"] = [f"must be less than or equal to {MAX_LIFETIME_DAYS}"]
    return errors


async def update_settings(conn: Conn, values: dict[str, Any], cache: SettingsCache) -> None:
    """error_tracking_access_token is stored as its digest only; "" or null clears it, and a null
    max_personal_access_token_lifetime clears the limit."""
    errors = settings_errors(values)
    if errors:
        raise Invalid(errors)
    token = values.get("error_tracking_access_token")
    await settings_db.update_application_settings(
        conn,
        values,
        token_digest=token_digest(token) if token else None,
        clear_token="error_tracking_access_token" in values and not token,
        clear_lifetime=(
            "max_personal_access_token_lifetime" in values and values["max_personal_access_token_lifetime"] is None
        ),
        default_branch_protection=branch_protection.stored_setting(values),
    )
    # The internal endpoints read settings through a per-process cache; drop it so they see the change.
    cache.invalidate()
