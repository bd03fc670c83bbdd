"""Minimal valid rows, FactoryBot style: `await make_user(db, username="x")`."""

from __future__ import annotations

import base64
import hashlib
import itertools
import secrets
from datetime import date, datetime
from typing import Any

import asyncpg

from service.db import projects as projects_db
from service.db import routes as routes_db
from service.db import ssh_keys as ssh_keys_db
from service.domain.ssh_keys import ParsedKey, parse_public_key
from service.domain.tokens import token_digest

_sequence = itertools.count(1)


def _ssh_string(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def ed25519_public_key(comment: str = "test@example.com") -> str:
    blob = _ssh_string(b"ssh-ed25519") + _ssh_string(secrets.token_bytes(32))
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} {comment}"


def rsa_public_key(bits: int = 2048, comment: str = "test@example.com") -> str:
    modulus = (1 << (bits - 1)) | secrets.randbits(bits - 1) | 1
    blob = _ssh_string(b"ssh-rsa") + _ssh_string(b"\x01\x00\x01") + _ssh_string(b"\x00" + modulus.to_bytes(bits // 8, "big"))
    return f"ssh-rsa {base64.b64encode(blob).decode()} {comment}"


async def make_user(db: asyncpg.Connection, **overrides: Any) -> asyncpg.Record:
    n = next(_sequence)
    values = {
        "username": f"user{n}",
        "email": f"user{n}@example.com",
        "name": f"User {n}",
        "encrypted_password": hashlib.sha256(f"password{n}".encode()).hexdigest(),
        **overrides,
    }
    columns = ", ".join(values)
    placeholders = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    user = await db.fetchrow(f"INSERT INTO users ({columns}) VALUES ({placeholders}) RETURNING *", *values.values())
    namespace_id = await db.fetchval(
        "INSERT INTO namespaces (name, path, type, owner_id) VALUES ($1, $1, 'User', $2) RETURNING id",
        user["username"],
        user["id"],
    )
    await db.execute("UPDATE namespaces SET traversal_ids = ARRAY[id] WHERE id = $1", namespace_id)
    await routes_db.insert_route(db, "Namespace", namespace_id, user["username"], user["name"])
    return user


async def user_namespace_id(db: asyncpg.Connection, user_id: int) -> int:
    return await db.fetchval("SELECT id FROM namespaces WHERE owner_id = $1 AND type = 'User'", user_id)


async def make_group(db: asyncpg.Connection, path: str | None = None, parent: asyncpg.Record | None = None) -> asyncpg.Record:
    path = path or f"group{next(_sequence)}"
    group = await db.fetchrow(
        "INSERT INTO namespaces (name, path, type, parent_id) VALUES ($1, $1, 'Group', $2) RETURNING *",
        path,
        parent["id"] if parent else None,
    )
    traversal = [*(parent["traversal_ids"] if parent else []), group["id"]]
    group = await db.fetchrow("UPDATE namespaces SET traversal_ids = $2 WHERE id = $1 RETURNING *", group["id"], traversal)
    parent_path = await db.fetchval("SELECT path FROM routes WHERE source_type = 'Namespace' AND source_id = $1", parent["id"]) if parent else None
    await routes_db.insert_route(db, "Namespace", group["id"], f"{parent_path}/{path}" if parent_path else path, path)
    return group


async def make_project(
    db: asyncpg.Connection,
    namespace: asyncpg.Record | None = None,
    *,
    owner: asyncpg.Record | None = None,
    path: str | None = None,
    visibility_level: int = 0,
    default_branch: str | None = "main",
    **overrides: Any,
) -> asyncpg.Record:
    """A project in `namespace` (a group row), or in `owner`'s personal namespace."""
    path = path or f"project{next(_sequence)}"
    if namespace is None:
        assert owner is not None, "give a namespace or an owner"
        namespace_id = await user_namespace_id(db, owner["id"])
    else:
        namespace_id = namespace["id"]
    namespace_path = await db.fetchval(
        "SELECT path FROM routes WHERE source_type = 'Namespace' AND source_id = $1", namespace_id
    )
    async with db.transaction():
        project_id = await projects_db.insert_project(
            db,
            name=path,
            path=path,
            namespace_id=namespace_id,
            namespace_full_path=namespace_path,
            creator_id=owner["id"] if owner else None,
            visibility_level=visibility_level,
            default_branch=default_branch,
        )
    for column, value in overrides.items():
        await db.execute(f"UPDATE projects SET {column} = $2 WHERE id = $1", project_id, value)
    return await db.fetchrow(
        "SELECT p.*, r.path AS full_path FROM projects p JOIN routes r ON r.source_type = 'Project'"
        " AND r.source_id = p.id WHERE p.id = $1",
        project_id,
    )


async def add_member(db: asyncpg.Connection, user: asyncpg.Record, source: asyncpg.Record, access_level: int, *, kind: str | None = None, **extra: Any) -> None:
    """`source` is a project row (has namespace_id) or a namespace row."""
    source_type = kind or ("Project" if "namespace_id" in source.keys() else "Namespace")
    columns = ["user_id", "source_type", "source_id", "access_level", *extra]
    values = [user["id"], source_type, source["id"], access_level, *extra.values()]
    placeholders = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    await db.execute(f"INSERT INTO members ({', '.join(columns)}) VALUES ({placeholders})", *values)


async def make_key(
    db: asyncpg.Connection,
    user: asyncpg.Record | None,
    *,
    text: str | None = None,
    deploy_key: bool = False,
    usage_type: str = "auth_and_signing",
    expires_at: datetime | None = None,
    title: str = "my key",
) -> tuple[asyncpg.Record, ParsedKey]:
    parsed = parse_public_key(text or ed25519_public_key())
    row = await ssh_keys_db.insert_key(
        db,
        user_id=user["id"] if user else None,
        deploy_key=deploy_key,
        key=parsed.text,
        title=title,
        key_type=parsed.key_type,
        bits=parsed.bits,
        fingerprint_md5=parsed.fingerprint_md5,
        fingerprint_sha256=parsed.fingerprint_sha256,
        usage_type=usage_type,
        expires_at=expires_at,
    )
    record = await db.fetchrow("SELECT * FROM keys WHERE id = $1", row.id)
    return record, parsed


async def enable_deploy_key(db: asyncpg.Connection, key: asyncpg.Record, project: asyncpg.Record, can_push: bool = False) -> None:
    await db.execute(
        "INSERT INTO deploy_keys_projects (deploy_key_id, project_id, can_push) VALUES ($1, $2, $3)",
        key["id"],
        project["id"],
        can_push,
    )


async def protect_branch(
    db: asyncpg.Connection,
    project: asyncpg.Record,
    name: str,
    *,
    push: list[int] | None = None,
    merge: list[int] | None = None,
    allow_force_push: bool = False,
    push_users: list[int] | None = None,
    push_deploy_keys: list[int] | None = None,
) -> int:
    branch_id = await db.fetchval(
        "INSERT INTO protected_branches (project_id, name, allow_force_push) VALUES ($1, $2, $3) RETURNING id",
        project["id"],
        name,
        allow_force_push,
    )
    rows = [("push", level, None, None) for level in (push if push is not None else [40])]
    rows += [("merge", level, None, None) for level in (merge if merge is not None else [40])]
    rows += [("push", None, user_id, None) for user_id in push_users or []]
    rows += [("push", None, None, key_id) for key_id in push_deploy_keys or []]
    for kind, level, user_id, key_id in rows:
        await db.execute(
            "INSERT INTO protected_branch_access_levels (protected_branch_id, kind, access_level, user_id, deploy_key_id)"
            " VALUES ($1, $2, $3, $4, $5)",
            branch_id,
            kind,
            level,
            user_id,
            key_id,
        )
    return branch_id


async def protect_tag(db: asyncpg.Connection, project: asyncpg.Record, name: str, *, create: list[int] | None = None) -> int:
    tag_id = await db.fetchval(
        "INSERT INTO protected_tags (project_id, name) VALUES ($1, $2) RETURNING id", project["id"], name
    )
    for level in create if create is not None else [40]:
        await db.execute(
            "INSERT INTO protected_tag_create_access_levels (protected_tag_id, access_level) VALUES ($1, $2)",
            tag_id,
            level,
        )
    return tag_id


async def make_personal_access_token(
    db: asyncpg.Connection,
    user: asyncpg.Record,
    *,
    scopes: list[str] | None = None,
    expires_at: date | None = None,
    revoked: bool = False,
    name: str = "token",
) -> str:
    token = "glpat-" + secrets.token_urlsafe(15)[:20]
    await db.execute(
        "INSERT INTO personal_access_tokens (user_id, name, token_digest, scopes, expires_at, revoked)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        user["id"],
        name,
        token_digest(token),
        scopes or ["api"],
        expires_at,
        revoked,
    )
    return token


async def set_application_settings(db: asyncpg.Connection, **values: Any) -> None:
    for column, value in values.items():
        await db.execute(f"UPDATE application_settings SET {column} = $1 WHERE id = 1", value)
