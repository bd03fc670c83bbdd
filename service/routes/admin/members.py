"""Direct members of groups and projects (GitLab lib/api/members.rb), shared by both sources."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from schemas.admin import MemberCreateIn, MemberUpdateIn, PageIn
from service.domain.admin import entities
from service.domain.admin import namespaces as namespaces_domain
from service.errors import json_response, no_content
from service.params import params
from service.routes.admin.common import (
    actor_id,
    created,
    int_param,
    load_params,
    page,
    paginated,
    pool,
    urls,
)


async def list_members(request: web.Request, source_type: str, source_id: int) -> web.Response:
    values = await load_params(request, PageIn())
    current = page(values)
    async with pool(request).acquire() as conn:
        result = await namespaces_domain.list_members(conn, source_type, source_id, current)
    return paginated(request, current, result, lambda m: entities.member(m, urls(request)))


async def get_member(request: web.Request, source_type: str, source_id: int) -> web.Response:
    user_id = int_param(request, "user_id")
    async with pool(request).acquire() as conn:
        found = await namespaces_domain.member(conn, source_type, source_id, user_id)
    return json_response(entities.member(found, urls(request)))


async def add_member(request: web.Request, source_type: str, source_id: int) -> web.Response:
    values = await load_params(request, MemberCreateIn())
    async with pool(request).acquire() as conn:
        member = await namespaces_domain.add_member(
            conn,
            source_type,
            source_id,
            user_id=values["user_id"],
            access_level=values["access_level"],
            expires_at=values.get("expires_at"),
            actor_id=actor_id(request),
        )
    return created(entities.member(member, urls(request)))


async def update_member(request: web.Request, source_type: str, source_id: int) -> web.Response:
    user_id = int_param(request, "user_id")
    values = await load_params(request, MemberUpdateIn())
    async with pool(request).acquire() as conn:
        member = await namespaces_domain.update_member(
            conn,
            source_type,
            source_id,
            user_id,
            access_level=values["access_level"],
            expires_at=values.get("expires_at"),
            expires_given="expires_at" in await params(request),
        )
    return json_response(entities.member(member, urls(request)))


async def remove_member(request: web.Request, source_type: str, source_id: int) -> web.Response:
    user_id = int_param(request, "user_id")
    async with pool(request).acquire() as conn:
        await namespaces_domain.remove_member(conn, source_type, source_id, user_id)
    return no_content()


SourceId = Callable[[web.Request], Awaitable[int]]


def add_member_routes(table: web.RouteTableDef, collection: str, source_type: str, source_id: SourceId) -> None:
    """The five members routes of one kind of source: /api/v4/<collection>/:id/members[/:user_id].

    `source_id` resolves the :id segment (a number or a URL-encoded full path) or raises Missing.
    """
    base = f"/api/v4/{collection}/{{id}}/members"

    async def list_(request: web.Request) -> web.Response:
        """GET members (members.rb)."""
        return await list_members(request, source_type, await source_id(request))

    async def add(request: web.Request) -> web.Response:
        """POST members (members.rb): user_id, access_level, expires_at; 409 if present."""
        return await add_member(request, source_type, await source_id(request))

    async def get(request: web.Request) -> web.Response:
        """GET members/:user_id (members.rb)."""
        return await get_member(request, source_type, await source_id(request))

    async def update(request: web.Request) -> web.Response:
        """PUT members/:user_id (members.rb)."""
        return await update_member(request, source_type, await source_id(request))

    async def remove(request: web.Request) -> web.Response:
        """DELETE members/:user_id (members.rb): 204."""
        return await remove_member(request, source_type, await source_id(request))

    table.get(base)(list_)
    table.post(base)(add)
    table.get(base + "/{user_id}")(get)
    table.put(base + "/{user_id}")(update)
    table.delete(base + "/{user_id}")(remove)
