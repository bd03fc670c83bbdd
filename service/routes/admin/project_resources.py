"""Deploy keys, protected branches and tags, cluster agents and error-tracking client keys of a
project (GitLab deploy_keys.rb, protected_branches.rb, protected_tags.rb, clusters/agents.rb,
clusters/agent_tokens.rb, error_tracking/client_keys.rb)."""

from __future__ import annotations

from aiohttp import web

from schemas.admin import (
    AgentCreateIn,
    AgentTokenCreateIn,
    DeployKeyCreateIn,
    DeployKeyUpdateIn,
    PageIn,
    ProtectedBranchCreateIn,
    ProtectedBranchUpdateIn,
    ProtectedTagCreateIn,
)
from service.domain.admin import entities
from service.domain.admin import projects as projects_domain
from service.domain.admin.projects import AdminProject, AgentRow
from service.errors import json_response, no_content
from service.routes.admin.common import (
    actor_id,
    app_settings,
    created,
    int_param,
    load_params,
    page,
    paginated,
    paginated_list,
    pool,
    require_one_of,
    urls,
)
from service.routes.admin.projects import project_from

admin_routes = web.RouteTableDef()  # auth.ADMIN


# --- deploy keys -------------------------------------------------------------------------------


@admin_routes.get("/api/v4/projects/{id}/deploy_keys")
async def list_deploy_keys(request: web.Request) -> web.Response:
    """GET /projects/:id/deploy_keys (deploy_keys.rb)."""
    values = await load_params(request, PageIn())
    project = await project_from(request)
    current = page(values)
    async with pool(request).acquire() as conn:
        result = await projects_domain.deploy_keys(conn, project, current)
    return paginated(request, current, result, lambda k: entities.deploy_key(k, can_push=k.can_push))


@admin_routes.post("/api/v4/projects/{id}/deploy_keys")
async def add_deploy_key(request: web.Request) -> web.Response:
    """POST /projects/:id/deploy_keys (deploy_keys.rb): title, key, can_push, expires_at."""
    values = await load_params(request, DeployKeyCreateIn())
    project = await project_from(request)
    settings = await app_settings(request)
    async with pool(request).acquire() as conn:
        linked = await projects_domain.add_deploy_key(
            conn,
            project,
            title=values["title"],
            text=values["key"],
            can_push=values["can_push"],
            expires_at=values.get("expires_at"),
            creator_id=actor_id(request),
            app=settings,
        )
    return created(entities.deploy_key(linked, can_push=linked.can_push))


@admin_routes.get("/api/v4/projects/{id}/deploy_keys/{key_id}")
async def get_deploy_key(request: web.Request) -> web.Response:
    """GET /projects/:id/deploy_keys/:key_id (deploy_keys.rb)."""
    project = await project_from(request)
    key_id = int_param(request, "key_id")
    async with pool(request).acquire() as conn:
        linked = await projects_domain.deploy_key(conn, project, key_id)
    return json_response(entities.deploy_key(linked, can_push=linked.can_push))


@admin_routes.put("/api/v4/projects/{id}/deploy_keys/{key_id}")
async def update_deploy_key(request: web.Request) -> web.Response:
    """PUT /projects/:id/deploy_keys/:key_id (deploy_keys.rb): title and/or can_push."""
    key_id = int_param(request, "key_id")
    values = await load_params(request, DeployKeyUpdateIn())
    require_one_of(values, "title", "can_push", blank_is_missing=False)
    project = await project_from(request)
    async with pool(request).acquire() as conn:
        linked = await projects_domain.update_deploy_key(
            conn, project, key_id, title=values.get("title"), can_push=values.get("can_push")
        )
    return json_response(entities.deploy_key(linked, can_push=linked.can_push))


@admin_routes.post("/api/v4/projects/{id}/deploy_keys/{key_id}/enable")
async def enable_deploy_key(request: web.Request) -> web.Response:
    """POST /projects/:id/deploy_keys/:key_id/enable (deploy_keys.rb): 201 with the key."""
    project = await project_from(request)
    key_id = int_param(request, "key_id")
    async with pool(request).acquire() as conn:
        key = await projects_domain.enable_deploy_key(conn, project, key_id)
    return created(entities.deploy_key(key))


@admin_routes.delete("/api/v4/projects/{id}/deploy_keys/{key_id}")
async def delete_deploy_key(request: web.Request) -> web.Response:
    """DELETE /projects/:id/deploy_keys/:key_id (deploy_keys.rb): 204; the key itself goes when no
    other project uses it."""
    project = await project_from(request)
    key_id = int_param(request, "key_id")
    async with pool(request).acquire() as conn:
        await projects_domain.remove_deploy_key(conn, project, key_id)
    return no_content()


# --- protected branches ------------------------------------------------------------------------


async def _protected_branch(request: web.Request, project: AdminProject) -> web.Response:
    async with pool(request).acquire() as conn:
        found = await projects_domain.protected_branch(conn, project, request.match_info["name"])
    return json_response(entities.protected_branch(found))


