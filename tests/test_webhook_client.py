"""The webhook delivery client (service/webhook_client.py) against real HTTP receivers."""

from __future__ import annotations

import asyncio
import socket

import pytest
from aiohttp import web

from service.domain.webhooks import RESPONSE_BODY_SIZE_LIMIT, DeliveryError
from service.webhook_client import TOO_MANY_REDIRECTS, WebhookClient


async def _receiver(aiohttp_server, routes: web.RouteTableDef):  # type: ignore[no-untyped-def]
    app = web.Application()
    app.add_routes(routes)
    return await aiohttp_server(app)


async def test_the_answer_is_its_status_headers_and_at_most_8_kib_of_its_body(aiohttp_server):
    routes = web.RouteTableDef()
    seen: list[bytes] = []

    @routes.post("/hook")
    async def hook(request: web.Request) -> web.Response:
        seen.append(await request.read())
        return web.Response(status=201, body=b"x" * (RESPONSE_BODY_SIZE_LIMIT * 2), headers={"X-Seen": "1"})

    server = await _receiver(aiohttp_server, routes)
    async with WebhookClient() as client:
        status, headers, body = await client.post(str(server.make_url("/hook")), {}, b'{"a":1}', True, 5)
    assert (status, headers["X-Seen"], len(body), seen) == (201, "1", RESPONSE_BODY_SIZE_LIMIT, [b'{"a":1}'])


async def test_a_redirect_is_followed_on_the_same_origin_only(aiohttp_server):
    routes = web.RouteTableDef()

    @routes.post("/old")
    async def old(request: web.Request) -> web.Response:
        raise web.HTTPPermanentRedirect("/new")

    @routes.post("/new")
    async def new(request: web.Request) -> web.Response:
        return web.Response(text="moved here")

    @routes.post("/away")
    async def away(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect("http://198.51.100.7/elsewhere")  # past the SSRF check: not followed

    @routes.post("/loop")
    async def loop(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect("/loop")

    server = await _receiver(aiohttp_server, routes)
    async with WebhookClient() as client:
        assert (await client.post(str(server.make_url("/old")), {}, b"{}", True, 5))[::2] == (200, "moved here")
        assert (await client.post(str(server.make_url("/away")), {}, b"{}", True, 5))[0] == 307
        assert (await client.post(str(server.make_url("/loop")), {}, b"{}", True, 5))[0] == TOO_MANY_REDIRECTS


async def test_an_unreachable_or_silent_receiver_is_a_delivery_error(aiohttp_server):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    routes = web.RouteTableDef()

    @routes.post("/slow")
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response()

    server = await _receiver(aiohttp_server, routes)
    async with WebhookClient() as client:
        with pytest.raises(DeliveryError, match="ClientConnectorError"):
            await client.post(f"http://127.0.0.1:{closed_port}/hook", {}, b"{}", True, 5)
        with pytest.raises(DeliveryError, match="TimeoutError"):
            await client.post(str(server.make_url("/slow")), {}, b"{}", True, 0.2)
