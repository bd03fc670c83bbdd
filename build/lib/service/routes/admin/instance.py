"""Instance-wide records: broadcast messages and application settings (GitLab
lib/api/broadcast_messages.rb, lib/api/settings.rb)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from schemas.admin import BroadcastCreateIn, BroadcastUpdateIn, PageIn, SettingsUpdateIn
from service import keys
from service.db import admin_instance as instance_db
from service.domain.admin import entities
from service.domain.admin.errors import Missing
from service.domain.tokens import token_digest
from service.errors import json_response
from service.routes.admin.common import (
    AdminRoutes,
    created,
    int_param,
    load_params,
    page,
    paginated,
    pool,
)

admin_routes = AdminRoutes()  # auth.ADMIN
public_routes = AdminRoutes()  # auth.PUBLIC: GitLab lists broadcast messages without authentication


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(values: dict[str, Any]) -> dict[str, Any]:
    for name in ("starts_at", "ends_at"):
        value = values.get(name)
        if isinstance(value, datetime) and value.tzinfo is None:
            values[name] = value.replace(tzinfo=UTC)
    return values


async def _message(request: web.Request, message_id: int) -> dict[str, Any]:
    async with pool(request).acquire() as conn:
        found = await instance_db.find_broadcast_message(conn, message_id)
    if found is None:
        raise Missing()  # BroadcastMessage.find: ActiveRecord::RecordNotFound
    return entities.broadcast_message(found, now=_now())


@public_routes.get("/api/v4/broadcast_messages")
async def list_broadcast_messages(request: web.Request) -> web.Response:
    """GET /broadcast_messages (broadcast_messages.rb), newest first."""
    values = await load_params(request, PageIn())
    current = page(values)
    async with pool(request).acquire() as conn:
        result = await instance_db.list_broadcast_messages(conn, limit=current.limit, offset=current.offset)
    now = _now()
    return paginated(request, current, result, lambda m: entities.broadcast_message(m, now=now))


@public_routes.get("/api/v4/broadcast_messages/{id}")
async def get_broadcast_message(request: web.Request) -> web.Response:
    """GET /broadcast_messages/:id (broadcast_messages.rb)."""
    return json_response(await _message(request, int_param(request, "id")))


@admin_routes.post("/api/v4/broadcast_messages")
async def create_broadcast_message(request: web.Request) -> web.Response:
    """POST /broadcast_messages (broadcast_messages.rb, admin)."""
    values = _aware(await load_params(request, BroadcastCreateIn()))
    async with pool(request).acquire() as conn:
        message_id = await instance_db.insert_broadcast_message(conn, values)
    return created(await _message(request, message_id))


@admin_routes.put("/api/v4/broadcast_messages/{id}")
async def update_broadcast_message(request: web.Request) -> web.Response:
    """PUT /broadcast_messages/:id (broadcast_messages.rb, admin)."""
    message_id = int_param(request, "id")
    values = _aware(await load_params(request, BroadcastUpdateIn()))
    async with pool(request).acquire() as conn:
        if not await instance_db.update_broadcast_message(conn, message_id, values):
            raise Missing()
    return json_response(await _message(request, message_id))


@admin_routes.delete("/api/v4/broadcast_messages/{id}")
async def delete_broadcast_message(request: web.Request) -> web.Response:
    """DELETE /broadcast_messages/:id (broadcast_messages.rb, admin): 200 with the removed message."""
    message_id = int_param(request, "id")
    body = await _message(request, message_id)
    async with pool(request).acquire() as conn:
        await instance_db.delete_broadcast_message(conn, message_id)
    return json_response(body)


# Columns shown by GET /application/settings: what the internal endpoints read, never the token digest.
_SHOWN_SETTINGS = tuple(name for name in SettingsUpdateIn().fields if name != "error_tracking_access_token")


async def _settings_body(request: web.Request) -> dict[str, Any]:
    async with pool(request).acquire() as conn:
        current = await instance_db.get_application_settings(conn)
    body = {name: current.get(name) for name in _SHOWN_SETTINGS}
    body["id"] = current["id"]
    body["updated_at"] = entities.iso(current["updated_at"])
    return body


@admin_routes.get("/api/v4/application/settings")
async def get_settings(request: web.Request) -> web.Response:
    """GET /application/settings (settings.rb, admin)."""
    return json_response(await _settings_body(request))


@admin_routes.put("/api/v4/application/settings")
async def update_settings(request: web.Request) -> web.Response:
    """PUT /application/settings (settings.rb, admin). error_tracking_access_token is stored as
    its digest only; "" or null clears it."""
    values = await load_params(request, SettingsUpdateIn())
    token = values.get("error_tracking_access_token")
    clear_token = "error_tracking_access_token" in values and not token
    clear_lifetime = (
        "max_personal_access_token_lifetime" in values
        and values["max_personal_access_token_lifetime"] is None
    )
    async with pool(request).acquire() as conn:
        await instance_db.update_application_settings(
            conn,
            values,
            token_digest=token_digest(token) if token else None,
            clear_token=clear_token,
            clear_lifetime=clear_lifetime,
        )
    # The internal endpoints read settings through a per-process cache; drop it so they see the change.
    request.app[keys.APP_SETTINGS].invalidate()
    return json_response(await _settings_body(request))
