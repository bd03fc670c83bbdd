"""Recovery codes (devise-two-factor backupable): 10 codes of 16 hex characters, stored as digests."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
from typing import Any

from service.db import users as users_db
from service.db.rows import Conn
from service.domain.actors import command_key, command_user_key
from service.domain.app_settings import AppSettings
from service.domain.errors import CommandRefused

NUMBER_OF_CODES = 10
# The codes carry 64 random bits each, so a modest work factor is enough against offline guessing.
PBKDF2_ITERATIONS = 20_000


def generate_codes() -> list[str]:
    return [secrets.token_hex(8) for _ in range(NUMBER_OF_CODES)]


def digest_code(code: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    derived = hashlib.pbkdf2_hmac("sha512", code.encode(), salt, PBKDF2_ITERATIONS)
    encode = base64.b64encode
    return f"$pbkdf2-sha512${PBKDF2_ITERATIONS}${encode(salt).decode()}${encode(derived).decode()}"


def code_matches(code: str, stored: str) -> bool:
    _, scheme, iterations, salt, derived = stored.split("$")
    if scheme != "pbkdf2-sha512":
        return False
    candidate = hashlib.pbkdf2_hmac("sha512", code.encode(), base64.b64decode(salt), int(iterations))
    return hmac.compare_digest(candidate, base64.b64decode(derived))


async def digest_codes(codes: list[str]) -> list[str]:
    # Key derivation is CPU work: keep it off the event loop.
    return await asyncio.to_thread(lambda: [digest_code(code) for code in codes])


async def regenerate_recovery_codes(conn: Conn, key_id: Any, user_id: Any) -> list[str]:
    """POST /internal/two_factor_recovery_codes: new codes replace the old ones."""
    key = await command_user_key(conn, key_id, user_id)
    if key.is_deploy_key:
        raise CommandRefused("Deploy keys cannot be used to retrieve recovery codes")
    if not key.otp_required_for_login or key.user_id is None:
        raise CommandRefused("Two-factor authentication is not enabled for this user")
    codes = generate_codes()
    await users_db.replace_otp_backup_codes(conn, key.user_id, await digest_codes(codes))
    return codes


def cli_two_factor_enabled(app_settings: AppSettings) -> None:
    """POST /internal/two_factor_config answers a bare {"success": false} while the feature is off."""
    if not app_settings.two_factor_for_cli:
        raise CommandRefused(None)


async def two_factor_required(conn: Conn, key_id: Any, user_id: Any) -> bool:
    """POST /internal/two_factor_config: does the key's user need 2FA on the command line?"""
    key, problem = await command_key(conn, key_id, user_id)
    if problem is not None or key is None:
        raise CommandRefused(problem)
    return False if key.is_deploy_key else bool(key.otp_required_for_login)
