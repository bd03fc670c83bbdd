"""Project hooks, system hooks, push events and the job queue's dead jobs (GitLab
lib/api/project_hooks.rb, system_hooks.rb, events.rb; the dead-job view stands in for Sidekiq's)."""

from __future__ import annotations

from aiohttp import web

from schemas.admin import PageIn
from schemas.hooks import EventListIn, HookCreateIn, HookIn
from service import app_keys
from service.domain.admin import hooks as hooks_domain
from service.domain.admin.hooks import PROJECT_HOOK, SYSTEM_HOOK
from service.domain.push_jobs import PushDeps
from service.errors import json_response, no_content
from service.routes.admin.common import (
    actor_id,
    created,
    identity,
    int_param,
    load_params,
    page,
    paginated,
    pool,
    urls,
)
from service.routes.admin.projects import project_from

admin_routes = web.RouteTableDef()  # auth.ADMIN
user_routes = web.RouteTableDef()  # auth.USER


async def _scope(request: web.Request) -> tuple[str, int | None]:
    """(hook type, project id) of a /projects/:id/hooks or a /hooks route."""
    if "id" in request.match_info:
        return PROJECT_HOOK, (await project_from(request)).id
    return SYSTEM_HOOK, None


@admin_routes.get("/api/v4/projects/{id}/hooks")
@admin_routes.get("/api/v4/hooks")
async def list_hooks(request: web.Request) -> web.Response:
    """GET /projects/:id/hooks (project_hooks.rb), GET /hooks (system_hooks.rb)."""
    current = page(await load_params(request, PageIn()))
    hook_type, project_id = await _scope(request)
    async with pool(request).acquire() as conn:
        result = await hooks_domain.list_hooks(conn, request.app[app_keys.TOKEN_BOX], hook_type, project_id, current)
    return paginated(request, current, result, hooks_domain.render_hook)


@admin_routes.post("/api/v4/projects/{id}/hooks")
@admin_routes.post("/api/v4/hooks")
async def create_hook(request: web.Request) -> web.Response:
    """POST /projects/:id/hooks, POST /hooks: a URL that resolves to a local or private address is
    refused unless allow_local_requests_from_web_hooks_and_services is on (SSRF protection)."""
    values = await load_params(request, HookCreateIn())
    hook_type, project_id = await _scope(request)
    async with pool(request).acquire() as conn:
        hook = await hooks_domain.create_hook(conn, hook_type, project_id, values, request.app[app_keys.TOKEN_BOX])
    return created(hooks_domain.render_hook(hook))


@admin_routes.get("/api/v4/projects/{id}/hooks/{hook_id}")
@admin_routes.get("/api/v4/hooks/{hook_id}")
async def get_hook(request: web.Request) -> web.Response:
    """GET /projects/:id/hooks/:hook_id, GET /hooks/:hook_id."""
    hook_type, project_id = await _scope(request)
    async with pool(request).acquire() as conn:
        hook = await hooks_domain.get_hook(
            conn, request.app[app_keys.TOKEN_BOX], hook_type, project_id, int_param(request, "hook_id")
        )
    return json_response(hooks_domain.render_hook(hook))


@admin_routes.put("/api/v4/projects/{id}/hooks/{hook_id}")
@admin_routes.put("/api/v4/hooks/{hook_id}")
async def update_hook(request: web.Request) -> web.Response:
    """PUT /projects/:id/hooks/:hook_id, PUT /hooks/:hook_id."""
    values = await load_params(request, HookIn())
    hook_type, project_id = await _scope(request)
    async with pool(request).acquire() as conn:
        hook = await hooks_domain.update_hook(
            conn, hook_type, project_id, int_param(request, "hook_id"), values, request.app[app_keys.TOKEN_BOX]
        )
    return json_response(hooks_domain.render_hook(hook))


@admin_routes.delete("/api/v4/projects/{id}/hooks/{hook_id}")
@admin_routes.delete("/api/v4/hooks/{hook_id}")
async def delete_hook(request: web.Request) -> web.Response:
    """DELETE /projects/:id/hooks/:hook_id, DELETE /hooks/:hook_id."""
    hook_type, project_id = await _scope(request)
    async with pool(request).acquire() as conn:
        await hooks_domain.delete_hook(conn, hook_type, project_id, int_param(request, "hook_id"))
    return no_content()


