"""Answers written in one piece: the status line, the headers and the body serialised together by
the service and handed to aiohttp's writer in one `write_eof`.

aiohttp's own path for a `web.Response` fills Content-Length, Date, Server and Connection into the
headers' CIMultiDict one by one, and goes through a chain of nested coroutines between `prepare`
and the socket. `bench/response_path.py` compares two bare handlers that differ only in the
response class: this one answered 7-13 % more requests per second, and the service 4-9 % more
on authorized_keys; the figures are in the README's Speed section.

The bytes are the ones aiohttp would have written (tests/test_wire.py compares both on the wire):
the status line and the headers given are serialised by aiohttp's own serialiser, with its checks
(a control character in a header is refused) and its encoding; only the lines aiohttp adds
(Content-Length, Date, Server, Connection) are written here. The response is still a
`web.Response`: handlers and the middleware set its status and headers as usual, and the access
log reads them; unlike aiohttp's, its `headers` do not gain the added lines afterwards (no log
format of the service reads them). What this path does not handle is left to aiohttp's own:
HEAD and CONNECT requests, compression, chunking, cookies, a non-bytes body, framing headers set
by hand (Content-Length, Transfer-Encoding), and an application with `on_response_prepare` signals
(this one registers none). It does not stream: `write` is refused once the one write is prepared.
"""

from __future__ import annotations

from typing import cast

from aiohttp import hdrs, web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.helpers import must_be_empty_body, rfc822_formatted_time
from aiohttp.http import SERVER_SOFTWARE
from aiohttp.http_writer import _serialize_headers
from aiohttp.web_urldispatcher import AbstractRoute, SystemRoute

# methods whose answers aiohttp shapes specially (a HEAD answer keeps its Content-Length but not its body)
_LEFT_TO_AIOHTTP = frozenset({hdrs.METH_HEAD, hdrs.METH_CONNECT})
_SERVER_LINE = f"Server: {SERVER_SOFTWARE}\r\n"


class OneWriteResponse(web.Response):
    """A `web.Response` whose bytes body, status line and headers reach the socket in one write."""

    # The answer prepare() serialised, when it took the one write; write_eof() sends it. It is
    # kept afterwards, which tells a test which path an answer took.
    _one_write: bytes | None = None

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        if self._payload_writer is not None or self._eof_sent or not self._takes_one_write(request):
            return await super().prepare(request)
        # What StreamResponse.prepare records, without writing anything yet.
        self._req = request
        self._payload_writer = writer = request._payload_writer
        if self._keep_alive is None:
            self._keep_alive = request.keep_alive
        self._must_be_empty_body = must_be_empty_body(request.method, self._status)
        # serialised here, as aiohttp serialises its headers in prepare(): a bad header fails at the same point
        self._one_write = self._serialised(request)
        return writer

    def _takes_one_write(self, request: web.BaseRequest) -> bool:
        return (
            request.method not in _LEFT_TO_AIOHTTP
            and not self._compression
            and not self._chunked
            and not self._cookies
            and (self._body is None or type(self._body) is bytes)
            # framing headers set by hand are aiohttp's to check
            and hdrs.CONTENT_LENGTH not in self._headers
            and hdrs.TRANSFER_ENCODING not in self._headers
            and not _response_signals(request)
        )

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._one_write is not None:
            raise RuntimeError("OneWriteResponse writes its body in one piece; use web.StreamResponse to stream")
        await super().write(data)

    async def write_eof(self, data: bytes = b"") -> None:
        if self._one_write is None or self._eof_sent:
            return await super().write_eof(data)
        assert not data, f"data arg is not supported, got {data!r}"  # as web.Response.write_eof
        writer = self._payload_writer
        assert writer is not None
        await writer.write_eof(self._one_write)
        self._eof_sent = True
        self._req = None
        self._body_length = writer.output_size
        self._payload_writer = None

    def _serialised(self, request: web.BaseRequest) -> bytes:
        """The bytes aiohttp would write for this answer (web.Response._start, then
        StreamResponse._prepare_headers and _write_headers), in the same order."""
        version = request.version
        headers = self._headers
        # a bytes body or none: _takes_one_write() let nothing else through
        body = b"" if self._must_be_empty_body or self._body is None else cast(bytes, self._body)
        added = ""
        if not self._must_be_empty_body:
            added = f"Content-Length: {len(body)}\r\n"
            if body and hdrs.CONTENT_TYPE not in headers:
                added += "Content-Type: application/octet-stream\r\n"
        if hdrs.DATE not in headers:
            added += f"Date: {rfc822_formatted_time()}\r\n"
        if hdrs.SERVER not in headers:
            added += _SERVER_LINE
        if hdrs.CONNECTION not in headers:
            if self._keep_alive:
                if version[1] == 0:
                    added += "Connection: keep-alive\r\n"
            elif version[1] == 1:
                added += "Connection: close\r\n"
        # aiohttp's serialiser ends with the blank line; the added lines go before it
        given = _serialize_headers(f"HTTP/{version[0]}.{version[1]} {self._status} {self._reason}", headers)
        return given[:-2] + added.encode() + b"\r\n" + body


# Whether a route's answers go through aiohttp's prepare for on_response_prepare signals. aiohttp
# freezes the signals with their application, before the first request, so the answer is asked
# once per route rather than on every request (a route's own, bounded; aiohttp's 404 and 405
# routes are new objects per request and are asked each time).
_SIGNALS_BY_ROUTE: dict[AbstractRoute, bool] = {}


def _response_signals(request: web.BaseRequest) -> bool:
    """Whether aiohttp's prepare would send on_response_prepare: the signals of every application
    on the route's path (a parent's too, under a sub-application). A BaseRequest has none."""
    match_info = getattr(request, "match_info", None)
    if match_info is None:
        return False
    route = match_info.route
    known = _SIGNALS_BY_ROUTE.get(route)
    if known is None:
        known = any(app.on_response_prepare for app in match_info.apps)
        if not isinstance(route, SystemRoute):
            _SIGNALS_BY_ROUTE[route] = known
    return known
