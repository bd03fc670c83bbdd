"""The OpenAPI document, and schemathesis fuzzing every operation of the live service with it.

The service runs as it does in production (a real aiohttp server on a free port, over the test
PostgreSQL and Redis) in a background thread with its own event loop: schemathesis's calls are
synchronous (requests) and must not block pytest's loop. Every operation gets a bounded number of
generated requests with its consumer's credentials; the checks are: no 5xx, every status, content
type, header and body as the document says.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
import schemathesis
from aiohttp import web
from aiohttp.web_urldispatcher import SystemRoute
from hypothesis import HealthCheck, Phase, settings
from redis.asyncio import Redis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from service import app_keys
from service.app import create_app
from service.config import ROOT, load_settings
from service.openapi import OPENAPI_PATH, OPERATIONS, document
from service.secrets import Secrets
from tests.conftest import _EMPTY_AND_RESEED, DB_KEY_BASE, KAS_SECRET, SHELL_SECRET
from tests.factories import make_personal_access_token, make_project, make_user
from tests.helpers import kas_jwt, shell_jwt
from tests.kas_factories import make_agent, make_agent_token
from tests.topology.postgres_servers import free_port

SECRETS = Secrets(shell=SHELL_SECRET, kas=KAS_SECRET, db_key_base=DB_KEY_BASE)
# Per operation; ~120 operations. Raise locally with SCHEMATHESIS_EXAMPLES=200 for a deeper run.
EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "12"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def _offline_app() -> web.Application:
    """The application as wired, for its routes only (nothing is started)."""
    return create_app(load_settings(ROOT / "config" / "test.toml", environ={}), SECRETS)


# --- the document ------------------------------------------------------------------------------


def test_every_route_is_in_the_registry():
    app = _offline_app()
    missing = []
    for route in app.router.routes():
        if isinstance(route, SystemRoute) or route.method == "HEAD":
            continue
        info = route.resource.get_info()
        if (route.method, info.get("path") or info.get("formatter")) not in OPERATIONS:
            missing.append((route.method, info))
    assert missing == []
    documented = [route for route in app[app_keys.ROUTE_CONSUMERS] if route.method != "HEAD"]  # a GET's, undocumented
    assert len(documented) == len(OPERATIONS)


def test_the_document_is_valid_openapi_3_1():
    doc = document(_offline_app())
    assert doc["openapi"] == "3.1.0"
    schemathesis.openapi.from_dict(doc).validate()
    operations = [op for path in doc["paths"].values() for op in path.values()]
    assert len(operations) == len(OPERATIONS)
    allowed = doc["paths"]["/api/v4/internal/allowed"]["post"]
    assert allowed["security"] == [{"shellJwt": []}, {"shellSecret": []}]
    assert set(allowed["responses"]) >= {"200", "300", "401", "404", "429", "503"}
    users = doc["paths"]["/api/v4/users"]["post"]
    body = doc["components"]["schemas"]["admin.UserCreateIn"]
    assert users["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/admin.UserCreateIn"
    }
    assert body["properties"]["email"]["maxLength"] == 255
    assert body["properties"]["username"]["maxLength"] == 255


async def test_the_document_is_served_to_administrators(client, db):
    assert (await client.get(OPENAPI_PATH)).status == 401
    user = await make_user(db)
    plain = await make_personal_access_token(db, user)
    assert (await client.get(OPENAPI_PATH, headers={"PRIVATE-TOKEN": plain})).status == 403
    admin = await make_user(db, admin=True)
    token = await make_personal_access_token(db, admin)
    resp = await client.get(OPENAPI_PATH, headers={"PRIVATE-TOKEN": token})
    assert resp.status == 200
    assert (await resp.json())["paths"]["/api/v4/internal/allowed"]["post"]["operationId"] == "post_internal_allowed"


# --- the live service --------------------------------------------------------------------------


@dataclass
class LiveService:
    url: str
    admin_token: str
    agent_token: str
    loop: asyncio.AbstractEventLoop
    database_url: str
    admin_id: int

    def run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(30)

    def fresh_admin_token(self) -> str:
        async def make() -> str:
            conn = await asyncpg.connect(self.database_url)
            try:
                admin = await conn.fetchrow("SELECT * FROM users WHERE id = $1", self.admin_id)
                return await make_personal_access_token(conn, admin, scopes=["api", "admin_mode"])
            finally:
                await conn.close()

        return str(self.run(make()))

    def headers(self, operation: Any) -> dict[str, str]:
        security = operation.definition.raw.get("security") or []
        schemes = {name for requirement in security for name in requirement}
        if "shellJwt" in schemes:
            return {"Gitlab-Shell-Api-Request": shell_jwt()}
        if "kasJwt" in schemes:
            headers = {"Gitlab-Kas-Api-Request": kas_jwt()}
            if "agentToken" in schemes:
                headers["Authorization"] = f"Bearer {self.agent_token}"
            return headers
        if "privateToken" in schemes:
            if operation.path == "/api/v4/personal_access_tokens/self" and operation.method.upper() == "DELETE":
                return {"PRIVATE-TOKEN": self.fresh_admin_token()}  # it revokes the token it is called with
            return {"PRIVATE-TOKEN": self.admin_token}
        return {}


async def _seed(database_url: str, redis_url: str) -> tuple[str, str, int]:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(_EMPTY_AND_RESEED)
        # A high id: generated path parameters ("1", "0"...) do not block or delete the caller.
        admin = await make_user(conn, id=987_654_321, admin=True, username="fuzz-admin")
        token = await make_personal_access_token(conn, admin, scopes=["api", "admin_mode"])
        owner = await make_user(conn)
        project = await make_project(conn, owner=owner)
        agent = await make_agent(conn, project=project)
        agent_token, _ = await make_agent_token(conn, agent)
    finally:
        await conn.close()
    redis = Redis.from_url(redis_url)
    try:
        await redis.flushdb()
    finally:
        await redis.aclose()
    return token, agent_token, int(admin["id"])


@pytest.fixture(scope="module")
def live_service(backends, secret_files) -> Iterator[LiveService]:
    settings_ = load_settings(ROOT / "config" / "test.toml", environ={}).with_overrides(
        database_url=backends.database_url,
        redis_url=backends.redis_url,
        shell_secret_file=secret_files["shell"],
        kas_secret_file=secret_files["kas"],
        db_key_base_file=secret_files["db_key_base"],
        gitlab_com=True,
    )
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="live-service", daemon=True)
    thread.start()
    port = free_port()
    runner = web.AppRunner(create_app(settings_, SECRETS), access_log=None)

    async def start() -> tuple[str, str, int]:
        seeded = await _seed(backends.database_url, backends.redis_url)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        return seeded

    token, agent_token, admin_id = asyncio.run_coroutine_threadsafe(start(), loop).result(60)
    try:
        yield LiveService(f"http://127.0.0.1:{port}", token, agent_token, loop, backends.database_url, admin_id)
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


SCHEMA = schemathesis.openapi.from_dict(document(_offline_app()))
_STARTED = time.monotonic()


@SCHEMA.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same cases on every run: CI failures reproduce locally
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_fuzz_every_operation(case, live_service):
    response = case.call_and_validate(
        base_url=live_service.url, headers=live_service.headers(case.operation), checks=CHECKS
    )
    if os.environ.get("SCHEMATHESIS_TRACE"):
        with open(os.environ["SCHEMATHESIS_TRACE"], "a") as trace:
            trace.write(f"{case.method} {case.path} {response.status_code}\n")
