"""The service behind PgBouncer in transaction pooling mode, on a PostgreSQL the test starts.

(CI also runs the whole route suite through PgBouncer: GIA_TEST_PGBOUNCER=1, see tests/conftest.py.)
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections import Counter
from collections.abc import Iterator

import asyncpg
import pytest

from service.app import create_app
from service.db.migrate import migrate
from service.db.pool import create_pool
from service.db.queries import MIGRATIONS_DIR
from tests.factories import add_member, make_key, make_project, make_user
from tests.helpers import shell_headers
from tests.topology.postgres_servers import PgBouncer, PostgresServer, require_pgbouncer

INTERNAL = "/api/v4/internal"


@pytest.fixture(scope="module")
def pgbouncer() -> Iterator[tuple[PostgresServer, PgBouncer]]:
    require_pgbouncer()
    server = PostgresServer.primary()
    bouncer = None
    try:
        # fewer server connections than the service's pool: clients must share them
        bouncer = PgBouncer(server.port, pool_size=4)
        yield server, bouncer
    finally:
        if bouncer is not None:
            bouncer.stop()
        server.destroy()


async def _new_database(server: PostgresServer) -> str:
    name = "gia_" + uuid.uuid4().hex[:10]
    admin = await asyncpg.connect(server.url())
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return name


async def test_migrations_through_pgbouncer_apply_each_file_once(pgbouncer):
    """Four services starting at once, all migrating through PgBouncer: the lock still holds."""
    server, bouncer = pgbouncer
    name = await _new_database(server)
    results = await asyncio.gather(*(migrate(bouncer.url(name)) for _ in range(4)))
    applied = sorted(version for result in results for version in result)
    assert applied == sorted(path.stem for path in MIGRATIONS_DIR.glob("*.sql"))
    assert await migrate(server.url(name)) == []  # and the direct URL sees the same state


async def test_64_concurrent_clients_on_the_main_paths_get_no_error(pgbouncer, settings, secrets, aiohttp_client, redis):
    server, bouncer = pgbouncer
    name = await _new_database(server)
    await migrate(server.url(name))  # migrations over the direct URL, as documented
    direct = await asyncpg.connect(server.url(name))
    try:
        owner = await make_user(direct, username="owner")
        pusher = await make_user(direct, username="pusher")
        project = await make_project(direct, owner=owner, path="app", visibility_level=0)
        await add_member(direct, pusher, project, 30)
        key, parsed = await make_key(direct, pusher)
    finally:
        await direct.close()
    app = create_app(
        settings.with_overrides(
            database_url=bouncer.url(name), database_prepared_statements=False, pool_min_size=2, pool_max_size=10
        ),
        secrets,
    )
    client = await aiohttp_client(app)
    blob = base64.b64encode(parsed.blob).decode()
    gl_repository = f"project-{project['id']}"
    statuses: Counter[tuple[str, int]] = Counter()

    async def one_client(n: int) -> None:
        for round_ in range(6):
            headers = shell_headers()
            calls = [
                ("authorized_keys", client.get(f"{INTERNAL}/authorized_keys", params={"key": blob}, headers=headers)),
                (
                    "allowed",
                    client.post(
                        f"{INTERNAL}/allowed",
                        headers=headers,
                        json={"action": "git-upload-pack", "project": "owner/app.git", "changes": "_any",
                              "protocol": "ssh", "key_id": str(key["id"])},
                    ),
                ),
                (
                    "push",
                    client.post(
                        f"{INTERNAL}/allowed",
                        headers=headers,
                        json={"action": "git-receive-pack", "project": "owner/app.git",
                              "changes": f"{'0' * 40} {'a' * 40} refs/heads/topic-{n}-{round_}",
                              "protocol": "ssh", "key_id": str(key["id"])},
                    ),
                ),
                ("pre_receive", client.post(f"{INTERNAL}/pre_receive", headers=headers,
                                            json={"gl_repository": gl_repository})),
                (
                    "post_receive",
                    client.post(
                        f"{INTERNAL}/post_receive",
                        headers=headers,
                        json={"gl_repository": gl_repository, "identifier": f"key-{key['id']}",
                              "changes": f"{'0' * 40} {'a' * 40} refs/heads/topic-{n}-{round_}"},
                    ),
                ),
                ("discover", client.get(f"{INTERNAL}/discover", params={"key_id": key["id"]}, headers=headers)),
            ]
            for label, call in calls:
                async with call as resp:
                    await resp.read()
                    statuses[(label, resp.status)] += 1

    await asyncio.gather(*(one_client(n) for n in range(64)))
    assert statuses == Counter(
        {(label, 200): 64 * 6 for label in ("authorized_keys", "allowed", "push", "pre_receive", "post_receive", "discover")}
    )
    # the reference counter went up and down once per push: back to zero
    counters = [key async for key in redis.scan_iter("*reference-counter*")]
    assert counters and [int(await redis.get(key) or 0) for key in counters] == [0] * len(counters)
    assert "unsupported startup parameter" not in bouncer.log()


async def test_the_direct_settings_do_not_work_through_pgbouncer(pgbouncer, settings):
    """Why the switch exists: with prepared statements on, PgBouncer refuses the start-up parameter."""
    _server, bouncer = pgbouncer
    async def nothing(_conn: asyncpg.Connection) -> None:
        pass

    pool = create_pool(settings.with_overrides(database_url=bouncer.url("postgres")), on_connect=nothing)
    with pytest.raises(asyncpg.PostgresError, match="unsupported startup parameter"):
        await pool
