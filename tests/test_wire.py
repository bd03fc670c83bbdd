"""OneWriteResponse (service/wire.py) writes the bytes aiohttp's own web.Response writes.

Each case is answered twice by one server, once by each class with the same arguments, and read off a
raw socket: the two answers must be byte for byte the same (the Date header aside), and the
connection must be kept or closed alike.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from aiohttp import web

from service.app import create_app
from service.wire import OneWriteResponse

# (status, body, headers) answered by both classes
ANSWERS: dict[str, tuple[int, bytes | None, dict[str, str]]] = {
    "json": (200, b'{"status":true}', {"Content-Type": "application/json"}),
    "created": (201, b'{"id":1}', {"Content-Type": "application/json", "X-Request-Id": "abc-1"}),
    "unauthorized": (401, b'{"message":"401 Unauthorized"}', {"Content-Type": "application/json"}),
    "unavailable": (503, b'{"message":"down"}', {"Content-Type": "application/json", "Retry-After": "5"}),
    "custom_action": (300, b'{"status":true}', {"Content-Type": "application/json"}),
    "empty_body": (200, b"", {"Content-Type": "application/json"}),
    "no_body": (200, None, {}),
    "no_content_type": (200, b"raw", {}),
    "no_content": (204, None, {}),
    "no_content_with_type": (204, None, {"Content-Type": "application/json"}),
    "not_modified": (304, None, {}),
    "unicode_value": (200, b"{}", {"Content-Type": "application/json", "X-Note": "caf\u00e9"}),
}

REQUEST_SHAPES = {
    "get_1.1": "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n",
    "post_1.1": 'POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}',
    "delete_1.1": "DELETE {path} HTTP/1.1\r\nHost: x\r\n\r\n",
    "head_1.1": "HEAD {path} HTTP/1.1\r\nHost: x\r\n\r\n",
    "close_1.1": "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    "get_1.0": "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n",
    "keep_alive_1.0": "GET {path} HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n",
}

DATE = re.compile(rb"\r\nDate: [^\r]*")


def _server_app(answered: list[web.StreamResponse]) -> web.Application:
    async def answer(request: web.Request) -> web.StreamResponse:
        status, body, headers = ANSWERS[request.match_info["case"]]
        cls: Any = OneWriteResponse if request.match_info["cls"] == "one" else web.Response
        response: web.StreamResponse = cls(body=body, status=status, headers=headers)
        if request.query.get("close"):
            response.force_close()
        answered.append(response)
        return response

    app = web.Application()
    app.router.add_route("*", "/{cls}/{case}", answer)
    return app


async def _exchange(port: int, request: bytes, head_only: bool) -> tuple[bytes, bool]:
    """The answer's bytes, and whether the server closed the connection after it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        except asyncio.IncompleteReadError as exc:  # closed without (the rest of) an answer
            return exc.partial, True
        length = re.search(rb"\r\nContent-Length: (\d+)", head)
        body = b""
        if length and not head_only:
            body = await asyncio.wait_for(reader.readexactly(int(length.group(1))), 5)
        # A kept connection answers a second request; a closed one ends.
        try:
            writer.write(b"GET /aiohttp/json HTTP/1.1\r\nHost: x\r\n\r\n")
            closed = not await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        except (asyncio.IncompleteReadError, ConnectionError):
            closed = True
        return head + body, closed
    finally:
        writer.close()


@pytest.mark.parametrize("shape", sorted(REQUEST_SHAPES))
@pytest.mark.parametrize("case", sorted(ANSWERS))
async def test_the_bytes_on_the_wire_are_aiohttps(aiohttp_server, shape, case):
    answered: list[web.StreamResponse] = []
    server = await aiohttp_server(_server_app(answered))
    results = {}
    for cls in ("aiohttp", "one"):
        raw = REQUEST_SHAPES[shape].format(path=f"/{cls}/{case}").encode()
        results[cls] = await _exchange(server.port, raw, head_only=shape.startswith("head"))
    (theirs, their_close), (ours, our_close) = results["aiohttp"], results["one"]
    assert DATE.sub(b"", ours) == DATE.sub(b"", theirs)
    assert DATE.search(ours)
    assert our_close == their_close
    # HEAD is left to aiohttp's own path; everything else took the one write
    [one] = [response for response in answered if isinstance(response, OneWriteResponse)]
    assert (one._one_write is not None) is (not shape.startswith("head"))


async def test_a_forced_close_is_honoured(aiohttp_server):
    answered: list[web.StreamResponse] = []
    server = await aiohttp_server(_server_app(answered))
    raw = {cls: REQUEST_SHAPES["get_1.1"].format(path=f"/{cls}/json?close=1").encode() for cls in ("aiohttp", "one")}
    theirs, their_close = await _exchange(server.port, raw["aiohttp"], head_only=False)
    ours, our_close = await _exchange(server.port, raw["one"], head_only=False)
    assert DATE.sub(b"", ours) == DATE.sub(b"", theirs)
    assert b"\r\nConnection: close" in ours
    assert our_close and their_close


