"""Personal access tokens (GitLab lib/api/personal_access_tokens.rb, users.rb)."""

from __future__ import annotations

from datetime import date

from aiohttp import web

from schemas.admin import TokenCreateIn, TokenListIn
from service.domain.admin import entities
from service.domain.admin import tokens as tokens_domain
from service.errors import json_response, no_content
from service.routes.admin.common import (
    app_settings,
    created,
    identity,
    int_param,
    load_params,
    page,
    paginated,
    pool,
)

admin_routes = web.RouteTableDef()  # auth.ADMIN
user_routes = web.RouteTableDef()  # auth.USER


def _render(token: tokens_domain.PersonalAccessTokenRow) -> dict[str, object]:
    return entities.personal_access_token(token, today=date.today())


async def _own_token(request: web.Request) -> tokens_domain.PersonalAccessTokenRow:
    # The middleware authenticated this very token and kept its id.
    token_id = identity(request).token_id
    assert token_id is not None
    async with pool(request).acquire() as conn:
        return await tokens_domain.own_token(conn, token_id)


async def _visible_token(request: web.Request) -> tokens_domain.PersonalAccessTokenRow:
    """Administrators see every token; a user only their own (others are "404 Not Found")."""
    token_id = int_param(request, "id")
    caller = identity(request)
    async with pool(request).acquire() as conn:
        return await tokens_domain.visible_token(
            conn, token_id, caller_id=caller.user_id, caller_is_admin=caller.is_admin
        )


@user_routes.get("/api/v4/personal_access_tokens")
async def list_tokens(request: web.Request) -> web.Response:
    """GET /personal_access_tokens?user_id=&revoked=&state= : all for an admin, else one's own."""
    values = await load_params(request, TokenListIn())
    current = page(values)
    caller = identity(request)
    user_id = values.get("user_id") if caller.is_admin else caller.user_id
    async with pool(request).acquire() as conn:
        result = await tokens_domain.list_tokens(
            conn, current, user_id=user_id, revoked=values.get("revoked"), state=values.get("state")
        )
    return paginated(request, current, result, _render)


@user_routes.get("/api/v4/personal_access_tokens/self")
async def get_own_token(request: web.Request) -> web.Response:
    """GET /personal_access_tokens/self: the token this request carries."""
    return json_response(_render(await _own_token(request)))


@user_routes.delete("/api/v4/personal_access_tokens/self")
async def revoke_own_token(request: web.Request) -> web.Response:
    """DELETE /personal_access_tokens/self: revokes the token this request carries, 204."""
    token = await _own_token(request)
    async with pool(request).acquire() as conn:
        await tokens_domain.revoke(conn, token)
    return no_content()


@user_routes.get("/api/v4/personal_access_tokens/{id}")
async def get_token(request: web.Request) -> web.Response:
    """GET /personal_access_tokens/:id."""
    return json_response(_render(await _visible_token(request)))


@user_routes.delete("/api/v4/personal_access_tokens/{id}")
async def revoke_token(request: web.Request) -> web.Response:
    """DELETE /personal_access_tokens/:id: revokes, 204."""
    token = await _visible_token(request)
    async with pool(request).acquire() as conn:
        await tokens_domain.revoke(conn, token)
    return no_content()


@admin_routes.post("/api/v4/users/{id}/personal_access_tokens")
async def create_token(request: web.Request) -> web.Response:
    """POST /users/:id/personal_access_tokens (users.rb, admin): the token is shown once."""
    user_id = int_param(request, "id")
    values = await load_params(request, TokenCreateIn())
    settings = await app_settings(request)
    async with pool(request).acquire() as conn:
        token, plaintext = await tokens_domain.create_user_token(conn, user_id, values, settings, date.today())
    return created({**_render(token), "token": plaintext})
