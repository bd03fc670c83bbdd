"""The OpenAPI 3.1 document of every route, generated from the marshmallow schemas (apispec).

The route modules know nothing of it: this registry maps (method, path) to the request schema,
the success statuses and the success body, and the security comes from the route's consumer
(service/routes/__init__.py). A route registered without an entry here is still documented (its
path parameters, its consumer's security and error answers) and tests/test_openapi.py fails until
it has one, so the document cannot silently fall behind the router.

The hot routes do not load these schemas (service/routes/shell.py reads their parameters
directly); the schemas describe what they read. GET /api/v4/internal/openapi.json serves the
document to administrators.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema

from schemas import admin, billing, fields, hooks, kas, shell
from service import auth, app_keys

OPENAPI_PATH = "/api/v4/internal/openapi.json"

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "shellJwt": {
        "type": "apiKey",
        "in": "header",
        "name": str(auth.SHELL_JWT_HEADER),  # a plain str: the headers are istr (service/auth.py)
        "description": "HS256 JWT, iss gitlab-shell, signed with the GitLab Shell secret; iat and exp required",
    },
    "shellSecret": {
        "type": "apiKey",
        "in": "header",
        "name": str(auth.LEGACY_SECRET_HEADER),
        "description": "GitLab Shell < 14.35: the base64 shared secret (when accept_legacy_shell_secret is on)",
    },
    "kasJwt": {
        "type": "apiKey",
        "in": "header",
        "name": str(auth.KAS_JWT_HEADER),
        "description": "HS256 JWT, iss gitlab-kas, aud gitlab, signed with the kas secret; iat and exp required",
    },
    "agentToken": {"type": "http", "scheme": "bearer", "description": "a cluster agent token (glagent-...)"},
    "privateToken": {"type": "apiKey", "in": "header", "name": "PRIVATE-TOKEN"},
    "bearerToken": {"type": "http", "scheme": "bearer", "description": "a personal access token"},
    "errorTrackingToken": {"type": "apiKey", "in": "header", "name": auth.ERROR_TRACKING_HEADER},
    "monitoringToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "the monitoring token (monitoring.token_file); or an address in monitoring.ip_whitelist",
    },
}

SECURITY: dict[str, list[dict[str, list[str]]]] = {
    auth.SHELL.name: [{"shellJwt": []}, {"shellSecret": []}],
    auth.KAS.name: [{"kasJwt": []}],
    auth.KAS_AGENT.name: [{"kasJwt": [], "agentToken": []}],
    auth.ERROR_TRACKING.name: [{"errorTrackingToken": []}, {"shellJwt": []}],
    auth.USER.name: [{"privateToken": []}, {"bearerToken": []}],
    auth.ADMIN.name: [{"privateToken": []}, {"bearerToken": []}],
    auth.ADMIN_GITLAB_COM.name: [{"privateToken": []}, {"bearerToken": []}],
    auth.PUBLIC.name: [],
    auth.MONITORING.name: [{"monitoringToken": []}, {}],
}

# What every route of a consumer may answer besides its success (GitLab's error shapes).
_COMMON_ERRORS = (400, 401, 403, 404, 413, 503)
ERRORS: dict[str, tuple[int, ...]] = {
    auth.SHELL.name: _COMMON_ERRORS,
    auth.KAS.name: _COMMON_ERRORS,
    auth.KAS_AGENT.name: _COMMON_ERRORS,
    auth.ERROR_TRACKING.name: (*_COMMON_ERRORS, 422),
    auth.USER.name: (*_COMMON_ERRORS, 409, 422),
    auth.ADMIN.name: (*_COMMON_ERRORS, 409, 422),
    auth.ADMIN_GITLAB_COM.name: _COMMON_ERRORS,
    auth.PUBLIC.name: (400, 404, 503),
    auth.MONITORING.name: (404,),
}


@dataclass(frozen=True)
class Operation:
    """What the document says of one route beyond its consumer."""

    request: type[Schema] | None = None  # query parameters on GET/DELETE, the JSON body otherwise
    success: tuple[int, ...] = (200,)
    body: type[Schema] | None = None  # the success body; any JSON when None
    errors: tuple[int, ...] = ()  # beyond the consumer's ERRORS
    extra: dict[str, Any] = field(default_factory=dict)


_INTERNAL = "/api/v4/internal"
_K8S = f"{_INTERNAL}/kubernetes"
_STARBOARD = f"{_K8S}/modules/starboard_vulnerability"
_PROJECT = "/api/v4/projects/{id}"
_CREATED = (201,)
_NO_CONTENT = (204,)

OPERATIONS: dict[tuple[str, str], Operation] = {
    # health
    ("GET", "/-/liveness"): Operation(),
    ("GET", "/-/readiness"): Operation(),
    # Prometheus text format, for the monitoring allow-list or token only (404 for anyone else)
    ("GET", "/-/metrics"): Operation(
        extra={"responses": {"200": {"description": "Prometheus text format", "content": {"text/plain": {}}}}}
    ),
    # GitLab Shell and Gitaly
    # /allowed: 300 custom action, 401 denial, 422 project creation, 429 rate limit (internal/base.rb)
    ("POST", f"{_INTERNAL}/allowed"): Operation(shell.AllowedIn, (200,), errors=(300, 422, 429)),
    ("GET", f"{_INTERNAL}/authorized_keys"): Operation(shell.AuthorizedKeysIn, body=shell.KeyOut),
    ("GET", f"{_INTERNAL}/discover"): Operation(shell.ActorIn),
    ("GET", f"{_INTERNAL}/check"): Operation(body=shell.CheckOut),
    ("POST", f"{_INTERNAL}/lfs_authenticate"): Operation(shell.LfsAuthenticateIn),
    ("GET", f"{_INTERNAL}/two_factor_recovery_codes"): Operation(shell.ActorIn, body=shell.SuccessOut),
    ("POST", f"{_INTERNAL}/two_factor_recovery_codes"): Operation(shell.ActorIn, body=shell.SuccessOut),
    ("POST", f"{_INTERNAL}/personal_access_token"): Operation(shell.PersonalAccessTokenIn, body=shell.SuccessOut),
    ("POST", f"{_INTERNAL}/two_factor_config"): Operation(shell.ActorIn, body=shell.SuccessOut),
    ("POST", f"{_INTERNAL}/two_factor_push_otp_check"): Operation(shell.ActorIn, body=shell.SuccessOut),
    ("POST", f"{_INTERNAL}/two_factor_manual_otp_check"): Operation(shell.ActorIn, body=shell.SuccessOut),
    ("POST", f"{_INTERNAL}/pre_receive"): Operation(shell.PreReceiveIn, body=shell.PreReceiveOut),
    ("POST", f"{_INTERNAL}/post_receive"): Operation(shell.PostReceiveIn, body=shell.PostReceiveOut),
    ("POST", f"{_INTERNAL}/error_tracking/allowed"): Operation(shell.ErrorTrackingAllowedIn),
    # kas
    ("POST", f"{_K8S}/agent_configuration"): Operation(kas.AgentConfigurationIn, _NO_CONTENT),
    ("POST", f"{_K8S}/usage_metrics"): Operation(kas.UsageMetricsIn, _NO_CONTENT),
    ("POST", f"{_K8S}/agent_events"): Operation(kas.AgentEventsIn, _NO_CONTENT),
    ("GET", "/api/v4/internal/agents/agentk/agent_info"): Operation(),
    ("GET", f"{_K8S}/agent_info"): Operation(),
    ("GET", f"{_K8S}/project_info"): Operation(kas.ProjectIdIn),
    ("GET", f"{_K8S}/verify_project_access"): Operation(kas.ProjectIdIn, _NO_CONTENT),
    ("POST", f"{_K8S}/modules/cilium_alert"): Operation(kas.CiliumAlertIn),
    ("PUT", _STARBOARD): Operation(kas.StarboardVulnerabilityIn),
    ("POST", f"{_STARBOARD}/scan_result"): Operation(kas.ScanResultIn),
    ("GET", f"{_STARBOARD}/scan_execution_policies"): Operation(),
    ("GET", f"{_STARBOARD}/policies_configuration"): Operation(),
    ("GET", "/api/v4/usage_data/kubernetes_agents"): Operation(),
    # users and keys
    ("GET", "/api/v4/users"): Operation(admin.UserListIn),
    ("POST", "/api/v4/users"): Operation(admin.UserCreateIn, _CREATED),
    ("GET", "/api/v4/users/{id}"): Operation(),
    ("PUT", "/api/v4/users/{id}"): Operation(admin.UserUpdateIn),
    ("DELETE", "/api/v4/users/{id}"): Operation(admin.UserDeleteIn, _NO_CONTENT),
    ("GET", "/api/v4/user"): Operation(),
    ("POST", "/api/v4/users/{id}/block"): Operation(success=_CREATED),
    ("POST", "/api/v4/users/{id}/unblock"): Operation(success=_CREATED),
    ("POST", "/api/v4/users/{id}/deactivate"): Operation(success=_CREATED),
    ("POST", "/api/v4/users/{id}/activate"): Operation(success=_CREATED),
    ("POST", "/api/v4/users/{id}/approve"): Operation(success=_CREATED),
    ("GET", "/api/v4/users/{id}/keys"): Operation(admin.PageIn),
    ("POST", "/api/v4/users/{id}/keys"): Operation(admin.KeyCreateIn, _CREATED),
    ("GET", "/api/v4/users/{id}/keys/{key_id}"): Operation(),
    ("DELETE", "/api/v4/users/{id}/keys/{key_id}"): Operation(success=_NO_CONTENT),
    ("GET", "/api/v4/user/keys"): Operation(admin.PageIn),
    ("POST", "/api/v4/user/keys"): Operation(admin.KeyCreateIn, _CREATED),
    ("GET", "/api/v4/user/keys/{key_id}"): Operation(),
    ("DELETE", "/api/v4/user/keys/{key_id}"): Operation(success=_NO_CONTENT),
    ("GET", "/api/v4/keys/{id}"): Operation(),
    ("GET", "/api/v4/keys"): Operation(admin.KeyLookupIn),
    # personal access tokens
    ("GET", "/api/v4/personal_access_tokens"): Operation(admin.TokenListIn),
    ("GET", "/api/v4/personal_access_tokens/self"): Operation(),
    ("DELETE", "/api/v4/personal_access_tokens/self"): Operation(success=_NO_CONTENT),
    ("GET", "/api/v4/personal_access_tokens/{id}"): Operation(),
    ("DELETE", "/api/v4/personal_access_tokens/{id}"): Operation(success=_NO_CONTENT),
    ("POST", "/api/v4/users/{id}/personal_access_tokens"): Operation(admin.TokenCreateIn, _CREATED),
    # groups
    ("GET", "/api/v4/groups"): Operation(admin.GroupListIn),
    ("POST", "/api/v4/groups"): Operation(admin.GroupCreateIn, _CREATED),
    ("GET", "/api/v4/groups/{id}"): Operation(),
    ("PUT", "/api/v4/groups/{id}"): Operation(admin.GroupUpdateIn),
    ("DELETE", "/api/v4/groups/{id}"): Operation(success=(202,)),
    ("GET", "/api/v4/groups/{id}/subgroups"): Operation(admin.PageIn),
    ("GET", "/api/v4/groups/{id}/members"): Operation(admin.PageIn),
    ("POST", "/api/v4/groups/{id}/members"): Operation(admin.MemberCreateIn, _CREATED),
    ("GET", "/api/v4/groups/{id}/members/{user_id}"): Operation(),
    ("PUT", "/api/v4/groups/{id}/members/{user_id}"): Operation(admin.MemberUpdateIn),
    ("DELETE", "/api/v4/groups/{id}/members/{user_id}"): Operation(success=_NO_CONTENT),
    # projects
    ("GET", "/api/v4/projects"): Operation(admin.ProjectListIn),
    ("POST", "/api/v4/projects"): Operation(admin.ProjectCreateIn, _CREATED),
    ("GET", _PROJECT): Operation(),
    ("PUT", _PROJECT): Operation(admin.ProjectUpdateIn),
    ("DELETE", _PROJECT): Operation(success=(202,)),
    ("POST", f"{_PROJECT}/archive"): Operation(success=_CREATED),
    ("POST", f"{_PROJECT}/unarchive"): Operation(success=_CREATED),
    ("PUT", f"{_PROJECT}/transfer"): Operation(admin.TransferIn),
    ("GET", f"{_PROJECT}/members"): Operation(admin.PageIn),
    ("POST", f"{_PROJECT}/members"): Operation(admin.MemberCreateIn, _CREATED),
    ("GET", f"{_PROJECT}/members/{{user_id}}"): Operation(),
    ("PUT", f"{_PROJECT}/members/{{user_id}}"): Operation(admin.MemberUpdateIn),
    ("DELETE", f"{_PROJECT}/members/{{user_id}}"): Operation(success=_NO_CONTENT),
    # webhooks, push events, dead jobs (service/routes/admin/hooks.py)
    ("GET", f"{_PROJECT}/hooks"): Operation(admin.PageIn),
    ("POST", f"{_PROJECT}/hooks"): Operation(hooks.HookCreateIn, _CREATED),
    ("GET", f"{_PROJECT}/hooks/{{hook_id}}"): Operation(),
    ("PUT", f"{_PROJECT}/hooks/{{hook_id}}"): Operation(hooks.HookIn),
    ("DELETE", f"{_PROJECT}/hooks/{{hook_id}}"): Operation(success=_NO_CONTENT),
    ("GET", f"{_PROJECT}/hooks/{{hook_id}}/events"): Operation(admin.PageIn),
    ("POST", f"{_PROJECT}/hooks/{{hook_id}}/test/push_events"): Operation(success=_CREATED),
    ("GET", "/api/v4/hooks"): Operation(admin.PageIn),
    ("POST", "/api/v4/hooks"): Operation(hooks.HookCreateIn, _CREATED),
    ("GET", "/api/v4/hooks/{hook_id}"): Operation(),
    ("PUT", "/api/v4/hooks/{hook_id}"): Operation(hooks.HookIn),
    ("DELETE", "/api/v4/hooks/{hook_id}"): Operation(success=_NO_CONTENT),
    ("POST", "/api/v4/hooks/{hook_id}"): Operation(success=_CREATED),
    ("GET", f"{_PROJECT}/events"): Operation(hooks.EventListIn),
    ("GET", "/api/v4/events"): Operation(hooks.EventListIn),
    ("GET", "/api/v4/users/{user_id}/events"): Operation(hooks.EventListIn),
    ("GET", "/api/v4/admin/background_jobs/dead"): Operation(admin.PageIn),
    ("POST", "/api/v4/admin/background_jobs/dead/{job_id}/retry"): Operation(success=_CREATED),
    ("GET", f"{_PROJECT}/deploy_keys"): Operation(admin.PageIn),
    ("POST", f"{_PROJECT}/deploy_keys"): Operation(admin.DeployKeyCreateIn, _CREATED),
    ("GET", f"{_PROJECT}/deploy_keys/{{key_id}}"): Operation(),
    ("PUT", f"{_PROJECT}/deploy_keys/{{key_id}}"): Operation(admin.DeployKeyUpdateIn),
    ("POST", f"{_PROJECT}/deploy_keys/{{key_id}}/enable"): Operation(success=_CREATED),
    ("DELETE", f"{_PROJECT}/deploy_keys/{{key_id}}"): Operation(success=_NO_CONTENT),
    ("GET", f"{_PROJECT}/protected_branches"): Operation(admin.PageIn),
    ("POST", f"{_PROJECT}/protected_branches"): Operation(admin.ProtectedBranchCreateIn, _CREATED),
    ("GET", f"{_PROJECT}/protected_branches/{{name}}"): Operation(),
    ("PATCH", f"{_PROJECT}/protected_branches/{{name}}"): Operation(admin.ProtectedBranchUpdateIn),
    ("DELETE", f"{_PROJECT}/protected_branches/{{name}}"): Operation(success=_NO_CONTENT),
    ("GET", f"{_PROJECT}/protected_tags"): Operation(admin.PageIn),
    ("POST", f"{_PROJECT}/protected_tags"): Operation(admin.ProtectedTagCreateIn, _CREATED),
    ("GET", f"{_PROJECT}/protected_tags/{{name}}"): Operation(),
    ("DELETE", f"{_PROJECT}/protected_tags/{{name}}"): Operation(success=_NO_CONTENT),
    ("GET", f"{_PROJECT}/cluster_agents"): Operation(admin.PageIn),
    ("POST", f"{_PROJECT}/cluster_agents"): Operation(admin.AgentCreateIn, _CREATED),
    ("GET", f"{_PROJECT}/cluster_agents/{{agent_id}}"): Operation(),
    ("DELETE", f"{_PROJECT}/cluster_agents/{{agent_id}}"): Operation(success=_NO_CONTENT),
    ("GET", f"{_PROJECT}/cluster_agents/{{agent_id}}/tokens"): Operation(admin.PageIn),
    ("POST", f"{_PROJECT}/cluster_agents/{{agent_id}}/tokens"): Operation(admin.AgentTokenCreateIn, _CREATED),
    ("GET", f"{_PROJECT}/cluster_agents/{{agent_id}}/tokens/{{token_id}}"): Operation(),
    ("DELETE", f"{_PROJECT}/cluster_agents/{{agent_id}}/tokens/{{token_id}}"): Operation(success=_NO_CONTENT),
    ("GET", f"{_PROJECT}/error_tracking/client_keys"): Operation(admin.PageIn),
    ("POST", f"{_PROJECT}/error_tracking/client_keys"): Operation(admin.ClientKeyCreateIn, _CREATED),
    ("DELETE", f"{_PROJECT}/error_tracking/client_keys/{{key_id}}"): Operation(),
    # instance
    ("GET", "/api/v4/broadcast_messages"): Operation(admin.PageIn),
    ("GET", "/api/v4/broadcast_messages/{id}"): Operation(),
    ("POST", "/api/v4/broadcast_messages"): Operation(admin.BroadcastCreateIn, _CREATED),
    ("PUT", "/api/v4/broadcast_messages/{id}"): Operation(admin.BroadcastUpdateIn),
    ("DELETE", "/api/v4/broadcast_messages/{id}"): Operation(),
    ("GET", "/api/v4/application/settings"): Operation(),
    ("PUT", "/api/v4/application/settings"): Operation(admin.SettingsUpdateIn),
    # CustomersDot
    ("POST", "/api/v4/namespaces/{id}/gitlab_subscription"): Operation(
        billing.SubscriptionCreateIn, _CREATED, billing.SubscriptionOut
    ),
    ("PUT", "/api/v4/namespaces/{id}/gitlab_subscription"): Operation(
        billing.SubscriptionIn, body=billing.SubscriptionOut
    ),
    ("GET", "/api/v4/namespaces/{id}/gitlab_subscription"): Operation(body=billing.SubscriptionOut),
    # `packs`, or the first API's single pack as top-level parameters (both in one schema here)
    ("POST", "/api/v4/namespaces/{id}/minutes"): Operation(billing.PacksIn, _CREATED),
    ("PATCH", "/api/v4/namespaces/{id}/minutes/move/{target_id}"): Operation(success=(202,)),
    ("PUT", f"{_INTERNAL}/upcoming_reconciliations"): Operation(billing.ReconciliationsIn),
    ("DELETE", f"{_INTERNAL}/upcoming_reconciliations"): Operation(billing.ReconciliationDeleteIn, _NO_CONTENT),
    # this document
    ("GET", OPENAPI_PATH): Operation(),
}

_FIELD_TYPES: tuple[tuple[type[Any], str, str | None], ...] = (
    (fields.GrapeInteger, "integer", None),
    (fields.RubyDate, "string", "date"),
    (kas.JsonObject, "object", None),
)

_PLACEHOLDER = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")
_BODY_METHODS = frozenset(("POST", "PUT", "PATCH"))
_ANY_JSON: dict[str, Any] = {}  # JSON Schema true: any value
_ERROR_BODY: dict[str, Any] = {
    "description": 'GitLab\'s error shapes: {"message": ...} or {"error": ...}',
    "type": ["object", "integer"],
}


def _inline(schema: type[Schema]) -> str:
    return None  # type: ignore[return-value]  # apispec: None means "inline this nested schema"


def _schema_name(schema: type[Schema]) -> str:
    return f"{schema.__module__.rsplit('.', 1)[-1]}.{schema.__name__}"


def _operation_id(method: str, path: str) -> str:
    words = re.sub(r"[^a-zA-Z0-9]+", "_", path.replace("/api/v4/", "")).strip("_")
    return f"{method.lower()}_{words}"


def _responses(method: str, consumer: auth.Consumer, op: Operation) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status in op.success:
        if status == 204:
            responses["204"] = {"description": "No Content"}
            continue
        schema: Any = _schema_name(op.body) if op.body else _ANY_JSON
        responses[str(status)] = {"description": "Success", "content": {"application/json": {"schema": schema}}}
    for status in sorted({*ERRORS[consumer.name], *op.errors} - set(op.success)):
        if status == 405:
            continue
        responses[str(status)] = {
            "description": "Error",
            "content": {"application/json": {"schema": _ANY_JSON if status == 300 else _ERROR_BODY}},
        }
    return responses


def build_spec(app: web.Application) -> APISpec:
    # Nested schemas are inlined (no resolver name): each request schema is one component.
    plugin = MarshmallowPlugin(schema_name_resolver=_inline)
    spec = APISpec(
        title="gitlab-internal-api",
        version="v4",
        openapi_version="3.1.0",
        plugins=[plugin],
        info={
            "description": (
                "GitLab's internal API (GitLab Shell, Gitaly, kas, CustomersDot) and the admin subset of "
                "the v4 API. Bodies may be JSON, urlencoded or multipart/form-data; unknown parameters are "
                "ignored, as in GitLab."
            )
        },
    )
    # Our Grape-like fields: what they accept, as the nearest OpenAPI type (subclasses follow).
    for field_class, type_, format_ in _FIELD_TYPES:
        plugin.map_to_openapi_type(field_class, type_, format_)  # type: ignore[no-untyped-call]
    for name, scheme in SECURITY_SCHEMES.items():
        spec.components.security_scheme(name, scheme)
    registered: set[type[Schema]] = set()

    def component(schema: type[Schema]) -> str:
        name = _schema_name(schema)
        if schema not in registered:
            spec.components.schema(name, schema=schema)
            registered.add(schema)
        return name

    for op in OPERATIONS.values():
        for schema in (op.request, op.body):
            if schema is not None:
                component(schema)

    paths: dict[str, dict[str, Any]] = {}
    for route, consumer in app[app_keys.ROUTE_CONSUMERS].items():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter")
        if not path:
            continue
        method = route.method.upper()
        if method == "HEAD":
            continue
        op = OPERATIONS.get((method, path), Operation())
        doc = (route.handler.__doc__ or "").strip().splitlines()
        operation: dict[str, Any] = {
            "operationId": _operation_id(method, path),
            "summary": doc[0] if doc else f"{method} {path}",
            "tags": [consumer.name],
            "security": SECURITY[consumer.name],
            "x-body-limit": consumer.max_body,
            "parameters": [
                # the example: an id that exists in a seeded instance, so fuzzers reach past the 404
                {
                    "name": name,
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "minLength": 1},
                    "example": "1",
                }
                for name in _PLACEHOLDER.findall(path)
            ],
            "responses": _responses(method, consumer, op),
        }
        if op.request is not None:
            if method in _BODY_METHODS:
                operation["requestBody"] = {
                    "content": {"application/json": {"schema": component(op.request)}},
                }
            else:
                operation["parameters"].append({"in": "query", "schema": op.request})
        operation.update(op.extra)
        paths.setdefault(_PLACEHOLDER.sub(r"{\1}", path), {})[method.lower()] = operation
    for path in sorted(paths):
        spec.path(path=path, operations=paths[path])
    return spec


def document(app: web.Application) -> dict[str, Any]:
    return build_spec(app).to_dict()