@admin_routes.get("/api/v4/projects/{id}/protected_branches")
async def list_protected_branches(request: web.Request) -> web.Response:
    """GET /projects/:id/protected_branches (protected_branches.rb)."""
    values = await load_params(request, PageIn())
    project = await project_from(request)
    async with pool(request).acquire() as conn:
        found = await projects_domain.protected_branches(conn, project)
    return paginated_list(request, page(values), [entities.protected_branch(b) for b in found])


@admin_routes.post("/api/v4/projects/{id}/protected_branches")
async def protect_branch(request: web.Request) -> web.Response:
    """POST /projects/:id/protected_branches (protected_branches.rb): 409 when already protected."""
    values = await load_params(request, ProtectedBranchCreateIn())
    project = await project_from(request)
    async with pool(request).acquire() as conn:
        await projects_domain.protect_branch(
            conn,
            project,
            name=values["name"],
            push_access_level=values["push_access_level"],
            merge_access_level=values["merge_access_level"],
            unprotect_access_level=values.get("unprotect_access_level"),
            allow_force_push=values["allow_force_push"],
        )
        found = await projects_domain.protected_branch(conn, project, values["name"])
    return created(entities.protected_branch(found))


@admin_routes.get("/api/v4/projects/{id}/protected_branches/{name}")
async def get_protected_branch(request: web.Request) -> web.Response:
    """GET /projects/:id/protected_branches/:name (protected_branches.rb)."""
    return await _protected_branch(request, await project_from(request))


@admin_routes.patch("/api/v4/projects/{id}/protected_branches/{name}")
async def update_protected_branch(request: web.Request) -> web.Response:
    """PATCH /projects/:id/protected_branches/:name (protected_branches.rb): allow_force_push."""
    values = await load_params(request, ProtectedBranchUpdateIn())
    project = await project_from(request)
    async with pool(request).acquire() as conn:
        found = await projects_domain.update_protected_branch(
            conn, project, request.match_info["name"], allow_force_push=values.get("allow_force_push")
        )
    return json_response(entities.protected_branch(found))


@admin_routes.delete("/api/v4/projects/{id}/protected_branches/{name}")
async def unprotect_branch(request: web.Request) -> web.Response:
    """DELETE /projects/:id/protected_branches/:name (protected_branches.rb): 204."""
    project = await project_from(request)
    async with pool(request).acquire() as conn:
        await projects_domain.unprotect_branch(conn, project, request.match_info["name"])
    return no_content()


# --- protected tags ----------------------------------------------------------------------------


@admin_routes.get("/api/v4/projects/{id}/protected_tags")
async def list_protected_tags(request: web.Request) -> web.Response:
    """GET /projects/:id/protected_tags (protected_tags.rb)."""
    values = await load_params(request, PageIn())
    project = await project_from(request)
    async with pool(request).acquire() as conn:
        found = await projects_domain.protected_tags(conn, project)
    return paginated_list(request, page(values), [entities.protected_tag(t) for t in found])


@admin_routes.post("/api/v4/projects/{id}/protected_tags")
async def protect_tag(request: web.Request) -> web.Response:
    """POST /projects/:id/protected_tags (protected_tags.rb): name, create_access_level."""
    values = await load_params(request, ProtectedTagCreateIn())
    project = await project_from(request)
    async with pool(request).acquire() as conn:
        await projects_domain.protect_tag(
            conn, project, name=values["name"], create_access_level=values["create_access_level"]
        )
        found = await projects_domain.protected_tag(conn, project, values["name"])
    return created(entities.protected_tag(found))


@admin_routes.get("/api/v4/projects/{id}/protected_tags/{name}")
async def get_protected_tag(request: web.Request) -> web.Response:
    """GET /projects/:id/protected_tags/:name (protected_tags.rb)."""
    project = await project_from(request)
    async with pool(request).acquire() as conn:
        found = await projects_domain.protected_tag(conn, project, request.match_info["name"])
    return json_response(entities.protected_tag(found))


@admin_routes.delete("/api/v4/projects/{id}/protected_tags/{name}")
async def unprotect_tag(request: web.Request) -> web.Response:
    """DELETE /projects/:id/protected_tags/:name (protected_tags.rb): 204."""
    project = await project_from(request)
    async with pool(request).acquire() as conn:
        await projects_domain.unprotect_tag(conn, project, request.match_info["name"])
    return no_content()


# --- cluster agents and their tokens -----------------------------------------------------------


async def _agent(request: web.Request, project: AdminProject) -> AgentRow:
    async with pool(request).acquire() as conn:
        return await projects_domain.find_agent(conn, project, int_param(request, "agent_id"))


@admin_routes.get("/api/v4/projects/{id}/cluster_agents")
async def list_agents(request: web.Request) -> web.Response:
    """GET /projects/:id/cluster_agents (clusters/agents.rb)."""
    values = await load_params(request, PageIn())
    project = await project_from(request)
    current = page(values)
    async with pool(request).acquire() as conn:
        result = await projects_domain.agents(conn, project, current)
    return paginated(request, current, result, lambda a: entities.agent(a, project, urls(request)))


