"""The one request middleware (service/middleware.py): whatever goes wrong, the answer is GitLab's
JSON with the request's correlation id."""

from __future__ import annotations

from aiohttp import web

from service import app_keys, auth
from service.domain.errors import DomainError, Missing
from service.middleware import request_middleware


class NobodyMappedThis(DomainError):
    pass


def _app() -> web.Application:
    app = web.Application(middlewares=[request_middleware])

    async def missing(request: web.Request) -> web.Response:
        raise Missing("Project")

    async def unmapped(request: web.Request) -> web.Response:
        raise NobodyMappedThis()

    consumer = auth.Consumer("test", auth.check_nobody)
    app[app_keys.ROUTE_CONSUMERS] = {
        app.router.add_get("/missing", missing): consumer,
        app.router.add_get("/unmapped", unmapped): consumer,
    }
    return app


async def test_a_domain_error_is_rendered_in_gitlab_shape_with_the_callers_request_id(aiohttp_client):
    client = await aiohttp_client(_app())
    async with client.get("/missing", headers={"X-Request-Id": "req-1"}) as resp:
        assert resp.status == 404
        assert await resp.json() == {"message": "404 Project Not Found"}
        assert resp.headers["X-Request-Id"] == "req-1"


async def test_an_error_that_cannot_be_rendered_is_still_a_json_500_with_an_id(aiohttp_client):
    client = await aiohttp_client(_app())
    async with client.get("/unmapped") as resp:
        assert resp.status == 500
        assert await resp.json() == {"message": "500 Internal Server Error"}
        assert resp.headers["X-Request-Id"]


async def test_unknown_paths_and_methods_answer_like_gitlabs_catch_all(aiohttp_client):
    client = await aiohttp_client(_app())
    async with client.get("/nowhere") as resp:
        assert (resp.status, await resp.json()) == (404, {"error": "404 Not Found"})
        assert resp.headers["X-Request-Id"]
    async with client.post("/missing") as resp:
        assert (resp.status, await resp.json()) == (405, {"error": "405 Not Allowed"})
        assert "GET" in resp.headers["Allow"]
