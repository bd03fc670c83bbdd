"""Instance-wide records: broadcast messages and application settings (GitLab
lib/api/broadcast_messages.rb, lib/api/settings.rb)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from schemas.admin import BroadcastCreateIn, BroadcastUpdateIn, PageIn, SettingsUpdateIn
from service import app_keys
from service.domain.admin import entities
from service.domain.admin import instance as instance_domain
from service.errors import json_response
from service.routes.admin.common import (
    created,
    int_param,
    load_params,
    page,
    paginated,
    pool,
)

admin_routes = web.RouteTableDef()  # auth.ADMIN
public_routes = web.RouteTableDef()  # auth.PUBLIC: GitLab lists broadcast messages without authentication


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
        found = await instance_domain.broadcast_message(conn, message_id)
    return entities.broadcast_message(found, now=_now())


@public_routes.get("/api/v4/broadcast_messages")
async def list_broadcast_messages(request: web.Request) -> web.Response:
    """GET /broadcast_messages (broadcast_messages.rb), newest first."""
    values = await load_params(request, PageIn())
    current = page(values)
    async with pool(request).acquire() as conn:
        result = await instance_domain.list_broadcast_messages(conn, current)
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
        message_id = await instance_domain.create_broadcast_message(conn, values)
    return created(await _message(request, message_id))


@admin_routes.put("/api/v4/broadcast_messages/{id}")
async def update_broadcast_message(request: web.Request) -> web.Response:
    """PUT /broadcast_messages/:id (broadcast_messages.rb, admin)."""
    message_id = int_param(request, "id")
    values = _aware(await load_params(request, BroadcastUpdateIn()))
    async with pool(request).acquire() as conn:
        await instance_domain.update_broadcast_message(conn, message_id, values)
    return json_response(await _message(request, message_id))


@admin_routes.delete("/api/v4/broadcast_messages/{id}")
async def delete_broadcast_message(request: web.Request) -> web.Response:
    """DELETE /broadcast_messages/:id (broadcast_messages.rb, admin): 200 with the removed message."""
    message_id = int_param(request, "id")
    body = await _message(request, message_id)
    async with pool(request).acquire() as conn:
        await instance_domain.delete_broadcast_message(conn, message_id)
    return json_response(body)


# Columns shown by GET /application/settings: what the internal endpoints read, never the token digest.
_SHOWN_SETTINGS = tuple(name for name in SettingsUpdateIn().fields if name != "error_tracking_access_token")


async def _settings_body(request: web.Request) -> dict[str, Any]:
    async with pool(request).acquire() as conn:
        current = await instance_domain.settings(conn)
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
    """PUT /application/settings (settings.rb, admin)."""
    values = await load_params(request, SettingsUpdateIn())
    async with pool(request).acquire() as conn:
        await instance_domain.update_settings(conn, values, request.app[app_keys.APP_SETTINGS])
    return json_response(await _settings_body(request))