@admin_routes.get("/api/v4/projects/{id}/hooks/{hook_id}/events")
async def hook_events(request: web.Request) -> web.Response:
    """GET /projects/:id/hooks/:hook_id/events: the hook's delivery log, newest first."""
    current = page(await load_params(request, PageIn()))
    hook_type, project_id = await _scope(request)
    async with pool(request).acquire() as conn:
        hook = await hooks_domain.get_hook(
            conn, request.app[app_keys.TOKEN_BOX], hook_type, project_id, int_param(request, "hook_id")
        )
        result = await hooks_domain.hook_events(conn, hook, current)
    return paginated(request, current, result, lambda entry: entry)


@admin_routes.post("/api/v4/projects/{id}/hooks/{hook_id}/test/push_events")
@admin_routes.post("/api/v4/hooks/{hook_id}")
async def test_hook(request: web.Request) -> web.Response:
    """POST /projects/:id/hooks/:hook_id/test/push_events, POST /hooks/:hook_id (test a system hook):
    sends a sample push now and logs it like any delivery."""
    hook_type, project_id = await _scope(request)
    async with pool(request).acquire() as conn:
        hook = await hooks_domain.get_hook(
            conn, request.app[app_keys.TOKEN_BOX], hook_type, project_id, int_param(request, "hook_id")
        )
    await hooks_domain.test_hook(
        PushDeps(pool(request), request.app[app_keys.REPOSITORIES], urls(request)),
        request.app[app_keys.WEBHOOK_CLIENT],
        request.app[app_keys.DELIVERY_CONFIG],
        hook,
        project_id,
        actor_id(request),
    )
    return created({"message": "201 Created"})


@admin_routes.get("/api/v4/projects/{id}/events")
async def project_events(request: web.Request) -> web.Response:
    """GET /projects/:id/events (events.rb)."""
    values = await load_params(request, EventListIn())
    project = await project_from(request)
    current = page(values)
    async with pool(request).acquire() as conn:
        result = await hooks_domain.list_events(conn, values, current, project_id=project.id)
    return paginated(request, current, result, lambda e: hooks_domain.render_event(e, urls(request)))


@user_routes.get("/api/v4/events")
async def own_events(request: web.Request) -> web.Response:
    """GET /events: the token's user's own events (events.rb)."""
    values = await load_params(request, EventListIn())
    current = page(values)
    async with pool(request).acquire() as conn:
        result = await hooks_domain.list_events(conn, values, current, author_id=actor_id(request))
    return paginated(request, current, result, lambda e: hooks_domain.render_event(e, urls(request)))


@user_routes.get("/api/v4/users/{user_id}/events")
async def user_events(request: web.Request) -> web.Response:
    """GET /users/:id/events: an administrator sees all of them, anyone else the user's events in
    public projects (and all of their own)."""
    values = await load_params(request, EventListIn())
    current = page(values)
    caller = identity(request)
    async with pool(request).acquire() as conn:
        result = await hooks_domain.list_events(
            conn,
            values,
            current,
            author_id=int_param(request, "user_id"),
            viewer_id=None if caller.is_admin else actor_id(request),
        )
    return paginated(request, current, result, lambda e: hooks_domain.render_event(e, urls(request)))


@admin_routes.get("/api/v4/admin/background_jobs/dead")
async def dead_jobs(request: web.Request) -> web.Response:
    """Jobs whose retries are exhausted (the PostReceive worker's and webhook deliveries'), newest first."""
    current = page(await load_params(request, PageIn()))
    async with pool(request).acquire() as conn:
        result = await hooks_domain.dead_jobs(conn, current)
    return paginated(request, current, result, hooks_domain.render_dead_job)


@admin_routes.post("/api/v4/admin/background_jobs/dead/{job_id}/retry")
async def retry_dead_job(request: web.Request) -> web.Response:
    """Queue a dead job again, now."""
    async with pool(request).acquire() as conn:
        await hooks_domain.retry_dead_job(conn, int_param(request, "job_id"))
    return created({"message": "201 Created"})
