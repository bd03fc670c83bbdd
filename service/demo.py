"""`gitlab-internal-api seed-demo`: a user, an SSH key and a public project for the README's examples."""

from __future__ import annotations

import base64
import hashlib

import asyncpg

from service.db import members as members_db
from service.db import namespaces as namespaces_db
from service.db import projects as projects_db
from service.db import routes as routes_db
from service.db import ssh_keys as ssh_keys_db
from service.db import users as users_db
from service.domain.ssh_keys import parse_public_key

# A syntactically valid ed25519 public key whose private half nobody has.
_DEMO_BLOB = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + hashlib.sha256(b"gitlab-internal-api demo").digest()
DEMO_KEY = "ssh-ed25519 " + base64.b64encode(_DEMO_BLOB).decode() + " root@demo"


async def seed(database_url: str) -> str:
    parsed = parse_public_key(DEMO_KEY)
    conn = await asyncpg.connect(database_url, statement_cache_size=0)  # may be PgBouncer: no named statements
    try:
        async with conn.transaction():
            if await users_db.find_user_by_username(conn, "root") is None:
                # the columns' defaults, as a plain INSERT of username, email, name and admin gives them
                user_id = await users_db.insert_user(
                    conn,
                    username="root",
                    email="root@example.com",
                    name="Administrator",
                    password_hash="",
                    admin=True,
                    can_create_group=True,
                    external=False,
                    projects_limit=100000,
                    confirmed=True,
                )
                namespace_id = await namespaces_db.insert_namespace(
                    conn, name="root", path="root", kind="User", owner_id=user_id, parent_id=None, visibility_level=20
                )
                await routes_db.insert_route(conn, "Namespace", namespace_id, "root", "Administrator")
                group_id = await namespaces_db.insert_namespace(
                    conn, name="demo", path="demo", kind="Group", owner_id=None, parent_id=None, visibility_level=20
                )
                await routes_db.insert_route(conn, "Namespace", group_id, "demo", "demo")
                await members_db.insert_member(
                    conn, user_id=user_id, source_type="Namespace", source_id=group_id, access_level=50
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
                await ssh_keys_db.insert_key(
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
        key = await ssh_keys_db.find_key_by_fingerprint(conn, sha256=parsed.fingerprint_sha256, md5=None)
    finally:
        await conn.close()
    blob = DEMO_KEY.split()[1]
    key_id = key.id if key is not None else None
    return f"demo data ready: user root, key_id {key_id}, project demo/hello\nkey blob for authorized_keys: {blob}"
