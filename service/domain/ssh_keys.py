"""SSH public keys: parsing, fingerprints and the restrictions GitLab applies to them."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import warnings
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_ssh_public_key

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
# Gitlab::SSHPublicKey.supported_sizes: what a key restriction may require, besides forbidden (-1)
# and allowed (0)
SUPPORTED_SIZES = {
    "rsa": (1024, 2048, 3072, 4096),
    "dsa": (1024, 2048, 3072),
    "ecdsa": (256, 384, 521),
    "ed25519": (256,),
    "ecdsa_sk": (256,),
    "ed25519_sk": (256,),
}


class InvalidKey(ValueError):
    pass


# How many pieces of base64 a key may be pasted in: as many as a key of the API's 5,000 characters
# can hold (sanitize tries each, as GitLab's does)
MAX_BASE64_PARTS = 2500
# Ruby's String#split without a pattern splits on these (str.split() would split on any Unicode space)
_RUBY_WHITESPACE = re.compile(r"[ \t\n\v\f\r]+")


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


def _bits(key_type: str, blob: bytes) -> int:
    """The key's size, from cryptography's parse of the whole blob (its type, every field, no bytes
    left over, the point on its curve); InvalidKey when it is no key of that type."""
    try:
        with warnings.catch_warnings():
            # DSA: deprecated by cryptography, still accepted by GitLab (dsa_key_restriction decides)
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            key = load_ssh_public_key(key_type.encode() + b" " + base64.b64encode(blob))
    except (ValueError, UnsupportedAlgorithm):
        raise InvalidKey("is invalid") from None
    if isinstance(key, (ed25519.Ed25519PublicKey)):
        return 256
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key.curve.key_size
    if isinstance(key, (rsa.RSAPublicKey, dsa.DSAPublicKey)):
        return key.key_size
    raise InvalidKey("is invalid")


def parse_public_key(text: str) -> ParsedKey:
    """An OpenSSH public key ("type base64 [comment]") as Gitlab::SSHPublicKey.sanitize keeps it:
    the base64 may be split by white space (a pasted key wrapped over lines), and of the comment only
    its first word is kept, so no stored key holds a line break (a second key line after the first
    would reach anything that writes authorized_keys files from the API). InvalidKey if none."""
    parts = _RUBY_WHITESPACE.split(text.strip(" \t\n\v\f\r\0"))
    if len(parts) < 2 or parts[0] not in TECHNOLOGIES:
        raise InvalidKey("is invalid")
    for end in range(2, min(len(parts), MAX_BASE64_PARTS + 1) + 1):
        try:
            # strict, as SSHData's Base64.strict_decode64: padding split off onto its own piece is
            # joined to the rest rather than taken for the comment
            blob = base64.b64decode("".join(parts[1:end]), validate=True)
            bits = _bits(parts[0], blob)
        except (InvalidKey, binascii.Error):
            continue
        return ParsedKey(parts[0], blob, parts[end] if end < len(parts) else "", bits)
    raise InvalidKey("is invalid")


def exclusive_sentence(words: list[str]) -> str:
    """Gitlab::Sentence.to_exclusive_sentence: "a", "a or b", "a, b, or c"."""
    if len(words) <= 2:
        return " or ".join(words)
    return ", ".join(words[:-1]) + ", or " + words[-1]


def restriction_error(technology: str, bits: int, restrictions: dict[str, int]) -> str | None:
    """GitLab's key validation message (after "Your SSH key "), or None when the key is allowed.

    restrictions: technology -> 0 (any size), -1 (forbidden) or the minimum number of bits.
    """
    minimum = restrictions.get(technology, 0)
    if minimum < 0:
        allowed = [t.upper() for t in ALL_TECHNOLOGIES if restrictions.get(t, 0) >= 0]
        return f"type is forbidden. Must be {exclusive_sentence(allowed)}"
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

