"""`gitlab-internal-api create-admin USERNAME`: the first administrator and a token to start with."""

from __future__ import annotations

import logging
from datetime import date

import asyncpg

from service.db import application_settings as settings_db
from service.db import users as users_db
from service.domain.admin import tokens as tokens_domain
from service.domain.admin import validation
from service.domain.admin.users import NewUser, create_user
from service.domain.app_settings import AppSettings

log = logging.getLogger("gitlab_internal_api.bootstrap")

TOKEN_NAME = "create-admin"


class NotAnAdmin(Exception):
    """The username belongs to a user who is not an administrator; create-admin will not promote them."""


async def create_admin(database_url: str, username: str, email: str | None, admin_mode: bool = False) -> str:
    """Creates the administrator unless it exists; returns a new api-scoped personal access token."""
    conn = await asyncpg.connect(database_url, statement_cache_size=0)  # may be PgBouncer: no named statements
    try:
        app = AppSettings.from_record(await settings_db.get_application_settings(conn))
        async with conn.transaction():
            existing = await users_db.find_user_by_username(conn, username)
            if existing is None:
                user_id = await create_user(
                    conn,
                    NewUser(
                        username=username,
                        email=email or f"{username}@example.com",
                        name=username,
                        # Nobody signs in with a password here; the token is the credential.
                        password=validation.random_password(),
                        admin=True,
                    ),
                )
                log.info("created administrator %s (id %d)", username, user_id)
            elif not existing.admin:
                raise NotAnAdmin(username)
            else:
                user_id = existing.id
                log.info("administrator %s (id %d) exists", username, user_id)
            found = await users_db.find_user(conn, user_id)
            assert found is not None
            expires_at = tokens_domain.expiry_for(None, app, date.today())
            token, plaintext = await tokens_domain.create_token(
                conn,
                user_id,
                name=TOKEN_NAME,
                # admin_mode: needed for the admin API once the instance's admin mode is on
                scopes=["api", "admin_mode"] if admin_mode else ["api"],
                expires_at=expires_at,
                prefix=app.personal_access_token_prefix,
            )
            log.info("personal access token %d for %s, expires %s", token.id, username, expires_at or "never")
    finally:
        await conn.close()
    return plaintext
