"""Projects, archive, transfer and project members (GitLab lib/api/projects.rb, lib/api/members.rb)."""

from __future__ import annotations

from aiohttp import web

from schemas.admin import ProjectCreateIn, ProjectListIn, ProjectUpdateIn, TransferIn
from service.domain.admin import entities
from service.domain.admin import projects as projects_domain
from service.domain.admin.projects import NewProject
from service.errors import accepted, json_response
from service.routes.admin import members
from service.routes.admin.common import (
    actor_id,
    app_settings,
    created,
    load_params,
    page,
    paginated,
    pool,
    require_one_of,
    urls,
)

admin_routes = web.RouteTableDef()  # auth.ADMIN


async def project_from(request: web.Request) -> projects_domain.AdminProject:
    """The :id segment, a number or a URL-encoded full path (aiohttp decodes %2F before matching)."""
    async with pool(request).acquire() as conn:
        return await projects_domain.find_project(conn, request.match_info["id"])


async def _render(request: web.Request, project_id: int) -> dict[str, object]:
    async with pool(request).acquire() as conn:
        project = await projects_domain.find_project(conn, project_id)
    return entities.project(project, urls(request))


@admin_routes.get("/api/v4/projects")
async def list_projects(request: web.Request) -> web.Response:
    """GET /projects?search=&archived=&visibility=&owned=&membership= (projects.rb)."""
    values = await load_params(request, ProjectListIn())
    current = page(values)
    async with pool(request).acquire() as conn:
        result = await projects_domain.list_projects(
            conn,
            current,
            search=values.get("search"),
            archived=values.get("archived"),
            visibility=values.get("visibility"),
            owned_by=actor_id(request) if values["owned"] else None,
            member_id=actor_id(request) if values["membership"] else None,
        )
    return paginated(request, current, result, lambda p: entities.project(p, urls(request)))


@admin_routes.post("/api/v4/projects")
async def create_project(request: web.Request) -> web.Response:
    """POST /projects (projects.rb): name and/or path, namespace_id (default: the caller's own)."""
    values = await load_params(request, ProjectCreateIn())
    require_one_of(values, "name", "path")
    # GitLab's default_branch "requires initialize_with_readme": without it the project stays empty
    default_branch = None
    if values.get("initialize_with_readme"):
        instance_default = (await app_settings(request)).default_branch_name
        default_branch = projects_domain.readme_branch(values.get("default_branch"), instance_default)
    async with pool(request).acquire() as conn:
        own_namespace_id = await projects_domain.personal_namespace_id(conn, actor_id(request))
        project_id = await projects_domain.create_project(
            conn,
            NewProject(
                name=values.get("name"),
                path=values.get("path"),
                namespace_id=values.get("namespace_id"),
                visibility=values["visibility"],
                default_branch=default_branch,
                lfs_enabled=values["lfs_enabled"],
                description=values["description"],
            ),
            creator_id=actor_id(request),
            personal_namespace_id=own_namespace_id,
        )
    return created(await _render(request, project_id))


@admin_routes.get("/api/v4/projects/{id}")
async def get_project(request: web.Request) -> web.Response:
    """GET /projects/:id, by id or URL-encoded full path (projects.rb)."""
    return json_response(entities.project(await project_from(request), urls(request)))


@admin_routes.put("/api/v4/projects/{id}")
async def update_project(request: web.Request) -> web.Response:
    """PUT /projects/:id (projects.rb): a new path leaves a redirect route from the old one."""
    values = await load_params(request, ProjectUpdateIn())
    project = await project_from(request)
    async with pool(request).acquire() as conn:
        await projects_domain.update_project(conn, project, values)
    return json_response(await _render(request, project.id))


@admin_routes.delete("/api/v4/projects/{id}")
async def delete_project(request: web.Request) -> web.Response:
    """DELETE /projects/:id (projects.rb): 202 {"message": "202 Accepted"}."""
    project = await project_from(request)
    async with pool(request).acquire() as conn:
        await projects_domain.delete_project(conn, project)
    return accepted()


@admin_routes.post("/api/v4/projects/{id}/archive")
async def archive_project(request: web.Request) -> web.Response:
    """POST /projects/:id/archive (projects.rb): 201 with the project."""
    project = await project_from(request)
    async with pool(request).acquire() as conn:
        await projects_domain.set_archived(conn, project, True)
    return created(await _render(request, project.id))


@admin_routes.post("/api/v4/projects/{id}/unarchive")
async def unarchive_project(request: web.Request) -> web.Response:
    """POST /projects/:id/unarchive (projects.rb): 201 with the project."""
    project = await project_from(request)
    async with pool(request).acquire() as conn:
        await projects_domain.set_archived(conn, project, False)
    return created(await _render(request, project.id))


@admin_routes.put("/api/v4/projects/{id}/transfer")
async def transfer_project(request: web.Request) -> web.Response:
    """PUT /projects/:id/transfer (projects.rb): namespace = id or full path; leaves a redirect."""
    values = await load_params(request, TransferIn())
    project = await project_from(request)
    async with pool(request).acquire() as conn:
        await projects_domain.transfer_project(conn, project, values["namespace"])
    return json_response(await _render(request, project.id))


async def _project_id(request: web.Request) -> int:
    return (await project_from(request)).id


members.add_member_routes(admin_routes, "projects", "Project", _project_id)