async def test_a_keep_alive_connection_carries_the_next_request(aiohttp_server):
    server = await aiohttp_server(_server_app([]))
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        for _ in range(3):
            writer.write(REQUEST_SHAPES["post_1.1"].format(path="/one/json").encode())
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 200 OK\r\n")
            assert await asyncio.wait_for(reader.readexactly(15), 5) == b'{"status":true}'
    finally:
        writer.close()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("X-Evil", "a\r\nSet-Cookie: x=1"),
        ("X-Evil", "a\nSet-Cookie: x=1"),
        ("X-Evil", "a\rb"),
        ("X-Evil", "a\x00b"),
        ("X-Evil", "a\x7fb"),
        ("X-Evil\x01", "a"),
    ],
)
async def test_a_header_with_a_control_character_is_never_written(aiohttp_server, name, value):
    answers = await _answered_with_header(aiohttp_server, name, value)
    # aiohttp drops the connection without a word; so does the one write
    assert answers["one"] == answers["aiohttp"] == (b"", True)


async def test_a_lone_surrogate_in_a_header_is_dropped_as_aiohttp_drops_it(aiohttp_server):
    # (aiohttp hands undecodable request bytes on as lone surrogates; an answer echoing one is written)
    answers = await _answered_with_header(aiohttp_server, "X-Echo", "a\udcffb")
    assert DATE.sub(b"", answers["one"][0]) == DATE.sub(b"", answers["aiohttp"][0])
    assert b"\r\nX-Echo: ab\r\n" in answers["one"][0]


async def _answered_with_header(aiohttp_server: Any, name: str, value: str) -> dict[str, tuple[bytes, bool]]:
    """A GET answered with this one header, by web.Response and by OneWriteResponse."""

    async def with_header(request: web.Request) -> web.StreamResponse:
        cls: Any = OneWriteResponse if request.match_info["cls"] == "one" else web.Response
        response: web.StreamResponse = cls(body=b"{}", headers={name: value})
        return response

    app = web.Application()
    app.router.add_get("/{cls}", with_header)
    server = await aiohttp_server(app)
    return {
        cls: await _exchange(server.port, f"GET /{cls} HTTP/1.1\r\nHost: x\r\n\r\n".encode(), head_only=False)
        for cls in ("aiohttp", "one")
    }


async def test_a_parent_applications_signals_are_sent_under_a_sub_application(aiohttp_server):
    answered: list[web.StreamResponse] = []
    parent = web.Application()

    async def stamp(request: web.Request, response: web.StreamResponse) -> None:
        response.headers["X-Stamped"] = "1"

    parent.on_response_prepare.append(stamp)
    parent.add_subapp("/sub", _server_app(answered))
    server = await aiohttp_server(parent)
    answer, _closed = await _exchange(server.port, b"GET /sub/one/json HTTP/1.1\r\nHost: x\r\n\r\n", head_only=False)
    assert b"\r\nX-Stamped: 1\r\n" in answer
    [one] = [response for response in answered if isinstance(response, OneWriteResponse)]
    assert one._one_write is None


async def test_it_does_not_stream(aiohttp_server):
    async def streaming(request: web.Request) -> web.StreamResponse:
        response = OneWriteResponse(body=b"{}", headers={"Content-Type": "application/json"})
        await response.prepare(request)
        with pytest.raises(RuntimeError, match="one piece"):
            await response.write(b"XX")
        return response

    app = web.Application()
    app.router.add_get("/", streaming)
    server = await aiohttp_server(app)
    answer, _closed = await _exchange(server.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", head_only=False)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert answer.endswith(b"\r\n\r\n{}")


async def test_an_app_with_response_signals_gets_aiohttps_path(aiohttp_server):
    answered: list[web.StreamResponse] = []
    app = _server_app(answered)

    async def stamp(request: web.Request, response: web.StreamResponse) -> None:
        response.headers["X-Stamped"] = "1"

    app.on_response_prepare.append(stamp)
    server = await aiohttp_server(app)
    answer, _closed = await _exchange(server.port, b"GET /one/json HTTP/1.1\r\nHost: x\r\n\r\n", head_only=False)
    assert b"\r\nX-Stamped: 1\r\n" in answer
    [one] = [response for response in answered if isinstance(response, OneWriteResponse)]
    assert one._one_write is None


def test_the_service_registers_no_response_signals(settings, secrets):
    """The service's answers take the one write only while it has no on_response_prepare signal."""
    app = create_app(settings, secrets)
    assert not app.on_response_prepare


async def test_routes_are_asked_about_signals_once_and_aiohttps_404s_are_not_kept(aiohttp_server):
    from service import wire

    async def missing_as_json(request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            response: web.StreamResponse = await handler(request)
            return response
        except web.HTTPNotFound:
            return OneWriteResponse(status=404, body=b'{"message":"404 Not Found"}', headers={"Content-Type": "application/json"})

    app = _server_app([])
    app.middlewares.append(web.middleware(missing_as_json))
    server = await aiohttp_server(app)
    before = len(wire._SIGNALS_BY_ROUTE)
    for _ in range(3):
        answer, _closed = await _exchange(server.port, b"GET /one/json HTTP/1.1\r\nHost: x\r\n\r\n", head_only=False)
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert len(wire._SIGNALS_BY_ROUTE) == before + 1
    for _ in range(3):
        answer, _closed = await _exchange(server.port, b"GET /no/such/route HTTP/1.1\r\nHost: x\r\n\r\n", head_only=False)
        assert answer.startswith(b"HTTP/1.1 404 Not Found\r\n")
        assert answer.endswith(b'{"message":"404 Not Found"}')
    assert len(wire._SIGNALS_BY_ROUTE) == before + 1
