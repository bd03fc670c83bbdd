"""`gitlab-internal-api create-admin`: the bootstrap an operator runs before using the admin API."""

from __future__ import annotations

import asyncio
import os
import sys

from service.config import ROOT
from tests.admin_helpers import call, gitlab_client
from tests.factories import make_user


async def _create_admin(backends, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "DATABASE_URL": backends.database_url, "REDIS_URL": backends.redis_url}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service",
        "create-admin",
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode, out.decode(), err.decode()


async def test_create_admin_prints_only_a_working_token(client, db, backends):
    code, out, err = await _create_admin(backends, "root", "--email", "root@example.org")
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("glpat-")
    token = lines[0]
    assert token not in err  # the logs never show it

    with gitlab_client(client, token) as gl:
        await call(gl.auth)
        me = gl.user
        # the bootstrap token can create the rest
        group = await call(lambda: gl.groups.create({"name": "First", "path": "first"}))
    assert (me.username, me.is_admin, me.email) == ("root", True, "root@example.org")
    assert group.full_path == "first"
    ns = await db.fetchrow("SELECT * FROM namespaces WHERE owner_id = $1", me.id)
    assert (ns["path"], ns["traversal_ids"]) == ("root", [ns["id"]])
    assert await db.fetchval("SELECT scopes FROM personal_access_tokens WHERE user_id = $1", me.id) == ["api"]

    # Running it again keeps the user and prints another token.
    code, again, err = await _create_admin(backends, "root")
    assert code == 0, err
    assert again.strip() != token and again.strip().startswith("glpat-")
    assert await db.fetchval("SELECT count(*) FROM users WHERE username = 'root'") == 1
    assert await db.fetchval("SELECT count(*) FROM personal_access_tokens WHERE user_id = $1", me.id) == 2


async def test_create_admin_does_not_promote_an_existing_user(db, backends):
    await make_user(db, username="eve")
    code, out, err = await _create_admin(backends, "eve")
    assert code == 1
    assert out == ""
    assert "not an administrator" in err
    assert await db.fetchval("SELECT admin FROM users WHERE username = 'eve'") is False
    assert await db.fetchval("SELECT count(*) FROM personal_access_tokens") == 0
