"""GitLab Shell and Gitaly endpoints (GitLab: lib/api/internal/base.rb, lib/api/internal/error_tracking.rb).

Handlers parse parameters, call domain functions and pick GitLab's response envelope; the rules
live in service/domain.
"""

from __future__ import annotations

import base64
import functools
from datetime import date
from typing import Any

import orjson
from aiohttp import web

from schemas.shell import changes_within_limits
from service import app_keys
from service.current_settings import current_settings
from service.domain import error_tracking, lfs, two_factor
from service.domain.actors import actor_from_params, find_user, repository_from_params
from service.domain.git_access import AllowedRequest, allowed_answer
from service.domain.post_receive import post_receive as run_post_receive
from service.domain.push_options import as_option_list
from service.logs import CORRELATION_ID
from service.domain.ssh_keys import InvalidKey, fingerprint_sha256, lenient_b64decode
from service.domain.tokens import issue_personal_access_token
from service.errors import bad_request, grape_error, json_bytes_response, json_response, not_found
from service.app_keys import ACCESS_DEPS, AUTHORIZED_KEY_BODIES, AUTHORIZED_KEYS, PUSH_CONTEXTS, REFERENCE_COUNTER, URLS
from service.params import params, query_value

routes = web.RouteTableDef()
# Its own credentials (the error-tracking token), see service/auth.py
error_tracking_routes = web.RouteTableDef()


@routes.post("/api/v4/internal/allowed")
async def allowed(request: web.Request) -> web.Response:
    """POST /internal/allowed: may this actor run this git command? (internal/base.rb)

    Denials are domain errors (GitAccessError) that the error middleware renders in /allowed's own
    {"status": false, "message": ...} envelope (service/errors.py).
    """
    raw = await params(request)
    repository = repository_from_params(raw)
    context = client_context(raw.get("gitaly_client_context_bin"))
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
    if isinstance(changes, str) and not changes_within_limits(changes):
        raise bad_request("changes is invalid")  # a ref longer than git can write
    req = AllowedRequest(
        action=raw.get("action") if isinstance(raw.get("action"), str) else None,
        protocol=raw.get("protocol") if isinstance(raw.get("protocol"), str) else None,
        changes=changes if isinstance(changes, str) else None,
        actor=actor_from_params(raw),
        repository=repository,
        raw_project=str(raw.get("project") or raw.get("gl_repository") or ""),
        hook_env=hook_env,
        scoped_user_id=context.get("scoped-user-id"),
    )
    app = request.app
    app_settings = await current_settings(app)
    return json_bytes_response(await allowed_answer(app[ACCESS_DEPS], req, app_settings))


def client_context(value: Any) -> dict[str, Any]:
    """Newer Gitaly sends base64 JSON metadata; GitLab refuses a value that is not a JSON object."""
    if value in (None, ""):
        return {}
    try:
        decoded = orjson.loads(base64.b64decode(str(value), validate=True))
    except (ValueError, orjson.JSONDecodeError):
        raise bad_request("malformed gitaly_client_context_bin") from None
    if not isinstance(decoded, dict):
        raise bad_request("Decoded gitaly_client_context_bin is not a valid JSON object")
    return decoded


@routes.get("/api/v4/internal/authorized_keys")
async def authorized_keys(request: web.Request) -> web.Response:
    """GET /internal/authorized_keys?key=<base64 blob>: OpenSSH's AuthorizedKeysCommand lookup."""
    blob_text = query_value(request, "key")
    if not blob_text:
        raise grape_error("key is missing")
    try:
        fingerprint = fingerprint_of(blob_text)
    except InvalidKey:
        raise not_found("Key") from None
    app = request.app
    found = await app[AUTHORIZED_KEYS].load(fingerprint)
    if found is None:
        raise not_found("Key")
    return json_bytes_response(app[AUTHORIZED_KEY_BODIES].body(fingerprint, found))


# The longest key text whose fingerprint is kept: an RSA 8192 key is ~1,400 characters, and sshd
# passes on whatever keys an anonymous client offers, so longer ones are not worth their memory.
KEPT_KEY_TEXT = 2048


def fingerprint_of(blob_text: str) -> str:
    """sshd asks about the same few keys over and over: a pure function, so its answers are kept
    (a malformed key raises, and is not kept)."""
    if len(blob_text) > KEPT_KEY_TEXT:
        return fingerprint_sha256(lenient_b64decode(blob_text))
    return _kept_fingerprint(blob_text)


@functools.lru_cache(maxsize=4096)
def _kept_fingerprint(blob_text: str) -> str:
    return fingerprint_sha256(lenient_b64decode(blob_text))


