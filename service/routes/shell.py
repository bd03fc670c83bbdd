"""GitLab Shell and Gitaly endpoints (GitLab: lib/api/internal/base.rb, lib/api/internal/error_tracking.rb).

Handlers parse parameters, call domain functions and pick GitLab's response envelope; the rules
live in service/domain.
"""

from __future__ import annotations

import base64
from datetime import date, datetime
from typing import Any

import orjson
from aiohttp import web

from service import keys
from service.keys import ACCESS_DEPS, AUTHORIZED_KEYS, PUSH_CONTEXTS, REFERENCE_COUNTER, URLS
from service.db import keys as keys_db
from service.db import post_receive as post_receive_db
from service.db import projects as projects_db
from service.db import users as users_db
from service.domain import lfs, two_factor
from service.domain.actors import (
    InvalidRepository,
    actor_from_params,
    as_id,
    normalise_repository_path,
    parse_identifier,
    repository_from_params,
)
from service.domain.app_settings import get_settings
from service.domain.errors import AccessDenied, AccessTimeout, NotFound, ProjectCreationError, RateLimited
from service.domain.git_access import AccessDeps, AllowedRequest, run_allowed, success_payload
from service.domain.post_receive import branch_names, created_branch_names, post_receive_messages
from service.domain.ssh_keys import InvalidKey, fingerprint_sha256, lenient_b64decode
from service.domain.tokens import InvalidTokenRequest, new_token, token_digest, validate_pat_request
from service.errors import bad_request, grape_error, json_response, not_found, record_not_found, unprocessable_entity
from service.params import params

routes = web.RouteTableDef()
# Its own credentials (the error-tracking token), see service/auth.py
error_tracking_routes = web.RouteTableDef()


