"""`gitlab-internal-api seed-demo`: a user, an SSH key and a public project for the README's examples."""

from __future__ import annotations

import base64
import hashlib

import asyncpg

from service.db import keys as keys_db
from service.db import projects as projects_db
from service.domain.ssh_keys import parse_public_key

# A syntactically valid ed25519 public key whose private half nobody has.
_DEMO_BLOB = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + hashlib.sha256(b"gitlab-internal-api demo").digest()
DEMO_KEY = "ssh-ed25519 " + base64.b64encode(_DEMO_BLOB).decode() + " root@demo"


async def seed(database_url: str) -> str:
    conn = await asyncpg.connect(database_url, statement_cache_size=0)  # may be PgBouncer: no named statements
    try:
        async with conn.transaction():
            existing = await conn.fetchval("SELECT id FROM users WHERE username = 'root'")
            if existing is None:
                user_id = await conn.fetchval(
                    "INSERT INTO users (username, email, name, admin) VALUES ('root', 'root@example.com',"
                    " 'Administrator', true) RETURNING id"
                )
                namespace_id = await conn.fetchval(
                    "INSERT INTO namespaces (name, path, type, owner_id) VALUES ('root', 'root', 'User', $1)"
                    " RETURNING id",
                    user_id,
                )
                await conn.execute("UPDATE namespaces SET traversal_ids = ARRAY[id] WHERE id = $1", namespace_id)
                await projects_db.insert_route(conn, "Namespace", namespace_id, "root", "Administrator")
                group_id = await conn.fetchval(
                    "INSERT INTO namespaces (name, path, type) VALUES ('demo', 'demo', 'Group') RETURNING id"
                )
                await conn.execute("UPDATE namespaces SET traversal_ids = ARRAY[id] WHERE id = $1", group_id)
                await projects_db.insert_route(conn, "Namespace", group_id, "demo", "demo")
                await conn.execute(
                    "INSERT INTO members (user_id, source_type, source_id, access_level)"
                    " VALUES ($1, 'Namespace', $2, 50)",
                    user_id,
                    group_id,
                )
                await projects_db.insert_project(
                    conn,
                    name="hello",
                    path="hello",
                    namespace_id=group_id,
                    namespace_full_path="demo",
                    creator_id=user_id,
                    visibility_level=20,
                    default_branch="main",
                )
                parsed = parse_public_key(DEMO_KEY)
                await keys_db.insert_key(
                    conn,
                    user_id=user_id,
                    deploy_key=False,
                    key=parsed.text,
                    title="demo key",
                    key_type=parsed.key_type,
                    bits=parsed.bits,
                    fingerprint_md5=parsed.fingerprint_md5,
                    fingerprint_sha256=parsed.fingerprint_sha256,
                )
        key_id = await conn.fetchval("SELECT min(id) FROM keys")
    finally:
        await conn.close()
    blob = DEMO_KEY.split()[1]
    return f"demo data ready: user root, key_id {key_id}, project demo/hello\nkey blob for authorized_keys: {blob}"