@routes.get("/api/v4/internal/discover")
async def discover(request: web.Request) -> web.Response:
    """GET /internal/discover: the user behind a key id or username; 200 null for nobody."""
    actor = actor_from_params(await params(request))
    async with request.app[app_keys.DB_POOL].acquire() as conn:
        user = await find_user(conn, actor)
    return json_response(None if user is None else {"id": user.id, "username": user.username, "name": user.name})


@routes.get("/api/v4/internal/check")
async def check(request: web.Request) -> web.Response:
    """GET /internal/check: versions and a real Redis PING (Gitaly reads gitlab_revision)."""
    settings = request.app[app_keys.SETTINGS]
    redis_ok = await request.app[app_keys.REDIS].ping()  # a Redis failure is false, still 200
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
    async with request.app[app_keys.DB_POOL].acquire() as conn:
        grant = await lfs.authenticate(
            conn,
            actor_from_params(raw),
            repository_from_params({"project": raw.get("project")}),
            request.app[app_keys.SECRETS].db_key_base,
        )
    return json_response(
        {
            "username": grant.username,
            "lfs_token": grant.token,
            "repository_http_path": request.app[URLS].http_url_to_repo(grant.repository_path),
            "expires_in": lfs.DEFAULT_EXPIRE_TIME,
        }
    )


@routes.post("/api/v4/internal/two_factor_recovery_codes")
@routes.get("/api/v4/internal/two_factor_recovery_codes")
async def two_factor_recovery_codes(request: web.Request) -> web.Response:
    """POST /internal/two_factor_recovery_codes (the seed documents say GET; both work).

    Always 200: failures are {"success": false, "message": ...} (internal/base.rb).
    """
    raw = await params(request)
    async with request.app[app_keys.DB_POOL].acquire() as conn:
        codes = await two_factor.regenerate_recovery_codes(conn, raw.get("key_id"), raw.get("user_id"))
    return json_response({"success": True, "recovery_codes": codes})


@routes.post("/api/v4/internal/personal_access_token")
async def personal_access_token(request: web.Request) -> web.Response:
    """POST /internal/personal_access_token: a PAT for the SSH user; always 200 (internal/base.rb)."""
    raw = await params(request)
    app_settings = await current_settings(request.app)
    async with request.app[app_keys.DB_POOL].acquire() as conn:
        issued = await issue_personal_access_token(conn, raw, app_settings, date.today())
    return json_response(
        {
            "success": True,
            "token": issued.token,
            "scopes": issued.scopes,
            "expires_at": issued.expires_at.isoformat() if issued.expires_at else None,
        }
    )


@routes.post("/api/v4/internal/two_factor_config")
async def two_factor_config(request: web.Request) -> web.Response:
    """POST /internal/two_factor_config: does this user need 2FA on the command line?"""
    raw = await params(request)
    two_factor.cli_two_factor_enabled(await current_settings(request.app))
    async with request.app[app_keys.DB_POOL].acquire() as conn:
        required = await two_factor.two_factor_required(conn, raw.get("key_id"), raw.get("user_id"))
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
    return json_bytes_response(PRE_RECEIVE_ANSWERS[increased])


# Gitaly's hook on every push: its two possible answers, encoded once
PRE_RECEIVE_ANSWERS = {value: orjson.dumps({"reference_counter_increased": value}) for value in (True, False)}


@routes.post("/api/v4/internal/post_receive")
async def post_receive(request: web.Request) -> web.Response:
    """POST /internal/post_receive: DECR the counter and answer the messages for the pusher."""
    raw = await params(request)
    # gitaly_client_context_bin is not validated here: Gitaly needs exactly 200 from post_receive,
    # and refusing would leave the reference counter raised for ten minutes.
    raw_changes = raw.get("changes")
    app = request.app
    answer = await run_post_receive(
        app[PUSH_CONTEXTS],
        app[app_keys.DB_POOL],
        app[REFERENCE_COUNTER],
        app[URLS],
        str(raw.get("gl_repository") or ""),
        raw.get("identifier"),
        raw_changes if isinstance(raw_changes, str) else "",
        jobs=app[app_keys.POST_RECEIVE_JOBS],
        push_options=as_option_list(raw.get("push_options")),
        correlation_id=CORRELATION_ID.get(),
    )
    return json_response(
        {"messages": answer.messages, "reference_counter_decreased": answer.reference_counter_decreased}
    )


@error_tracking_routes.post("/api/v4/internal/error_tracking/allowed")
async def error_tracking_allowed(request: web.Request) -> web.Response:
    """POST /internal/error_tracking/allowed: is error tracking on for this project and key?"""
    raw = await params(request)
    app_settings = await current_settings(request.app)
    async with request.app[app_keys.DB_POOL].acquire() as conn:
        enabled = await error_tracking.enabled_for(conn, raw.get("project_id"), raw.get("public_key"), app_settings)
    return json_response({"enabled": enabled})
