"""kas (GitLab agent server) endpoints (GitLab: lib/api/internal/kubernetes.rb, EE ee/lib/ee/api/internal/kubernetes.rb),
and the admin read path for the usage metrics kas reports.

Three tables, three consumers (service/auth.py): `routes` need only the kas JWT; `agent_routes`
also need an agent token (route_setting :authentication, cluster_agent_token_allowed: true);
`usage_data_routes` need an admin's personal access token.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from aiohttp import web

from schemas import kas as schemas
from service import auth, app_keys
from service.config import Storage
from service.domain import agents, kas_events, kas_modules, usage_metrics
from service.errors import json_response, no_content, not_found, record_not_found
from service.params import load_params, params

routes = web.RouteTableDef()
agent_routes = web.RouteTableDef()
usage_data_routes = web.RouteTableDef()

ROUTE_TABLES: list[tuple[web.RouteTableDef, auth.Consumer]] = [
    (routes, auth.KAS),
    (agent_routes, auth.KAS_AGENT),
    (usage_data_routes, auth.ADMIN),
]

KUBERNETES = "/api/v4/internal/kubernetes"
STARBOARD = f"{KUBERNETES}/modules/starboard_vulnerability"


def _utc_today() -> date:
    return datetime.now(UTC).date()


def _storage(request: web.Request, name: str) -> Storage:
    storage = request.app[app_keys.SETTINGS].storages.get(name)
    if storage is None:
        # A configuration error, not the caller's: logged and answered 500 by the error middleware.
        raise RuntimeError(f"repository storage {name!r} is not configured")
    return storage


async def _agent(request: web.Request) -> agents.AgentContextRow:
    agent_id = request[app_keys.IDENTITY].agent_id
    assert agent_id is not None  # set by auth.KAS_AGENT
    return await agents.find_agent(request.app[app_keys.AGENT_CONTEXTS], agent_id)


# --- Agent token routes --------------------------------------------------------------------------


@agent_routes.get(f"{KUBERNETES}/agent_info")
@agent_routes.get("/api/v4/internal/agents/agentk/agent_info")
async def agent_info(request: web.Request) -> web.Response:
    """GET /internal/kubernetes/agent_info (and its newer alias): the agent and its configuration repository."""
    agent = await _agent(request)
    return json_response(agents.agent_info(agent, _storage(request, agent.repository_storage)))


async def _readable_project(request: web.Request) -> agents.KasProjectRow:
    loaded = await load_params(request, schemas.PROJECT_ID)
    agent_id = request[app_keys.IDENTITY].agent_id
    assert agent_id is not None
    async with request.app[app_keys.DB_POOL].acquire() as conn:
        project = await agents.find_project_for_agent(conn, loaded["id"], agent_id)
    if project is None:
        # Private, internal, members-only and missing projects all look the same to an agent.
        raise not_found()
    return project


@agent_routes.get(f"{KUBERNETES}/project_info")
async def project_info(request: web.Request) -> web.Response:
    """GET /internal/kubernetes/project_info?id=: a public project, or the agent's own, for GitOps."""
    project = await _readable_project(request)
    return json_response(agents.project_info(project, _storage(request, project.repository_storage)))


@agent_routes.get(f"{KUBERNETES}/verify_project_access")
async def verify_project_access(request: web.Request) -> web.Response:
    """GET /internal/kubernetes/verify_project_access?id=: 204 when project_info would answer, else 404."""
    await _readable_project(request)
    return no_content()


@agent_routes.post(f"{KUBERNETES}/modules/cilium_alert")
async def cilium_alert(request: web.Request) -> web.Response:
    """POST /internal/kubernetes/modules/cilium_alert (EE): an alert in the agent's project."""
    loaded = await load_params(request, schemas.CILIUM_ALERT)
    alert = loaded["alert"]
    # The endpoint ends with `status result.http_status`, so Grape's body is that bare integer.
    if not kas_modules.alert_payload_valid(alert):
        return json_response(400, status=400)
    agent = await _agent(request)
    async with request.app[app_keys.DB_POOL].acquire() as conn:
        await kas_modules.record_cilium_alert(conn, agent.project_id, alert)
    return json_response(200)