@admin_routes.post("/api/v4/projects/{id}/cluster_agents")
async def create_agent(request: web.Request) -> web.Response:
    """POST /projects/:id/cluster_agents (clusters/agents.rb): name."""
    values = await load_params(request, AgentCreateIn())
    project = await project_from(request)
    async with pool(request).acquire() as conn:
        agent = await projects_domain.create_agent(conn, project, values["name"], actor_id(request))
    return created(entities.agent(agent, project, urls(request)))


@admin_routes.get("/api/v4/projects/{id}/cluster_agents/{agent_id}")
async def get_agent(request: web.Request) -> web.Response:
    """GET /projects/:id/cluster_agents/:agent_id (clusters/agents.rb)."""
    project = await project_from(request)
    return json_response(entities.agent(await _agent(request, project), project, urls(request)))


@admin_routes.delete("/api/v4/projects/{id}/cluster_agents/{agent_id}")
async def delete_agent(request: web.Request) -> web.Response:
    """DELETE /projects/:id/cluster_agents/:agent_id (clusters/agents.rb): 204, tokens included."""
    project = await project_from(request)
    agent = await _agent(request, project)
    async with pool(request).acquire() as conn:
        await projects_domain.delete_agent(conn, project, agent)
    return no_content()


@admin_routes.get("/api/v4/projects/{id}/cluster_agents/{agent_id}/tokens")
async def list_agent_tokens(request: web.Request) -> web.Response:
    """GET /projects/:id/cluster_agents/:agent_id/tokens (clusters/agent_tokens.rb): active ones."""
    project = await project_from(request)
    agent = await _agent(request, project)
    values = await load_params(request, PageIn())
    current = page(values)
    async with pool(request).acquire() as conn:
        result = await projects_domain.agent_tokens(conn, agent, current)
    return paginated(request, current, result, entities.agent_token)


@admin_routes.post("/api/v4/projects/{id}/cluster_agents/{agent_id}/tokens")
async def create_agent_token(request: web.Request) -> web.Response:
    """POST /projects/:id/cluster_agents/:agent_id/tokens (clusters/agent_tokens.rb): the token
    appears in this answer only; the service keeps its digest."""
    project = await project_from(request)
    agent = await _agent(request, project)
    values = await load_params(request, AgentTokenCreateIn())
    async with pool(request).acquire() as conn:
        token, plaintext = await projects_domain.create_agent_token(
            conn, agent, name=values["name"], description=values["description"], creator_id=actor_id(request)
        )
    return created({**entities.agent_token(token), "token": plaintext})


@admin_routes.get("/api/v4/projects/{id}/cluster_agents/{agent_id}/tokens/{token_id}")
async def get_agent_token(request: web.Request) -> web.Response:
    """GET /projects/:id/cluster_agents/:agent_id/tokens/:token_id (clusters/agent_tokens.rb)."""
    project = await project_from(request)
    agent = await _agent(request, project)
    async with pool(request).acquire() as conn:
        token = await projects_domain.agent_token(conn, agent, int_param(request, "token_id"))
    return json_response(entities.agent_token(token))


@admin_routes.delete("/api/v4/projects/{id}/cluster_agents/{agent_id}/tokens/{token_id}")
async def revoke_agent_token(request: web.Request) -> web.Response:
    """DELETE .../tokens/:token_id (clusters/agent_tokens.rb): revokes, 204."""
    project = await project_from(request)
    agent = await _agent(request, project)
    async with pool(request).acquire() as conn:
        await projects_domain.revoke_agent_token(conn, agent, int_param(request, "token_id"))
    return no_content()


# --- error-tracking client keys ----------------------------------------------------------------


@admin_routes.get("/api/v4/projects/{id}/error_tracking/client_keys")
async def list_client_keys(request: web.Request) -> web.Response:
    """GET /projects/:id/error_tracking/client_keys (error_tracking/client_keys.rb)."""
    values = await load_params(request, PageIn())
    project = await project_from(request)
    async with pool(request).acquire() as conn:
        found = await projects_domain.client_keys(conn, project)
    return paginated_list(request, page(values), [entities.client_key(k, urls(request)) for k in found])


@admin_routes.post("/api/v4/projects/{id}/error_tracking/client_keys")
async def create_client_key(request: web.Request) -> web.Response:
    """POST /projects/:id/error_tracking/client_keys: a new "glet_" public key."""
    project = await project_from(request)
    async with pool(request).acquire() as conn:
        key = await projects_domain.create_client_key(conn, project)
    return created(entities.client_key(key, urls(request)))


@admin_routes.delete("/api/v4/projects/{id}/error_tracking/client_keys/{key_id}")
async def delete_client_key(request: web.Request) -> web.Response:
    """DELETE /projects/:id/error_tracking/client_keys/:key_id: 200 with the removed key."""
    project = await project_from(request)
    async with pool(request).acquire() as conn:
        key = await projects_domain.delete_client_key(conn, project, int_param(request, "key_id"))
    return json_response(entities.client_key(key, urls(request)))
