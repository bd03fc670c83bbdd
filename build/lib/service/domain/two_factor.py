"""Recovery codes (devise-two-factor backupable): 10 codes of 16 hex characters, stored as digests."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets

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