@agent_routes.put(STARBOARD)
async def starboard_vulnerability(request: web.Request) -> web.Response:
    """PUT /internal/kubernetes/modules/starboard_vulnerability (EE): an idempotent finding; 200 {"uuid"}."""
    loaded = await load_params(request, schemas.STARBOARD_VULNERABILITY)
    agent = await _agent(request)
    async with request.app[app_keys.DB_POOL].acquire() as conn:
        uuid = await kas_modules.record_vulnerability(conn, agent, loaded["vulnerability"], loaded["scanner"])
    return json_response({"uuid": uuid})


@agent_routes.post(f"{STARBOARD}/scan_result")
async def starboard_scan_result(request: web.Request) -> web.Response:
    """POST …/starboard_vulnerability/scan_result (EE): resolve this agent's findings a full scan no longer reports."""
    loaded = await load_params(request, schemas.SCAN_RESULT)
    agent = await _agent(request)
    async with request.app[app_keys.DB_POOL].acquire() as conn:
        await kas_modules.resolve_scan(conn, agent, loaded["uuids"])
    return json_response(200)  # `status 200` as the last expression: the body is 200


@agent_routes.get(f"{STARBOARD}/scan_execution_policies")
async def scan_execution_policies(request: web.Request) -> web.Response:
    """GET …/starboard_vulnerability/scan_execution_policies (EE, 15.x): the policies that scan this agent's cluster."""
    agent = await _agent(request)
    async with request.app[app_keys.DB_POOL].acquire() as conn:
        policies = await kas_modules.project_policies(conn, agent.project_id)
    selected = kas_modules.agent_policies(policies, agent.agent_name)
    return json_response({"policies": [kas_modules.policy_entity(p) for p in selected]})


@agent_routes.get(f"{STARBOARD}/policies_configuration")
async def policies_configuration(request: web.Request) -> web.Response:
    """GET …/starboard_vulnerability/policies_configuration (EE): cadence and namespaces for the agent's scans."""
    agent = await _agent(request)
    async with request.app[app_keys.DB_POOL].acquire() as conn:
        policies = await kas_modules.project_policies(conn, agent.project_id)
    return json_response({"configurations": kas_modules.policy_configurations(policies, agent.agent_name)})


# --- kas JWT only --------------------------------------------------------------------------------


@routes.post(f"{KUBERNETES}/agent_configuration")
async def agent_configuration(request: web.Request) -> web.Response:
    """POST /internal/kubernetes/agent_configuration: store the CI and user access the agent's config file grants."""
    loaded = await load_params(request, schemas.AGENT_CONFIGURATION)
    async with request.app[app_keys.DB_POOL].acquire() as conn:
        found = await agents.refresh_authorizations(conn, loaded["agent_id"], loaded["agent_config"])
    if not found:
        raise record_not_found()  # Clusters::Agent.find: ActiveRecord::RecordNotFound, lower-case "found"
    return no_content()


@routes.post(f"{KUBERNETES}/usage_metrics")
async def usage_metrics_post(request: web.Request) -> web.Response:
    """POST /internal/kubernetes/usage_metrics: add kas's counts to the Redis totals and weekly HLLs."""
    update = usage_metrics.parse_usage_metrics(await params(request))
    await usage_metrics.record_usage(request.app[app_keys.REDIS], update, _utc_today())
    return no_content()


@routes.post(f"{KUBERNETES}/agent_events")
async def agent_events(request: web.Request) -> web.Response:
    """POST /internal/kubernetes/agent_events: unique users and agents, for existing users and projects."""
    loaded = await load_params(request, schemas.AGENT_EVENTS)
    async with request.app[app_keys.DB_POOL].acquire() as conn:
        update = await kas_events.known_update(conn, loaded.get("events") or {})
    if update is None:
        return no_content()
    await usage_metrics.record_usage(request.app[app_keys.REDIS], update, _utc_today())
    return no_content()


# --- Admin -----------------------------------------------------------------------------------------


@usage_data_routes.get("/api/v4/usage_data/kubernetes_agents")
async def kubernetes_agents_usage(request: web.Request) -> web.Response:
    """GET /usage_data/kubernetes_agents (this service's own): kas's totals and weekly unique counts."""
    return json_response(await usage_metrics.read_usage(request.app[app_keys.REDIS], _utc_today()))
