"""application_settings: the one row of instance settings (sql/application_settings.sql)."""

from __future__ import annotations

from typing import Any

import orjson

from service.db.queries import one, statement
from service.db.rows import Conn

_GET = one("get_application_settings")
_UPDATE = statement("update_application_settings")


async def get_application_settings(conn: Conn) -> dict[str, Any]:
    record = await conn.fetchrow(_GET)
    assert record is not None  # migration 0001 inserts the one settings row
    return dict(record.items())


async def update_application_settings(
    conn: Conn,
    values: dict[str, Any],
    *,
    token_digest: str | None,
    clear_token: bool,
    clear_lifetime: bool,
    default_branch_protection: dict[str, Any] | None = None,
) -> None:
    await conn.execute(
        _UPDATE,
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
        values.get("default_project_creation"),
        values.get("allow_local_requests_from_system_hooks"),
        None if default_branch_protection is None else orjson.dumps(default_branch_protection).decode(),
    )
