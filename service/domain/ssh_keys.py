"""SSH public keys: parsing, fingerprints and the restrictions GitLab applies to them."""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass
from typing import Any

from service.db.ssh_keys import AuthorizedKey
from service.domain.iso_time import iso

# key type prefix -> the technology name GitLab's restriction settings and messages use
TECHNOLOGIES = {
    "ssh-rsa": "rsa",
    "ssh-dss": "dsa",
    "ecdsa-sha2-nistp256": "ecdsa",
    "ecdsa-sha2-nistp384": "ecdsa",
    "ecdsa-sha2-nistp521": "ecdsa",
    "ssh-ed25519": "ed25519",
    "sk-ecdsa-sha2-nistp256@openssh.com": "ecdsa_sk",
    "sk-ssh-ed25519@openssh.com": "ed25519_sk",
}
ALL_TECHNOLOGIES = ("rsa", "dsa", "ecdsa", "ed25519", "ecdsa_sk", "ed25519_sk")


class InvalidKey(ValueError):
    pass


@dataclass(frozen=True)
class ParsedKey:
    key_type: str
    blob: bytes
    comment: str
    bits: int

    @property
    def technology(self) -> str:
        return TECHNOLOGIES[self.key_type]

    @property
    def fingerprint_md5(self) -> str:
        digest = hashlib.md5(self.blob, usedforsecurity=False).hexdigest()
        return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))

    @property
    def fingerprint_sha256(self) -> str:
        return fingerprint_sha256(self.blob)

    @property
    def text(self) -> str:
        encoded = base64.b64encode(self.blob).decode()
        return f"{self.key_type} {encoded} {self.comment}".rstrip()


def fingerprint_sha256(blob: bytes) -> str:
    """GitLab's stored form: base64 of the SHA-256 digest, without '=' padding or 'SHA256:'."""
    return base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def lenient_b64decode(text: str) -> bytes:
    """Decode padded or unpadded base64 (gitlab-sshd sends RawStdEncoding), like Ruby's decode64."""
    cleaned = "".join(text.split())
    cleaned += "=" * (-len(cleaned) % 4)
    try:
        return base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidKey("not base64") from None


def _read_string(blob: bytes, offset: int) -> tuple[bytes, int]:
    if offset + 4 > len(blob):
        raise InvalidKey("truncated")
    (length,) = struct.unpack(">I", blob[offset : offset + 4])
    end = offset + 4 + length
    if end > len(blob):
        raise InvalidKey("truncated")
    return blob[offset + 4 : end], end


def _bits(key_type: str, blob: bytes) -> int:
    name, offset = _read_string(blob, 0)
    if name.decode(errors="replace") != key_type:
        raise InvalidKey("type mismatch")
    technology = TECHNOLOGIES[key_type]
    if technology == "rsa":
        _exponent, offset = _read_string(blob, offset)
        modulus, _ = _read_string(blob, offset)
        return int.from_bytes(modulus, "big").bit_length()
    if technology == "dsa":
        p, _ = _read_string(blob, offset)
        return int.from_bytes(p, "big").bit_length()
    if technology in ("ecdsa", "ecdsa_sk"):
        return {"nistp256": 256, "nistp384": 384, "nistp521": 521}[key_type.split("-")[-1].split("@")[0]]
    return 256  # ed25519 and ed25519_sk


def parse_public_key(text: str) -> ParsedKey:
    """Parse an OpenSSH public key line ("type base64 [comment]"); raise InvalidKey if it is not one."""
    parts = text.strip().split(None, 2)
    if len(parts) < 2 or parts[0] not in TECHNOLOGIES:
        raise InvalidKey("is invalid")
    blob = lenient_b64decode(parts[1])
    try:
        bits = _bits(parts[0], blob)
    except (KeyError, struct.error, InvalidKey):
        raise InvalidKey("is invalid") from None
    return ParsedKey(parts[0], blob, parts[2] if len(parts) > 2 else "", bits)


def restriction_error(technology: str, bits: int, restrictions: dict[str, int]) -> str | None:
    """GitLab's key validation message (after "Your SSH key "), or None when the key is allowed.

    restrictions: technology -> 0 (any size), -1 (forbidden) or the minimum number of bits.
    """
    minimum = restrictions.get(technology, 0)
    if minimum < 0:
        allowed = [t.upper() for t in ALL_TECHNOLOGIES if restrictions.get(t, 0) >= 0]
        if len(allowed) > 1:
            listed = ", ".join(allowed[:-1]) + ", or " + allowed[-1]
        else:
            listed = "".join(allowed)
        return f"type is forbidden. Must be {listed}"
    if minimum > 0 and bits < minimum:
        return f"must be at least {minimum} bits"
    return None


def authorized_key_answer(found: AuthorizedKey, host: str) -> dict[str, Any]:
    """GET /internal/authorized_keys' answer: the key, its comment the owner's name and the host."""
    key_type, key_blob = found.key.split()[:2]
    return {
        "id": found.id,
        "title": found.title,
        "created_at": iso(found.created_at),
        "expires_at": iso(found.expires_at),
        "key": f"{key_type} {key_blob} {found.user_name or 'Unknown'} ({host})",
        "usage_type": found.usage_type,
    }

