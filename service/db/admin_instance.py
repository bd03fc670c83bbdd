"""Broadcast messages and application settings for the admin API (sql/admin_instance.sql)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from service.db.admin_pages import Paged, paged
from service.db.queries import sql
from service.db.rows import Conn, row

_LIST = sql("admin_list_broadcast_messages")
_FIND = sql("admin_find_broadcast_message")
_INSERT = sql("admin_insert_broadcast_message")
_UPDATE = sql("admin_update_broadcast_message")
_DELETE = sql("admin_delete_broadcast_message")
_UPDATE_SETTINGS = sql("admin_update_application_settings")
_GET_SETTINGS = sql("get_application_settings")

BROADCAST_FIELDS = (
    "message",
    "starts_at",
    "ends_at",
    "broadcast_type",
    "target_path",
    "target_access_levels",
    "show_in_cli",
    "dismissable",
    "theme",
)


@dataclass(frozen=True)
class BroadcastRow:
    id: int
    message: str
    starts_at: datetime
    ends_at: datetime
    broadcast_type: str
    target_path: str
    target_access_levels: list[int]
    show_in_cli: bool
    dismissable: bool
    theme: str


async def list_broadcast_messages(conn: Conn, *, limit: int, offset: int) -> Paged[BroadcastRow]:
    return paged(BroadcastRow, await conn.fetch(_LIST, limit, offset))


async def find_broadcast_message(conn: Conn, message_id: int) -> BroadcastRow | None:
    return row(BroadcastRow, await conn.fetchrow(_FIND, message_id))


async def insert_broadcast_message(conn: Conn, values: dict[str, Any]) -> int:
    message_id: int = await conn.fetchval(_INSERT, *(values.get(name) for name in BROADCAST_FIELDS))
    return message_id


async def update_broadcast_message(conn: Conn, message_id: int, values: dict[str, Any]) -> bool:
    updated = await conn.fetchval(_UPDATE, message_id, *(values.get(name) for name in BROADCAST_FIELDS))
    return updated is not None


async def delete_broadcast_message(conn: Conn, message_id: int) -> bool:
    return await conn.fetchval(_DELETE, message_id) is not None


async def get_application_settings(conn: Conn) -> dict[str, Any]:
    record = await conn.fetchrow(_GET_SETTINGS)
    return dict(record.items())


async def update_application_settings(
    conn: Conn, values: dict[str, Any], *, token_digest: str | None, clear_token: bool, clear_lifetime: bool
) -> None:
    await conn.execute(
        _UPDATE_SETTINGS,
        values.get("enabled_git_access_protocol"),
        values.get("receive_max_input_size"),
        values.get("gitlab_shell_operation_limit"),
        values.get("require_personal_access_token_expiry"),
        values.get("max_personal_access_token_lifetime"),
        values.get("personal_access_token_prefix"),
        values.get("error_tracking_enabled"),
        token_digest,
        values.get("admin_mode"),
        values.get("enforce_terms"),
        values.get("email_confirmation_setting"),
        values.get("two_factor_for_cli"),
        values.get("default_branch_name"),
        values.get("rsa_key_restriction"),
        values.get("dsa_key_restriction"),
        values.get("ecdsa_key_restriction"),
        values.get("ed25519_key_restriction"),
        values.get("ecdsa_sk_key_restriction"),
        clear_token,
        clear_lifetime,
        values.get("ed25519_sk_key_restriction"),
        values.get("allow_local_requests_from_web_hooks_and_services"),
    )
