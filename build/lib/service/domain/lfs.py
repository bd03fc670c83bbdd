"""Gitlab::LfsToken: a stateless HS256 JWT whose key ties it to the actor (reference 9.3)."""

from __future__ import annotations

import time
import uuid

import jwt

DEFAULT_EXPIRE_TIME = 7200  # seconds; 1800 before GitLab 17


def user_secret(user_id: int, encrypted_password: str, db_key_base: bytes) -> bytes:
    """A password change ends every LFS token of the user."""
    return f"{user_id}{encrypted_password[-16:]}".encode() + db_key_base[:16]


def deploy_key_secret(fingerprint_sha256: str, db_key_base: bytes) -> bytes:
    return fingerprint_sha256[:16].encode() + db_key_base[:32]


def lfs_token(actor_name: str, secret: bytes, project_id: int, now: float | None = None) -> str:
    issued = int(now if now is not None else time.time())
    claims = {
        "data": {"actor": actor_name},
        "jti": str(uuid.uuid4()),
        "iat": issued,
        "nbf": issued - 5,
        "exp": issued + DEFAULT_EXPIRE_TIME,
        "container_gid": f"gid://gitlab/Project/{project_id}",
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def deploy_key_actor_name(key_id: int) -> str:
    return f"lfs+deploy-key-{key_id}"
