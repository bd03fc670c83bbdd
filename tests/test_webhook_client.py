"""The webhook delivery client (service/webhook_client.py) against real HTTP receivers."""

from __future__ import annotations

import asyncio
import socket

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from service.domain.webhooks import RESPONSE_BODY_SIZE_LIMIT, DeliveryError
from service.webhook_client import WebhookClient


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
        status, headers, body = await client.post(str(server.make_url("/hook")), {}, b'{"a":1}', True, 5, allow_local=True)
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
        assert (await client.post(str(server.make_url("/old")), {}, b"{}", True, 5, allow_local=True))[::2] == (200, "moved here")
        assert (await client.post(str(server.make_url("/away")), {}, b"{}", True, 5, allow_local=True))[0] == 307
        with pytest.raises(DeliveryError, match="too many redirects"):
            await client.post(str(server.make_url("/loop")), {}, b"{}", True, 5, allow_local=True)


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
            await client.post(f"http://127.0.0.1:{closed_port}/hook", {}, b"{}", True, 5, allow_local=True)
        with pytest.raises(DeliveryError, match="TimeoutError"):
            await client.post(str(server.make_url("/slow")), {}, b"{}", True, 0.2, allow_local=True)


class _Rebinding(AbstractResolver):
    """A name that answered a public address to the URL check, and now answers 127.0.0.1."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.asked = 0

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        self.asked += 1
        return [
            ResolveResult(hostname=host, host="127.0.0.1", port=self.port, family=socket.AF_INET, proto=0, flags=0)
        ]

    async def close(self) -> None:
        pass


async def test_a_name_that_resolves_to_the_local_network_when_connecting_is_refused(aiohttp_server):
    """DNS rebinding: the delivery's own resolution is checked, so a name that passed the URL check
    with a public address cannot then connect to a local one; hooks allowed local requests can."""
    routes = web.RouteTableDef()
    seen: list[str] = []

    @routes.post("/hook")
    async def hook(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.Response(text="reached")

    server = await _receiver(aiohttp_server, routes)
    rebinding = _Rebinding(server.port)
    async with WebhookClient(resolver=rebinding) as client:
        url = f"http://rebinding.example:{server.port}/hook"
        with pytest.raises(DeliveryError, match="URL is blocked: Requests to localhost are not allowed"):
            await client.post(url, {}, b"{}", True, 5, allow_local=False)
        assert rebinding.asked == 1 and seen == []
        local = str(server.make_url("/hook"))
        assert (await client.post(local, {}, b"{}", True, 5, allow_local=True))[0] == 200
    assert seen == ["/hook"]
