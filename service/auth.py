"""Who may call which route: a registry of consumers and the one middleware that checks them.

Each route is registered with exactly one Consumer (service/routes/__init__.py). The middleware
looks the matched route up and runs that consumer's check; a route without a consumer cannot be
registered, and unmatched paths fall through to the 404 handler.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from typing import Any, NamedTuple

import jwt
import orjson
from aiohttp import web
from aiohttp.web_urldispatcher import AbstractRoute, SystemRoute
from multidict import istr

from service import app_keys
from service.current_settings import current_settings
from service.db import users as users_db
from service.domain.agents import authenticate_agent_token
from service.domain.permissions import BLOCKED_STATES
from service.domain.tokens import token_digest
from service.errors import (
    forbidden,
    insufficient_scope,
    invalid_token,
    kas_unauthorized,
    not_found,
    unauthorized,
)
from service.params import SMALL_BODY, query_or_body_param

log = logging.getLogger("gitlab_internal_api.auth")

# istr, as aiohttp.hdrs names its headers: a case-insensitive lookup of a plain str folds its case
# on every call (a lookup of a header that is absent cost 127 ns against 36)
SHELL_JWT_HEADER = istr("Gitlab-Shell-Api-Request")
SHELL_JWT_ISSUER = "gitlab-shell"
SHELL_JWT_LEEWAY = 60  # JSONWebToken::HMACToken::LEEWAY
LEGACY_SECRET_HEADER = istr("Gitlab-Shared-Secret")
KAS_JWT_HEADER = istr("Gitlab-Kas-Api-Request")
KAS_JWT_ISSUER = "gitlab-kas"
KAS_JWT_AUDIENCE = "gitlab"
ERROR_TRACKING_HEADER = "Gitlab-Error-Tracking-Token"
ALGORITHMS = ["HS256"]  # pinned: never "none", never an asymmetric algorithm with an HMAC key
# How far in the future a token's `iat` may be (clock skew between hosts), for both JWT consumers.
IAT_LEEWAY = 60

# Body limits per consumer (service/params.py answers 413 beyond them). The change list of a push
# is one line per ref ("<old> <new> <ref>\n", ~100 bytes with a long ref): 32 MB is ~300,000 refs.
# kas posts configuration files and vulnerability reports; CustomersDot and admins post small
# objects, reconciliations in batches of a few thousand.
MiB = 1024**2
SHELL_MAX_BODY = 32 * MiB
KAS_MAX_BODY = 8 * MiB
ADMIN_MAX_BODY = 1 * MiB
RECONCILIATIONS_MAX_BODY = 8 * MiB
PUBLIC_MAX_BODY = 64 * 1024


class Identity(NamedTuple):
    consumer: str
    user_id: int | None = None
    username: str | None = None
    is_admin: bool = False
    agent_id: int | None = None
    agent_token_id: int | None = None
    token_id: int | None = None  # the personal access token that authenticated the request
    scopes: tuple[str, ...] = ()


# The identities that carry no user: one object each rather than one per request (they are immutable).
SHELL_IDENTITY = Identity("gitlab-shell")
KAS_IDENTITY = Identity("gitlab-kas")
ERROR_TRACKING_IDENTITY = Identity("error-tracking")
ANONYMOUS = Identity("anonymous")
MONITORING_IDENTITY = Identity("monitoring")

Check = Callable[[web.Request], Awaitable[Identity]]
# Decides from the headers alone, without an await: an identity, a refusal (raises), or None when
# the headers do not decide and `check` must (a legacy credential that may be in the body...). It is
# given the request's application, which the middleware has at hand (request.app is two calls).
HeaderCheck = Callable[[web.Request, web.Application], Identity | None]


@dataclass(frozen=True)
class Consumer:
    name: str
    check: Check
    max_body: int = ADMIN_MAX_BODY  # bytes; see service/params.py
    # the hot consumers' common case (a JWT header) without a coroutine per request
    header_check: HeaderCheck | None = None

    def __post_init__(self) -> None:
        if self.max_body < SMALL_BODY:
            # service/params.py takes a body of SMALL_BODY bytes or fewer without asking its limit
            raise ValueError(f"{self.name}: a body limit under {SMALL_BODY} bytes is not enforced")

    def __repr__(self) -> str:
        return f"Consumer({self.name})"


# --- GitLab Shell and Gitaly -------------------------------------------------------------------


def _verify_hs256(
    token: str, key: bytes, issuer: str, leeway: int, required: list[str], audience: str | None
) -> dict[str, Any]:
    """Signature, issuer, `exp`/`nbf` within the leeway, the audience (when one is given: PyJWT takes
    `aud` as a string or a list of strings holding it, and refuses any other shape), and the claims
    in `required` present.

    Stricter than Rails (JSONWebToken::HMACToken requires nothing): a token without `exp` would
    never expire, and one issued in the future was made to outlive its `exp` check. gitlab-shell,
    Gitaly and kas always send `iat` and `exp` (and kas `aud`).
    """
    if not token.isascii():
        # A JWT is base64url and dots; aiohttp hands on a header's non-UTF-8 bytes as lone
        # surrogates, which PyJWT could not even encode.
        raise jwt.DecodeError("not a JWT")
    claims = jwt.decode(
        token,
        key,
        algorithms=ALGORITHMS,
        issuer=issuer,
        audience=audience,
        leeway=leeway,
        # iat is checked below with its own leeway (PyJWT would use the exp/nbf leeway, 0 for kas)
        options={"verify_aud": audience is not None, "verify_iat": False, "require": required},
    )
    issued_at = claims.get("iat")
    if issued_at is not None:
        if isinstance(issued_at, bool) or not isinstance(issued_at, (int, float)):
            raise jwt.InvalidIssuedAtError("iat must be a number")
        if issued_at > time.time() + IAT_LEEWAY:
            raise jwt.ImmatureSignatureError("iat is in the future")
    return claims


class VerifiedTokens:
    """Tokens whose signature and claims were already checked, until their `exp` (plus leeway).

    gitlab-shell and Gitaly sign a fresh token per request, but with whole-second `iat`/`exp` every
    request of the same second carries the same token; kas reuses its token for a few seconds.
    Re-verifying costs about as much as the rest of a hot request, and the outcome of a check is a
    pure function of the token and the clock, so a hit re-checks only the clock. Only successes are
    remembered, per key and issuer (each Consumer has its own cache), and the cache is bounded.
    """

    MAX_ENTRIES = 4096

    def __init__(
        self,
        key: bytes,
        issuer: str,
        leeway: int,
        required: tuple[str, ...] = ("iss", "exp"),
        audience: str | None = None,
    ) -> None:
        self.key, self.issuer, self.leeway, self.audience = key, issuer, leeway, audience
        self.required = list(required)
        self._valid: dict[str, tuple[float, float, dict[str, Any]]] = {}

    def verify(self, token: str) -> dict[str, Any]:
        now = time.time()
        hit = self._valid.get(token)
        if hit is not None:
            not_before, expires, claims = hit
            if not_before <= now < expires:
                return claims
            del self._valid[token]
        claims = _verify_hs256(token, self.key, self.issuer, self.leeway, self.required, self.audience)
        if "exp" in claims:  # a token without exp is checked every time rather than kept forever
            if len(self._valid) >= self.MAX_ENTRIES:
                self._valid.clear()
            try:
                not_before = max(float(claims.get("nbf", 0)) - self.leeway, float(claims.get("iat", 0)) - IAT_LEEWAY)
            except OverflowError:  # a signed nbf or iat of hundreds of digits: nobody's real token
                raise jwt.InvalidTokenError("nbf or iat out of range") from None
            # int(): PyJWT compares the whole seconds of `exp`, so a fractional exp expires at its
            # whole second, and a remembered token must not outlive what a fresh check accepts
            self._valid[token] = (not_before, int(claims["exp"]) + self.leeway, claims)
        return claims


def _legacy_secret_matches(candidate: str | None, secret: bytes) -> bool:
    if candidate is None:
        return False
    # surrogatepass: a header's non-UTF-8 bytes arrive as lone surrogates, and simply do not match
    return hmac.compare_digest(candidate.rstrip("\r\n").encode("utf-8", "surrogatepass"), secret)


def shell_jwt(request: web.Request, app: web.Application) -> Identity | None:
    """The JWT in Gitlab-Shell-Api-Request (GitLab Shell >= 14.35, Gitaly); None without one."""
    token = request.headers.get(SHELL_JWT_HEADER)
    if token is None:
        return None
    try:
        app[app_keys.SHELL_TOKENS].verify(token)
    except jwt.PyJWTError as exc:
        log.info("shell JWT rejected: %s", type(exc).__name__)
        raise unauthorized() from None
    return SHELL_IDENTITY


async def check_shell(request: web.Request) -> Identity:
    """JWT in Gitlab-Shell-Api-Request (current), or the shared secret of GitLab Shell < 14.35."""
    identity = shell_jwt(request, request.app)
    if identity is not None:
        return identity
    if request.app[app_keys.SETTINGS].accept_legacy_shell_secret:
        secret = request.app[app_keys.SECRETS].shell
        header = request.headers.get(LEGACY_SECRET_HEADER)
        if header is not None:
            try:
                decoded = base64.b64decode(header.strip(), validate=False).decode()
            except ValueError:  # not base64 (or not ASCII), or not UTF-8 once decoded
                decoded = None
            if _legacy_secret_matches(decoded, secret):
                return SHELL_IDENTITY
        param = await query_or_body_param(request, "secret_token")
        if isinstance(param, str):
            # Rails compares the parameter as sent; the seed documents call it base64, so try both.
            try:
                decoded_param: str | None = base64.b64decode(param, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError, ValueError):
                decoded_param = None
            if _legacy_secret_matches(param, secret) or _legacy_secret_matches(decoded_param, secret):
                return SHELL_IDENTITY
    raise unauthorized()


# --- kas ---------------------------------------------------------------------------------------


def kas_jwt(request: web.Request, app: web.Application) -> Identity:
    """Gitlab-Kas-Api-Request: HS256 with the decoded 32-byte kas secret, iss gitlab-kas, aud gitlab."""
    token = request.headers.get(KAS_JWT_HEADER)
    if token is None:
        raise kas_unauthorized()
    try:
        app[app_keys.KAS_TOKENS].verify(token)  # with its audience (service/app.py)
    except jwt.PyJWTError as exc:
        log.info("kas JWT rejected: %s", type(exc).__name__)
        raise kas_unauthorized() from None
    return KAS_IDENTITY


async def check_kas(request: web.Request) -> Identity:
    return kas_jwt(request, request.app)


def agent_token_from(request: web.Request) -> str | None:
    """The agent token, from each header kas has used over time (newest last)."""
    authorization = request.headers.get("Authorization", "")
    if authorization[:7].lower() == "bearer ":
        return authorization[7:].strip() or None
    for header in ("Gitlab-Agentk-Api-Request", "Gitlab-Agent-Api-Request"):
        value = request.headers.get(header)
        if value:
            return value.strip()
    return None


async def check_kas_agent(request: web.Request) -> Identity:
    """The kas JWT, then an active agent token (kubernetes/* agent routes)."""
    app = request.app
    kas_jwt(request, app)
    token = agent_token_from(request)
    if token is None:
        raise unauthorized()
    found = await authenticate_agent_token(app[app_keys.AGENT_TOKENS], app[app_keys.DB_POOL], token)
    if found is None:
        raise unauthorized()
    return Identity("gitlab-kas+agent", agent_id=found.agent_id, agent_token_id=found.token_id)


# --- Personal access tokens (admin API, CustomersDot) ------------------------------------------


async def pat_from(request: web.Request) -> str | None:
    """GitLab's order (AuthFinders#extract_personal_access_token): the private_token parameter, then
    the PRIVATE-TOKEN header, then a Bearer token. A client that sends two gets the first one's
    answer, as from GitLab (a proxy's header must not stand in for the token its client sent)."""
    value = await query_or_body_param(request, "private_token")
    if not _blank(value):
        # A value that is not a string is tried as its text, as Rails' to_s does, and matches no token.
        return value if isinstance(value, str) else orjson.dumps(value).decode()
    for header in ("PRIVATE-TOKEN", "TOKEN"):  # TOKEN: the 2021 CustomersDot examples send it
        value = request.headers.get(header)
        if value:
            return value.strip()
    authorization = request.headers.get("Authorization", "")
    if authorization[:7].lower() == "bearer ":
        return authorization[7:].strip() or None
    return None


def _blank(value: Any) -> bool:
    """Rails' blank?, which `presence` tests: nil, false, white space, an empty list or hash."""
    if isinstance(value, str):
        return not value.strip()
    return value is None or value is False or value == [] or value == {}


async def authenticate_pat(request: web.Request, required_scopes: frozenset[str]) -> Identity:
    token = await pat_from(request)
    if token is None:
        raise unauthorized()
    async with request.app[app_keys.DB_POOL].acquire() as conn:
        found = await users_db.find_user_by_token_digest(conn, token_digest(token))
    if found is None:
        raise unauthorized()
    # APIGuard's order: expired, then revoked; then the scope; then whether the user may use the API.
    if found.expires_at is not None and found.expires_at <= date.today():
        raise invalid_token("Token is expired. You can either do re-authorization or token refresh.")
    if found.revoked:
        raise invalid_token("Token was revoked. You have to re-authorize from the user.")
    if not required_scopes.intersection(found.scopes):
        raise insufficient_scope(" ".join(sorted(required_scopes)))
    if found.state in BLOCKED_STATES:
        raise forbidden("Your account has been blocked.")
    if found.state == "deactivated":
        raise forbidden(
            "Your account has been deactivated by your administrator. Please log back in to reactivate your account."
        )
    return Identity(
        "personal_access_token",
        user_id=found.user_id,
        username=found.username,
        is_admin=found.admin and await _in_admin_mode(request, found.scopes),
        token_id=found.token_id,
        scopes=tuple(found.scopes),
    )


async def _in_admin_mode(request: web.Request, scopes: list[str]) -> bool:
    """can_admin_all_resources? for an administrator's token: with the admin_mode setting on, only a
    token with the admin_mode scope acts as an administrator; without it the user is like any other,
    on admin routes (403) and on user routes alike (GitLab's admin mode for the API)."""
    return "admin_mode" in scopes or not (await current_settings(request.app)).admin_mode


API_SCOPES = frozenset({"api"})
READ_API_SCOPES = frozenset({"api", "read_api"})


async def check_user_api(request: web.Request) -> Identity:
    """Any active user whose token has the `api` scope (`read_api` on GET)."""
    scopes = READ_API_SCOPES if request.method in ("GET", "HEAD") else API_SCOPES
    return await authenticate_pat(request, scopes)


async def check_admin(request: web.Request) -> Identity:
    """authenticated_as_admin!: 401 without a valid token, 403 "403 Forbidden" unless the user is an
    administrator in admin mode (authenticate_pat decides is_admin)."""
    identity = await check_user_api(request)
    if not identity.is_admin:
        raise forbidden()
    return identity


# --- Error tracking ----------------------------------------------------------------------------


async def check_admin_on_gitlab_com(request: web.Request) -> Identity:
    """GitLab.com-only admin routes: the 403 comes before authentication (upcoming_reconciliations.rb)."""
    if not request.app[app_keys.SETTINGS].gitlab_com:
        raise forbidden("This API is gitlab.com only!")
    return await check_admin(request)


async def check_error_tracking(request: web.Request) -> Identity:
    """Gitlab-Error-Tracking-Token / error_tracking_token against the application setting.

    The 2022 seed document shows the shell credentials on this route, so those are accepted too.
    """
    supplied = request.headers.get(ERROR_TRACKING_HEADER) or await query_or_body_param(request, "error_tracking_token")
    if isinstance(supplied, str) and supplied:
        app_settings = await current_settings(request.app)
        expected = app_settings.error_tracking_access_token_digest
        if expected and hmac.compare_digest(token_digest(supplied.rstrip("\r\n")), expected):
            return ERROR_TRACKING_IDENTITY
        raise unauthorized()
    return await check_shell(request)


def nobody(request: web.Request, app: web.Application) -> Identity:
    """Health endpoints for the load balancer: no credentials."""
    return ANONYMOUS


async def check_nobody(request: web.Request) -> Identity:
    return nobody(request, request.app)


def monitoring(request: web.Request, app: web.Application) -> Identity:
    """/-/metrics, as GitLab's MetricsController: the monitoring allow-list of addresses
    (monitoring.ip_whitelist) or the monitoring token; anyone else is told the page does not exist."""
    if app[app_keys.METRICS_ACCESS].allows(request.remote, request.headers):
        return MONITORING_IDENTITY
    raise not_found()


async def check_monitoring(request: web.Request) -> Identity:
    return monitoring(request, request.app)


SHELL = Consumer("gitlab-shell", check_shell, SHELL_MAX_BODY, header_check=shell_jwt)
KAS = Consumer("gitlab-kas", check_kas, KAS_MAX_BODY, header_check=kas_jwt)
KAS_AGENT = Consumer("gitlab-kas+agent", check_kas_agent, KAS_MAX_BODY)
ERROR_TRACKING = Consumer("error-tracking", check_error_tracking, ADMIN_MAX_BODY)
USER = Consumer("user", check_user_api, ADMIN_MAX_BODY)
ADMIN = Consumer("admin", check_admin, ADMIN_MAX_BODY)
ADMIN_GITLAB_COM = Consumer("admin on gitlab.com", check_admin_on_gitlab_com, RECONCILIATIONS_MAX_BODY)
PUBLIC = Consumer("public", check_nobody, PUBLIC_MAX_BODY, header_check=nobody)
MONITORING = Consumer("monitoring", check_monitoring, PUBLIC_MAX_BODY, header_check=monitoring)
# The largest of them: aiohttp's own cap (client_max_size, service/app.py) must not be lower.
MAX_BODY = max(SHELL_MAX_BODY, KAS_MAX_BODY, ADMIN_MAX_BODY, RECONCILIATIONS_MAX_BODY, PUBLIC_MAX_BODY)


def identify_from_headers(request: web.Request, app: web.Application, route: AbstractRoute) -> Consumer | None:
    """The route's consumer's check from the headers (service/middleware.py calls it), its identity
    kept in the request. Returns the consumer when the headers did not decide and its full `check`
    must be awaited (a legacy credential that may be in the body); None otherwise, and for
    aiohttp's own 404 and 405 routes, which need no credentials.

    Credentials come from headers (or the query string) before the body is touched; only the legacy
    ones that may be in the body read it, within the consumer's limit (service/params.py), which is
    why the consumer is kept in the request too."""
    consumer = app[app_keys.ROUTE_CONSUMERS].get(route)
    if consumer is None:
        if isinstance(route, SystemRoute):
            return None  # aiohttp's own 404/405, rendered by the middleware
        # Fail closed: a route that reached the router without a consumer answers nobody.
        log.error("route %s has no consumer", route)
        raise unauthorized()
    request[app_keys.CONSUMER] = consumer
    if consumer.header_check is not None:
        identity = consumer.header_check(request, app)
        if identity is not None:
            request[app_keys.IDENTITY] = identity
            return None
    return consumer
