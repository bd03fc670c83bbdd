"""Personal access tokens: digests, scopes and GitLab's expiry rules (reference section 9.1)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from service.db import users as users_db
from service.db.rows import Conn
from service.domain.actors import command_key
from service.domain.app_settings import AppSettings
from service.domain.errors import CommandRefused
from service.domain.permissions import BLOCKED_STATES
from service.domain.ruby_date import parse_ruby_date

# Gitlab::Auth::API_SCOPES + REPOSITORY_SCOPES + REGISTRY_SCOPES (+ the later additions), sorted
VALID_PAT_SCOPES = sorted(
    {
        "api",
        "read_api",
        "read_user",
        "create_runner",
        "manage_runner",
        "k8s_proxy",
        "self_rotate",
        "read_repository",
        "write_repository",
        "read_registry",
        "write_registry",
    }
)
MAX_LIFETIME_DAYS = 365


class InvalidTokenRequest(CommandRefused):
    """A PAT request GitLab answers with success:false and this message."""


def token_digest(token: str) -> str:
    """Tokens are random; a plain SHA-256 is what is stored and looked up. surrogatepass: a header's
    non-UTF-8 bytes arrive as lone surrogates; their digest matches no token, as it should."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_token(prefix: str) -> str:
    # 20 URL-safe characters, like Devise.friendly_token, behind the instance prefix (glpat-)
    return prefix + secrets.token_urlsafe(15)[:20]


def ruby_array_inspect(items: list[str]) -> str:
    return "[" + ", ".join(f'"{item}"' for item in items) + "]"


def latest_expiry(max_lifetime_days: int | None, today: date) -> date:
    """The last day a new token may live to: the instance's max_personal_access_token_lifetime,
    within GitLab's own limit (and the default expiry when the instance requires one)."""
    return today + timedelta(days=min(MAX_LIFETIME_DAYS, max_lifetime_days or MAX_LIFETIME_DAYS))


async def insert_new_token(
    conn: Conn, user_id: int, *, name: str, scopes: list[str], expires_at: date | None, prefix: str
) -> tuple[users_db.PersonalAccessTokenRow, str]:
    """A new token's row and its plaintext, shown once: only the digest is stored."""
    plaintext = new_token(prefix)
    created = await users_db.insert_personal_access_token(
        conn, user_id=user_id, name=name, digest=token_digest(plaintext), scopes=scopes, expires_at=expires_at
    )
    return created, plaintext


def validate_pat_request(
    name: object,
    scopes: object,
    expires_at: object,
    *,
    require_expiry: bool,
    max_lifetime_days: int | None,
    today: date,
) -> tuple[str, list[str], date | None]:
    """The checks of POST /internal/personal_access_token after the actor, in GitLab's order."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidTokenRequest("No token name specified")
    if isinstance(scopes, str):
        scopes = [scopes] if scopes else []
    if not isinstance(scopes, list) or not scopes:
        raise InvalidTokenRequest("No token scopes specified")
    scope_list = [str(scope) for scope in scopes]
    for scope in scope_list:
        if scope not in VALID_PAT_SCOPES:
            raise InvalidTokenRequest(
                f"Invalid scope: '{scope}'. Valid scopes are: {ruby_array_inspect(VALID_PAT_SCOPES)}"
            )
    expiry: date | None = None
    if expires_at not in (None, ""):
        expiry = parse_ruby_date(str(expires_at))
        if expiry is None:
            raise InvalidTokenRequest(f"Invalid token expiry date: '{expires_at}'")
    latest = latest_expiry(max_lifetime_days, today)
    if expiry is None and require_expiry:
        expiry = latest
    if expiry is not None and expiry > latest:
        raise InvalidTokenRequest(f"Failed to create token: Expires at must be before {latest.isoformat()}")
    return name, scope_list, expiry


# PersonalAccessToken validates its name's length (255)
MAX_TOKEN_NAME = 255


@dataclass(frozen=True)
class IssuedToken:
    token: str
    scopes: list[str]
    expires_at: date | None


async def issue_personal_access_token(
    conn: Conn, params: dict[str, Any], app_settings: AppSettings, today: date
) -> IssuedToken:
    """POST /internal/personal_access_token: a PAT for the SSH user (internal/base.rb)."""
    key, problem = await command_key(conn, params.get("key_id"), params.get("user_id"))
    # Unlike recovery codes, GitLab checks for a deploy key before the user checks here.
    if key is not None and key.is_deploy_key:
        raise CommandRefused("Deploy keys cannot be used to create personal access tokens")
    if problem is not None or key is None or key.user_id is None:
        raise CommandRefused(problem)
    name, scopes, expires_at = validate_pat_request(
        params.get("name"),
        params.get("scopes"),
        params.get("expires_at"),
        require_expiry=app_settings.require_personal_access_token_expiry,
        max_lifetime_days=app_settings.max_personal_access_token_lifetime,
        today=today,
    )
    # PersonalAccessTokens::CreateService: the policy first (UserPolicy's ~blocked), then the
    # token's own validations
    if key.state in BLOCKED_STATES:
        raise InvalidTokenRequest("Failed to create token: Not permitted to create")
    if len(name) > MAX_TOKEN_NAME:
        raise InvalidTokenRequest(f"Failed to create token: Name is too long (maximum is {MAX_TOKEN_NAME} characters)")
    _, token = await insert_new_token(
        conn, key.user_id, name=name, scopes=scopes, expires_at=expires_at, prefix=app_settings.personal_access_token_prefix
    )
    return IssuedToken(token, scopes, expires_at)
