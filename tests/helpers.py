"""Credentials as the real clients build them."""

from __future__ import annotations

import base64
import time
from typing import Any

import jwt

from tests.conftest import KAS_SECRET, SHELL_SECRET

def shell_jwt(**claims: Any) -> str:
    now = int(time.time())
    payload = {"iss": "gitlab-shell", "iat": now, "exp": now + 60, **claims}
    payload = {k: v for k, v in payload.items() if v is not None}
    return jwt.encode(payload, SHELL_SECRET, algorithm="HS256")


def shell_headers(**claims: Any) -> dict[str, str]:
    """What gitlab-shell and Gitaly send: the JWT, and JSON content type even on GET."""
    return {"Gitlab-Shell-Api-Request": shell_jwt(**claims), "Content-Type": "application/json"}


def kas_jwt(key: bytes = KAS_SECRET, **claims: Any) -> str:
    now = int(time.time())
    payload = {"iss": "gitlab-kas", "aud": ["gitlab"], "iat": now, "nbf": now - 5, "exp": now + 30, **claims}
    payload = {k: v for k, v in payload.items() if v is not None}
    return jwt.encode(payload, key, algorithm="HS256")


def kas_headers(**claims: Any) -> dict[str, str]:
    return {"Gitlab-Kas-Api-Request": kas_jwt(**claims), "Content-Type": "application/json"}


def legacy_shell_headers(secret: bytes = SHELL_SECRET) -> dict[str, str]:
    """GitLab Shell < 14.35: the base64 shared secret."""
    return {"Gitlab-Shared-Secret": base64.b64encode(secret).decode(), "Content-Type": "application/json"}