def _allowed_denial(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    # /allowed answers denials with {"status": false, "message": ...}. The 401 (not 403) is GitLab's:
    # "If we return 403 the custom message we return won't be shown to the user" (internal/base.rb).
    return json_response({"status": False, "message": message}, status, headers)


@routes.post("/api/v4/internal/allowed")
async def allowed(request: web.Request) -> web.Response:
    """POST /internal/allowed: may this actor run this git command? (internal/base.rb)"""
    raw = await params(request)
    try:
        repository = repository_from_params(raw)
    except InvalidRepository as exc:
        raise bad_request(str(exc)) from None
    check_client_context(raw.get("gitaly_client_context_bin"))
    env = raw.get("env")
    hook_env: dict[str, Any] = {}
    if isinstance(env, str) and env:
        try:
            decoded = orjson.loads(env)
            hook_env = decoded if isinstance(decoded, dict) else {}
        except orjson.JSONDecodeError:
            hook_env = {}
    elif isinstance(env, dict):
        hook_env = env
    changes = raw.get("changes")
    if raw.get("action") == "git-receive-pack" and not isinstance(changes, str):
        # GitLab crashes on this (500); a push without its change list is a caller error.
        raise bad_request("changes is missing")
    req = AllowedRequest(
        action=raw.get("action") if isinstance(raw.get("action"), str) else None,
        protocol=raw.get("protocol") if isinstance(raw.get("protocol"), str) else None,
        changes=changes if isinstance(changes, str) else None,
        actor=actor_from_params(raw),
        repository=repository,
        raw_project=str(raw.get("project") or raw.get("gl_repository") or ""),
        hook_env=hook_env,
    )
    deps: AccessDeps = request.app[ACCESS_DEPS]
    app_settings = await get_settings(request.app)
    try:
        granted = await run_allowed(deps, req, app_settings)
    except AccessDenied as exc:
        return _allowed_denial(401, exc.message)
    except NotFound as exc:
        return _allowed_denial(404, exc.message)
    except AccessTimeout as exc:
        return _allowed_denial(503, exc.message)
    except ProjectCreationError as exc:
        return _allowed_denial(422, exc.message)
    except RateLimited as exc:
        # ApplicationRateLimiter's shape, not the /allowed one.
        # No Retry-After: gitlab-shell's HTTP client would wait that long before each retry.
        return json_response({"message": {"error": exc.message}}, 429)
    return json_response(success_payload(granted, req.action, app_settings, deps.settings))


def check_client_context(value: Any) -> None:
    """Newer Gitaly sends base64 JSON metadata; GitLab refuses a value that is not a JSON object."""
    if value in (None, ""):
        return
    try:
        decoded = orjson.loads(base64.b64decode(str(value), validate=True))
    except (ValueError, orjson.JSONDecodeError):
        raise bad_request("malformed gitaly_client_context_bin") from None
    if not isinstance(decoded, dict):
        raise bad_request("Decoded gitaly_client_context_bin is not a valid JSON object")


@routes.get("/api/v4/internal/authorized_keys")
async def authorized_keys(request: web.Request) -> web.Response:
    """GET /internal/authorized_keys?key=<base64 blob>: OpenSSH's AuthorizedKeysCommand lookup."""
    blob_text = request.query.get("key")
    if not blob_text:
        raise grape_error("key is missing")
    try:
        fingerprint = fingerprint_sha256(lenient_b64decode(blob_text))
    except InvalidKey:
        raise not_found("Key") from None
    found = await request.app[AUTHORIZED_KEYS].load(fingerprint)
    if found is None:
        raise not_found("Key")
    key_type, key_blob = found.key.split()[:2]
    comment = f"{found.user_name or 'Unknown'} ({request.app[URLS].host})"
    return json_response(
        {
            "id": found.id,
            "title": found.title,
            "created_at": _iso(found.created_at),
            "expires_at": _iso(found.expires_at),
            "key": f"{key_type} {key_blob} {comment}",
            "usage_type": found.usage_type,
        }
    )


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@routes.get("/api/v4/internal/discover")
async def discover(request: web.Request) -> web.Response:
    """GET /internal/discover: the user behind a key id or username; 200 null for nobody."""
    actor = actor_from_params(await params(request))
    async with request.app[keys.DB_POOL].acquire() as conn:
        user = await users_db.find_user_for_actor(
            conn,
            key_id=actor.key_id,
            user_id=actor.user_id,
            username=actor.username,
            owner_of_key_id=actor.owner_of_key_id,
        )
    return json_response(None if user is None else {"id": user.id, "username": user.username, "name": user.name})


@routes.get("/api/v4/internal/check")
async def check(request: web.Request) -> web.Response:
    """GET /internal/check: versions and a real Redis PING (Gitaly reads gitlab_revision)."""
    settings = request.app[keys.SETTINGS]
    try:
        redis_ok = bool(await request.app[keys.REDIS].ping())
    except Exception:  # any Redis failure is reported as redis:false, still 200
        redis_ok = False
    return json_response(
        {
            "api_version": "v4",
            "gitlab_version": settings.gitlab_version,
            "gitlab_rev": settings.gitlab_revision,
            "gitlab_revision": settings.gitlab_revision,
            "redis": redis_ok,
        }
    )


@routes.post("/api/v4/internal/lfs_authenticate")
async def lfs_authenticate(request: web.Request) -> web.Response:
    """POST /internal/lfs_authenticate: an LFS token for the SSH user (internal/base.rb)."""
    raw = await params(request)
    path = raw.get("project")
    actor = actor_from_params(raw)
    secrets = request.app[keys.SECRETS]
    async with request.app[keys.DB_POOL].acquire() as conn:
        project = (
            await projects_db.find_project_by_full_path(conn, normalise_repository_path(path))
            if isinstance(path, str) and path
            else None
        )
        if project is None or not project.lfs_enabled:
            raise not_found()
        if actor.key_id is not None:
            key = await keys_db.find_key_actor(conn, actor.key_id)
            if key is None:
                raise record_not_found()
            if key.is_deploy_key:
                name = lfs.deploy_key_actor_name(key.key_id)
                secret = lfs.deploy_key_secret(key.fingerprint_sha256, secrets.db_key_base)
            elif key.user_id is not None:
                name = key.username or ""
                secret = lfs.user_secret(key.user_id, key.encrypted_password or "", secrets.db_key_base)
            else:
                raise record_not_found()
        else:
            user = await users_db.find_user_for_actor(
                conn, key_id=None, user_id=actor.user_id, username=actor.username, owner_of_key_id=None
            )
            if user is None:
                raise record_not_found()
            name = user.username
            secret = lfs.user_secret(user.id, user.encrypted_password, secrets.db_key_base)
    return json_response(
        {
            "username": name,
            "lfs_token": lfs.lfs_token(name, secret, project.id),
            "repository_http_path": request.app[URLS].http_url_to_repo(project.full_path),
            "expires_in": lfs.DEFAULT_EXPIRE_TIME,
        }
    )


async def _key_actor_or_message(conn: Any, raw: dict[str, Any]) -> tuple[Any, str | None]:
    """GitLab's validate_actor for the key-based shell commands: (key actor, failure message)."""
    key_id = as_id(raw.get("key_id"))
    if raw.get("key_id") in (None, "") and raw.get("user_id") not in (None, ""):
        user = await users_db.find_user_by_id(conn, as_id(raw.get("user_id")) or 0)
        if user is None:
            return None, "Could not find the given user"
        return None, "Could not find the given key"
    if key_id is None:
        return None, "Could not find the given key"
    key = await keys_db.find_key_actor(conn, key_id)
    if key is None:
        return None, "Could not find the given key"
    if key.user_id is None:
        return key, "Could not find a user for the given key"
    return key, None


@routes.post("/api/v4/internal/two_factor_recovery_codes")
@routes.get("/api/v4/internal/two_factor_recovery_codes")
async def two_factor_recovery_codes(request: web.Request) -> web.Response:
    """POST /internal/two_factor_recovery_codes (the seed documents say GET; both work).

    Always 200: failures are {"success": false, "message": ...} (internal/base.rb).
    """
    raw = await params(request)
    async with request.app[keys.DB_POOL].acquire() as conn:
        key, problem = await _key_actor_or_message(conn, raw)
        if problem:
            return json_response({"success": False, "message": problem})
        if key.is_deploy_key:
            return json_response(
                {"success": False, "message": "Deploy keys cannot be used to retrieve recovery codes"}
            )
        if not key.otp_required_for_login:
            return json_response(
                {"success": False, "message": "Two-factor authentication is not enabled for this user"}
            )
        codes = two_factor.generate_codes()
        await users_db.replace_otp_backup_codes(conn, key.user_id, await two_factor.digest_codes(codes))
    return json_response({"success": True, "recovery_codes": codes})


@routes.post("/api/v4/internal/personal_access_token")
async def personal_access_token(request: web.Request) -> web.Response:
    """POST /internal/personal_access_token: a PAT for the SSH user; always 200 (internal/base.rb)."""
    raw = await params(request)
    app_settings = await get_settings(request.app)
    async with request.app[keys.DB_POOL].acquire() as conn:
        key, problem = await _key_actor_or_message(conn, raw)
        # Unlike recovery codes, GitLab checks for a deploy key before the user checks here.
        if key is not None and key.is_deploy_key:
            return json_response(
                {"success": False, "message": "Deploy keys cannot be used to create personal access tokens"}
            )
        if problem:
            return json_response({"success": False, "message": problem})
        try:
            name, scopes, expires_at = validate_pat_request(
                raw.get("name"),
                raw.get("scopes"),
                raw.get("expires_at"),
                require_expiry=app_settings.require_personal_access_token_expiry,
                max_lifetime_days=app_settings.max_personal_access_token_lifetime,
                today=date.today(),
            )
        except InvalidTokenRequest as exc:
            return json_response({"success": False, "message": str(exc)})
        token = new_token(app_settings.personal_access_token_prefix)
        await users_db.insert_personal_access_token(
            conn, user_id=key.user_id, name=name, digest=token_digest(token), scopes=scopes, expires_at=expires_at
        )
    return json_response(
        {
            "success": True,
            "token": token,
            "scopes": scopes,
            "expires_at": expires_at.isoformat() if expires_at else None,
        }
    )


@routes.post("/api/v4/internal/two_factor_config")
async def two_factor_config(request: web.Request) -> web.Response:
    """POST /internal/two_factor_config: does this user need 2FA on the command line?"""
    raw = await params(request)
    app_settings = await get_settings(request.app)
    if not app_settings.two_factor_for_cli:
        return json_response({"success": False})
    async with request.app[keys.DB_POOL].acquire() as conn:
        key, problem = await _key_actor_or_message(conn, raw)
    if problem:
        return json_response({"success": False, "message": problem})
    required = False if key.is_deploy_key else bool(key.otp_required_for_login)
    return json_response({"success": True, "two_factor_required": required})


@routes.post("/api/v4/internal/two_factor_manual_otp_check")
@routes.post("/api/v4/internal/two_factor_push_otp_check")
async def two_factor_otp_check(request: web.Request) -> web.Response:
    """The OTP checks are GitLab EE features; FOSS answers exactly this (internal/base.rb)."""
    return json_response({"success": False, "message": "Feature is not available"})


@routes.post("/api/v4/internal/pre_receive")
async def pre_receive(request: web.Request) -> web.Response:
    """POST /internal/pre_receive: INCR + EXPIRE 600 on the repository's reference counter."""
    gl_repository = (await params(request)).get("gl_repository")
    increased = await request.app[REFERENCE_COUNTER].increase(str(gl_repository or ""))
    return json_response({"reference_counter_increased": increased})


@routes.post("/api/v4/internal/post_receive")
async def post_receive(request: web.Request) -> web.Response:
    """POST /internal/post_receive: DECR the counter and answer the messages for the pusher."""
    raw = await params(request)
    # gitaly_client_context_bin is not validated here: Gitaly needs exactly 200 from post_receive,
    # and refusing would leave the reference counter raised for ten minutes.
    gl_repository = str(raw.get("gl_repository") or "")
    try:
        repository = repository_from_params({"gl_repository": gl_repository}) if gl_repository else None
    except InvalidRepository as exc:
        raise bad_request(str(exc)) from None
    project_id = repository.container_id if repository and repository.repo_type in ("project", "wiki") else None
    pusher = parse_identifier(raw.get("identifier"))
    raw_changes = raw.get("changes")
    changes = raw_changes if isinstance(raw_changes, str) else ""
    counter = request.app[REFERENCE_COUNTER]
    lookup = post_receive_db.PushLookup(
        project_id=project_id,
        user_id=pusher.user_id,
        key_id=pusher.owner_of_key_id,
        username=pusher.username,
        branches=tuple(branch_names(changes)),
    )
    pending_context = request.app[PUSH_CONTEXTS].submit(lookup)
    if pusher.user_id is not None:
        # Gitaly's usual identifier, user-<id>: the counter and the notices need no lookup first,
        # so the Redis call and the database lookup are in flight together.
        decrease = await counter.decrease(gl_repository, pusher.user_id, project_id)
        ctx = await pending_context
    else:
        ctx = await pending_context
        decrease = await counter.decrease(gl_repository, ctx.user_id, project_id)
    is_project = repository is not None and repository.repo_type == "project"
    if ctx.project_id is not None and ctx.default_branch is None and is_project:
        async with request.app[keys.DB_POOL].acquire() as conn:
            ctx = await post_receive_db.adopt_default_branch(conn, ctx, created_branch_names(changes))
    messages = post_receive_messages(ctx, decrease, lookup.branches, repository, request.app[URLS])
    return json_response({"messages": messages, "reference_counter_decreased": decrease.decreased})


@error_tracking_routes.post("/api/v4/internal/error_tracking/allowed")
async def error_tracking_allowed(request: web.Request) -> web.Response:
    """POST /internal/error_tracking/allowed: is error tracking on for this project and key?"""
    raw = await params(request)
    project_id, public_key = raw.get("project_id"), raw.get("public_key")
    if project_id in (None, "") or not public_key:
        raise unprocessable_entity()
    number = as_id(project_id)
    async with request.app[keys.DB_POOL].acquire() as conn:
        found = await projects_db.find_error_tracking_key(conn, number, str(public_key)) if number else None
    if found is None:
        raise record_not_found()
    app_settings = await get_settings(request.app)
    return json_response({"enabled": bool(app_settings.error_tracking_enabled and found.active_key)})

