"""Secrets the service must send on later (webhook tokens), kept encrypted at rest.

A hook's `token` goes out in `X-Gitlab-Token` on every delivery, and its `url` may carry basic-auth
credentials, so neither can be stored as a digest like access tokens; GitLab keeps both encrypted
with a key derived from db_key_base (attr_encrypted), and so does this: AES-256-GCM, the key derived with HKDF-SHA256 from db_key_base, a fresh nonce per
value. A database dump alone does not reveal the tokens.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_PREFIX = "v1:"
_NONCE_BYTES = 12


class UnreadableToken(Exception):
    """A stored value that this key did not seal (another db_key_base, or altered)."""


# What an operator reads when it happens: the usual cause is a db_key_base other than the one the
# values were sealed with (a new secret file, another node's).
UNREADABLE_SECRET = (
    "a stored web hook URL or token cannot be decrypted: is GITLAB_DB_KEY_BASE_FILE the key it was stored with?"
)


class TokenBox:
    def __init__(self, db_key_base: bytes, purpose: bytes = b"gitlab-internal-api web_hooks.token") -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(db_key_base)
        self._aead = AESGCM(key)

    def seal(self, plain: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        return _PREFIX + base64.b64encode(nonce + self._aead.encrypt(nonce, plain.encode(), None)).decode()

    def open_url(self, stored: str) -> str:
        """A hook's URL: sealed since 2026-12-07; one stored before is read as it was written (a
        URL's scheme is http or https, never "v1")."""
        return self.open(stored) if stored.startswith(_PREFIX) else stored

    def open(self, sealed: str) -> str:
        if not sealed.startswith(_PREFIX):
            raise UnreadableToken("not a sealed value")
        try:
            raw = base64.b64decode(sealed[len(_PREFIX) :], validate=True)
            return self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], None).decode()
        except (ValueError, InvalidTag) as exc:
            raise UnreadableToken(type(exc).__name__) from None
