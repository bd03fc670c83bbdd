"""Groups, subgroups and group members (GitLab lib/api/groups.rb, lib/api/members.rb)."""

from __future__ import annotations

from aiohttp import web

from schemas.admin import GroupCreateIn, GroupListIn, GroupUpdateIn, PageIn
from service.domain import branch_protection
from service.domain.admin import entities
from service.domain.admin import namespaces as namespaces_domain
from service.errors import accepted, json_response
from service.routes.admin import members
from service.routes.admin.common import (
    actor_id,
    created,
    load_params,
    page,
    paginated,
    pool,
    urls,
)

admin_routes = web.RouteTableDef()  # auth.ADMIN


async def _group(request: web.Request) -> namespaces_domain.NamespaceRow:
    # aiohttp hands the segment over URL-decoded, so "parent%2Fchild" arrives as "parent/child".
    async with pool(request).acquire() as conn:
        return await namespaces_domain.find_group(conn, request.match_info["id"])


@admin_routes.get("/api/v4/groups")
async def list_groups(request: web.Request) -> web.Response:
    """GET /groups?search= (groups.rb)."""
    values = await load_params(request, GroupListIn())
    current = page(values)
    async with pool(request).acquire() as conn:
        result = await namespaces_domain.list_groups(conn, current, search=values.get("search"))
    return paginated(request, current, result, lambda g: entities.group(g, urls(request)))


@admin_routes.post("/api/v4/groups")
async def create_group(request: web.Request) -> web.Response:
    """POST /groups (groups.rb): name, path, parent_id, visibility, description, project_creation_level."""
    values = await load_params(request, GroupCreateIn())
    async with pool(request).acquire() as conn:
        group_id = await namespaces_domain.create_group(
            conn,
            name=values["name"],
            path=values["path"],
            parent_id=values.get("parent_id"),
            visibility=values.get("visibility"),
            description=values["description"],
            creator_id=actor_id(request),
            project_creation_level=values.get("project_creation_level"),
            default_branch_protection=branch_protection.stored_setting(values),
        )
        group = await namespaces_domain.find_group(conn, group_id)
    return created(entities.group(group, urls(request)))


@admin_routes.get("/api/v4/groups/{id}")
async def get_group(request: web.Request) -> web.Response:
    """GET /groups/:id, by id or URL-encoded full path (groups.rb)."""
    return json_response(entities.group(await _group(request), urls(request)))


@admin_routes.put("/api/v4/groups/{id}")
async def update_group(request: web.Request) -> web.Response:
    """PUT /groups/:id (groups.rb): a new path moves every route under the group."""
    values = await load_params(request, GroupUpdateIn())
    group = await _group(request)
    async with pool(request).acquire() as conn:
        await namespaces_domain.update_group(
            conn,
            group,
            name=values.get("name"),
            path=values.get("path"),
            visibility=values.get("visibility"),
            description=values.get("description"),
            project_creation_level=values.get("project_creation_level"),
            default_branch_protection=branch_protection.stored_setting(values),
        )
        group = await namespaces_domain.find_group(conn, group.id)
    return json_response(entities.group(group, urls(request)))


@admin_routes.delete("/api/v4/groups/{id}")
async def delete_group(request: web.Request) -> web.Response:
    """DELETE /groups/:id (groups.rb): 202, with its subgroups and projects."""
    group = await _group(request)
    async with pool(request).acquire() as conn:
        await namespaces_domain.delete_group(conn, group)
    return accepted()


@admin_routes.get("/api/v4/groups/{id}/subgroups")
async def list_subgroups(request: web.Request) -> web.Response:
    """GET /groups/:id/subgroups (groups.rb)."""
    values = await load_params(request, PageIn())
    group = await _group(request)
    current = page(values)
    async with pool(request).acquire() as conn:
        result = await namespaces_domain.list_subgroups(conn, group, current)
    return paginated(request, current, result, lambda g: entities.group(g, urls(request)))


async def _group_id(request: web.Request) -> int:
    return (await _group(request)).id


members.add_member_routes(admin_routes, "groups", "Namespace", _group_id)
