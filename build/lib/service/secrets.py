"""The secret files shared with GitLab Shell, Gitaly and kas: read them, or create them as GitLab does."""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


class SecretFileError(RuntimeError):
    pass


def _read_or_create(path: Path, make: Callable[[], str]) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: when several workers start at once, exactly one writes the file.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text()
    with os.fdopen(fd, "w") as handle:
        handle.write(make())
    return path.read_text()


def load_shell_secret(path: Path) -> bytes:
    """GitLab writes SecureRandom.hex(16); clients trim surrounding white space (Rails chomps)."""
    secret = _read_or_create(path, lambda: secrets.token_hex(16)).strip()
    if not secret:
        raise SecretFileError(f"{path} is empty")
    return secret.encode()


def load_kas_secret(path: Path) -> bytes:
    """Base64 of 32 random bytes; the JWT key is the decoded bytes, and anything else is refused."""
    text = _read_or_create(path, lambda: base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SecretFileError(f"{path} is not valid base64: {exc}") from None
    if len(key) != 32:
        raise SecretFileError(f"{path} must hold base64 of exactly 32 bytes, it decodes to {len(key)}")
    return key


def load_db_key_base(path: Path) -> bytes:
    """Key material for LFS tokens, like GitLab's db_key_base (128 hex characters)."""
    return _read_or_create(path, lambda: secrets.token_hex(64) + "\n").strip().encode()


@dataclass(frozen=True)
class Secrets:
    shell: bytes
    kas: bytes
    db_key_base: bytes


def load_secrets(shell_path: Path, kas_path: Path, db_key_base_path: Path) -> Secrets:
    return Secrets(load_shell_secret(shell_path), load_kas_secret(kas_path), load_db_key_base(db_key_base_path))
