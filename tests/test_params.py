"""service/params.py on its own: one parsing path for JSON, urlencoded and multipart bodies.

A minimal application (the error middleware and one route whose consumer allows 64 KiB, the least
a consumer may) runs in a background thread; hypothesis sends it generated parameters in every
encoding, and arbitrary bytes under every content type.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import string
import threading
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service import auth, app_keys
from service.errors import json_response
from service.middleware import request_middleware
from service.params import SMALL_BODY, params

LIMIT = SMALL_BODY  # the smallest limit a consumer may have


async def _echo(request: web.Request) -> web.Response:
    return json_response(await params(request))


@pytest.fixture(scope="module")
def echo_port() -> Iterator[int]:
    app = web.Application(middlewares=[request_middleware])
    route = app.router.add_post("/echo", _echo)
    app[app_keys.ROUTE_CONSUMERS] = {route: auth.Consumer("test", auth.check_nobody, LIMIT)}
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    runner = web.AppRunner(app, access_log=None)

    async def start() -> None:
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()

    asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    try:
        yield port
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def _post(port: int, body: bytes, content_type: str, query: str = "") -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", "/echo" + query, body=body, headers={"Content-Type": content_type})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def _multipart(values: dict[str, str]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value.encode() + b"\r\n"
        for name, value in values.items()
    ]
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


# Parameter names as clients send them (no Rack brackets); values any text without NUL or lone surrogates.
names = st.text(alphabet=string.ascii_letters + string.digits + "_", min_size=1, max_size=12)
values = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r"), max_size=40)
parameter_sets = st.dictionaries(names, values, max_size=6)
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FAST
@given(parameter_sets)
def test_every_encoding_gives_the_same_parameters(echo_port, given_params):
    as_json = _post(echo_port, json.dumps(given_params).encode(), "application/json")
    as_form = _post(echo_port, urlencode(given_params).encode(), "application/x-www-form-urlencoded")
    body, content_type = _multipart(given_params)
    as_multipart = _post(echo_port, body, content_type)
    assert as_json == as_form == as_multipart == (200, given_params)


@FAST
@given(parameter_sets, parameter_sets)
def test_the_body_wins_over_the_query_string(echo_port, in_query, in_body):
    status, merged = _post(echo_port, json.dumps(in_body).encode(), "application/json", "?" + urlencode(in_query))
    assert status == 200
    assert merged == {**in_query, **in_body}


CONTENT_TYPES = [
    "application/json",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=b",
    "multipart/form-data",
    "text/plain",
    "",
    "application/xml",
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(CONTENT_TYPES), st.binary(max_size=LIMIT + 200))
def test_any_bytes_answer_200_400_or_413_in_gitlabs_shape(echo_port, content_type, body):
    status, answer = _post(echo_port, body, content_type)
    assert status in (200, 400, 413), (status, answer)
    if status == 400:
        assert answer["message"].startswith("400 Bad request - ")
    if status == 413:
        assert answer == {"message": "413 Request Entity Too Large"}
    if len(body) > LIMIT:
        assert status == 413


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(names, st.binary(max_size=30)), max_size=4))
def test_multipart_with_arbitrary_field_bytes(echo_port, fields):
    body = b"".join(
        b'--b\r\nContent-Disposition: form-data; name="' + name.encode() + b'"\r\n\r\n' + value + b"\r\n"
        for name, value in fields
    ) + b"--b--\r\n"
    status, answer = _post(echo_port, body, "multipart/form-data; boundary=b")
    assert status in (200, 400), (status, answer)


def test_nested_keys_as_rack_reads_them(echo_port):
    status, answer = _post(
        echo_port, b"scopes[]=api&scopes[]=read_user&alert[fingerprint]=f&x=1", "application/x-www-form-urlencoded"
    )
    assert status == 200
    assert answer == {"scopes": ["api", "read_user"], "alert": {"fingerprint": "f"}, "x": "1"}


def test_nested_keys_at_any_depth_as_rack_reads_them(echo_port):
    body = b"a[b][]=x&a[b][]=y&a[c][d]=1&l[][k]=1&l[][v]=2&l[][k]=3&m[][]=z"
    status, answer = _post(echo_port, body, "application/x-www-form-urlencoded")
    assert status == 200
    assert answer == {
        "a": {"b": ["x", "y"], "c": {"d": "1"}},
        "l": [{"k": "1", "v": "2"}, {"k": "3"}],  # a new object when the last already has the key
        "m": [["z"]],
    }
    # the same in the query string and in a multipart body
    assert _post(echo_port, b"", "application/json", "?" + body.decode()) == (200, answer)
    multipart = b"".join(
        b'--b\r\nContent-Disposition: form-data; name="' + name + b'"\r\n\r\n' + value + b"\r\n"
        for name, value in (pair.split(b"=") for pair in body.split(b"&"))
    ) + b"--b--\r\n"
    assert _post(echo_port, multipart, "multipart/form-data; boundary=b") == (200, answer)


@pytest.mark.parametrize(
    "body, message",
    [
        (b"a[]=1&a[b]=2", "expected Hash (got Array) for param `a'"),
        (b"a[b]=1&a[]=2", "expected Array (got Hash) for param `a'"),
        (b"a=1&a[][b]=2", "expected Array (got String) for param `a'"),
        (b"a" + b"[b]" * 40 + b"=1", "parameters nested too deeply"),
    ],
)
def test_conflicting_or_too_deep_nesting_is_racks_400(echo_port, body, message):
    assert _post(echo_port, body, "application/x-www-form-urlencoded") == (
        400, {"message": f"400 Bad request - {message}"}
    )


def test_a_repeated_query_parameter_takes_its_last_value_and_the_body_replaces_whole_keys(echo_port):
    assert _post(echo_port, b"", "application/json", "?x=1&x=2") == (200, {"x": "2"})
    # Rack merges the query's parameters with the body's key by key, not deeply
    assert _post(echo_port, b"a[c]=2", "application/x-www-form-urlencoded", "?a[b]=1&q=1") == (
        200, {"a": {"c": "2"}, "q": "1"}
    )


def test_nesting_is_refused_from_rack_s_depth_limit_on(echo_port):
    deepest = b"a" + b"[b]" * 31 + b"=1"  # 32 levels with its outer name: Rack's last accepted
    status, answer = _post(echo_port, deepest, "application/x-www-form-urlencoded")
    assert status == 200
    for key in ["a"] + ["b"] * 31:
        answer = answer[key]
    assert answer == "1"
    assert _post(echo_port, b"a" + b"[b]" * 32 + b"=1", "application/x-www-form-urlencoded") == (
        400, {"message": "400 Bad request - parameters nested too deeply"}
    )


def test_a_consumer_cannot_limit_bodies_below_what_params_takes_without_asking():
    """params() reads a body of SMALL_BODY bytes or fewer without looking up its consumer's limit."""
    with pytest.raises(ValueError, match="body limit"):
        auth.Consumer("test", auth.check_nobody, SMALL_BODY - 1)
    assert auth.Consumer("test", auth.check_nobody, SMALL_BODY).max_body == SMALL_BODY


def test_a_body_over_its_consumers_limit_is_413_and_one_at_it_is_read(echo_port):
    at_limit = json.dumps({"x": "y" * (LIMIT - 9)}).encode()
    assert len(at_limit) == LIMIT
    assert _post(echo_port, at_limit, "application/json") == (200, {"x": "y" * (LIMIT - 9)})
    over = json.dumps({"x": "y" * (LIMIT - 8)}).encode()
    assert _post(echo_port, over, "application/json") == (413, {"message": "413 Request Entity Too Large"})


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON"])
def test_json_is_read_whatever_the_spelling_of_its_type(echo_port, content_type):
    assert _post(echo_port, b'{"gl_repository": "project-1"}', content_type) == (200, {"gl_repository": "project-1"})
