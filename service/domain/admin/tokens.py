"""Personal access tokens through the admin API (PersonalAccessTokens::CreateService,
API::PersonalAccessTokens)."""

from __future__ import annotations

from datetime import date
from typing import Any

from service.db import users as users_db
from service.db.rows import Conn, Paged
from service.db.users import PersonalAccessTokenRow as PersonalAccessTokenRow  # for the routes
from service.domain.admin.pagination import Page
from service.domain.admin.users import find_user
from service.domain.errors import Invalid, InvalidParameter, Missing, Refused
from service.domain.app_settings import AppSettings
from service.domain.ruby_date import parse_ruby_date
from service.domain.tokens import VALID_PAT_SCOPES, insert_new_token, latest_expiry

# The users API also lets an administrator grant what the internal endpoint refuses.
ADMIN_API_SCOPES = frozenset({*VALID_PAT_SCOPES, "sudo", "admin_mode", "read_service_ping"})


def check_scopes(scopes: list[str]) -> list[str]:
    """Grape's `values:` on scopes: every one must be a scope the users API knows."""
    if not scopes or any(scope not in ADMIN_API_SCOPES for scope in scopes):
        raise InvalidParameter("scopes does not have a valid value")
    return scopes


def expiry_for(raw: str | None, app: AppSettings, today: date) -> date | None:
    """Date.parse leniency; the instance limit; the default when the instance requires an expiry."""
    latest = latest_expiry(app.max_personal_access_token_lifetime, today)
    if raw in (None, ""):
        return latest if app.require_personal_access_token_expiry else None
    expiry = parse_ruby_date(str(raw))
    if expiry is None:
        raise Invalid({"expires_at": ["is invalid"]})
    if expiry > latest:
        # the service's error, rendered with render_api_error!(message, 400)
        raise Refused(f"Expires at must be before {latest.isoformat()}")
    if expiry <= today:
        raise Refused("Expires at cannot be a date in the past")
    return expiry


async def create_token(
    conn: Conn, user_id: int, *, name: str, scopes: list[str], expires_at: date | None, prefix: str
) -> tuple[PersonalAccessTokenRow, str]:
    """The plaintext is returned once; only its digest is stored."""
    if not name.strip():
        raise Refused("Name can't be blank")  # the model's full message, as the expiry's errors
    return await insert_new_token(conn, user_id, name=name, scopes=scopes, expires_at=expires_at, prefix=prefix)


async def create_user_token(
    conn: Conn, user_id: int, values: dict[str, Any], app: AppSettings, today: date
) -> tuple[PersonalAccessTokenRow, str]:
    """POST /users/:id/personal_access_tokens: Grape's scope check, the user (404), then the
    expiry's and the token's own validations (PersonalAccessTokens::CreateService)."""
    scopes = check_scopes(values["scopes"])
    await find_user(conn, user_id)
    expires_at = expiry_for(values.get("expires_at"), app, today)
    return await create_token(
        conn, user_id, name=values["name"], scopes=scopes, expires_at=expires_at, prefix=app.personal_access_token_prefix
    )


async def own_token(conn: Conn, token_id: int) -> PersonalAccessTokenRow:
    """The token the request was authenticated with (the middleware kept its id)."""
    found = await users_db.find_personal_access_token(conn, token_id)
    assert found is not None
    return found


async def visible_token(
    conn: Conn, token_id: int, *, caller_id: int | None, caller_is_admin: bool
) -> PersonalAccessTokenRow:
    """Administrators see every token; a user only their own (others are "404 ... Not Found")."""
    found = await users_db.find_personal_access_token(conn, token_id)
    if found is None or (not caller_is_admin and found.user_id != caller_id):
        raise Missing("Personal Access Token")
    return found


async def list_tokens(
    conn: Conn, page: Page, *, user_id: int | None, revoked: bool | None, state: str | None
) -> Paged[PersonalAccessTokenRow]:
    return await users_db.list_personal_access_tokens(
        conn, user_id=user_id, revoked=revoked, state=state, limit=page.limit, offset=page.offset
    )


async def revoke(conn: Conn, token: PersonalAccessTokenRow) -> None:
    await users_db.revoke_personal_access_token(conn, token.id)
