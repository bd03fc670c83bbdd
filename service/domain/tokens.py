"""Personal access tokens: digests, scopes and GitLab's expiry rules (reference section 9.1)."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from service.db import users as users_db
from service.db.rows import Conn
from service.domain.actors import command_key
from service.domain.app_settings import AppSettings
from service.domain.errors import CommandRefused

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


_MONTHS = {
    m: i
    for i, m in enumerate(["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], start=1)
}


def parse_date(raw: str) -> date:
    """A lenient date parse in the spirit of Ruby's Date.parse: ISO dates, '24 Jul 2020', 'Jul 24 2020'."""
    text = raw.strip()
    for pattern in ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%d-%m-%Y", "%d/%m/%Y"):
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            pass
    match = re.fullmatch(r"(\d{4}-\d{2}-\d{2})[T ].*", text)
    if match:
        return datetime.strptime(match.group(1), "%Y-%m-%d").date()
    words = re.findall(r"[A-Za-z]+|\d+", text)
    month = next((_MONTHS[w[:3].lower()] for w in words if w[:3].lower() in _MONTHS), None)
    numbers = [int(w) for w in words if w.isdigit()]
    if month is not None and len(numbers) == 2:
        day, year = (numbers[0], numbers[1]) if numbers[0] <= 31 and numbers[1] > 31 else (numbers[1], numbers[0])
        try:
            return date(year, month, day)
        except ValueError:
            pass
    raise ValueError(raw)


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
        try:
            expiry = parse_date(str(expires_at))
        except ValueError:
            raise InvalidTokenRequest(f"Invalid token expiry date: '{expires_at}'") from None
    limit = min(MAX_LIFETIME_DAYS, max_lifetime_days or MAX_LIFETIME_DAYS)
    latest = today + timedelta(days=limit)
    if expiry is None and require_expiry:
        expiry = latest
    if expiry is not None and expiry > latest:
        raise InvalidTokenRequest(f"Failed to create token: Expires at must be before {latest.isoformat()}")
    return name, scope_list, expiry


# User states that BasePolicy's `blocked` condition covers (they also refuse git access)
BLOCKED_STATES = frozenset({"blocked", "ldap_blocked", "blocked_pending_approval"})
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
    token = new_token(app_settings.personal_access_token_prefix)
    await users_db.insert_personal_access_token(
        conn, user_id=key.user_id, name=name, digest=token_digest(token), scopes=scopes, expires_at=expires_at
    )
    return IssuedToken(token, scopes, expires_at)
