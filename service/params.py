"""Request parameters the way Grape sees them: the query string merged with a JSON, urlencoded or
multipart body. The one place a request body is read.

Every body is bounded by its route's consumer (service/auth.py: a push's change list is
legitimately megabytes, an admin call is not): beyond the limit the answer is 413, decided from
Content-Length before anything is read, or while reading a chunked or compressed body. A body
that cannot be read as its content type says (bad JSON, invalid UTF-8, a broken multipart) is
GitLab's 400 `{"message": "400 Bad request - ..."}`, never a 500.
"""

from __future__ import annotations

import asyncio
import contextvars
import re
import weakref
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

import orjson
from aiohttp import BodyPartReader, hdrs, web
from aiohttp.http_exceptions import HttpProcessingError, PayloadEncodingError
from aiohttp.web_protocol import RequestPayloadError
from marshmallow import Schema, ValidationError

from service import app_keys
from service.config import Settings
from service.errors import ApiError, bad_request, client_closed_request, grape_error, request_timeout, too_large

_PARAMS_KEY = web.RequestKey("merged_params", dict)
# The error of a body that could not be read or parsed: its bytes are gone, so every later reader
# gets that error again, not an empty body (a credential search reads it before the handler).
_PARAMS_ERROR_KEY = web.RequestKey("merged_params_error", ApiError)
# Which request of this task has its parameters under _PARAMS_KEY: asked first, so that the common
# case (not parsed yet) costs no request.get(), whose miss raises and catches a KeyError in Python.
# A weak reference: tasks and connections started meanwhile copy this context and keep it, and
# must not keep the request (nor its parameters, which live on the request) alive with it.
_PARSED_FOR: contextvars.ContextVar[weakref.ref[web.Request] | None] = contextvars.ContextVar(
    "params_parsed_for", default=None
)

# The most that is read of a body to find credentials in it, before anyone is authenticated.
PRE_AUTH_BODY_LIMIT = 64 * 1024
# The body limit of a route whose consumer names none (aiohttp's own default).
DEFAULT_BODY_LIMIT = 1024**2
# Bodies over this size are not kept once their request is answered (release_large_body).
LARGE_BODY = 256 * 1024
# No consumer's body limit is below this (service/auth.py's Consumer refuses one): a body this
# small is within its route's limit whoever the consumer is.
SMALL_BODY = 64 * 1024

JSON = "application/json"
JSON_TYPES = frozenset((JSON, "text/plain", "application/octet-stream", ""))
FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"

# marshmallow message -> Grape's wording (reference section 0.1)
_GRAPE_WORDING = {
    "Missing data for required field.": "is missing",
    "Field may not be null.": "is empty",
    "Field may not be blank.": "is empty",
    "Shorter than minimum length 1.": "is empty",
}


def body_limit(request: web.Request) -> int:
    consumer = request.get(app_keys.CONSUMER)  # kept by service/auth.py's identify_from_headers
    return consumer.max_body if consumer is not None else DEFAULT_BODY_LIMIT


# Rack's limits on form and query parameters: how deeply they nest (Rack 3's param_depth_limit), how
# many there are (Rack 3.1's params_limit) and how long their names are together (Rack 2's
# key_space_limit). A value may be long (an old client's change list); thousands of names are not a
# request any client makes, and parsing them would hold the worker for seconds.
PARAM_DEPTH_LIMIT = 32
PARAMS_LIMIT = 4096
KEY_SPACE_LIMIT = 64 * 1024


def _check_count(separators: int) -> None:
    if separators >= PARAMS_LIMIT:
        raise bad_request(f"total number of query parameters ({separators + 1}) exceeds limit ({PARAMS_LIMIT})")


def _check_key_space(keys: int) -> None:
    if keys > KEY_SPACE_LIMIT:
        raise bad_request("exceeded available parameter key space")


def _nested_key(name: str, depth: int) -> tuple[str, str]:
    """The key a form name starts with and the rest of it (Rack 3's QueryParser#_normalize_params)."""
    if depth == 0:
        start = name.find("[", 1)  # a leading bracket is part of a plain name
        return (name, "") if start < 0 else (name[:start], name[start:])
    if name.startswith("[]"):
        return "[]", name[2:]
    if name.startswith("["):
        end = name.find("]", 1)
        if end > 0:
            return name[1:end], name[end + 1 :]
    return name, ""  # nested but not bracketed: the whole name, as Rack does


def _has_nested_key(target: dict[str, Any], key: str) -> bool:
    if "[]" in key:
        return False
    node: Any = target
    for part in re.split(r"[\[\]]+", key):
        if not part:
            continue
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


_RUBY_CLASS_NAMES: dict[type, str] = {dict: "Hash", list: "Array", str: "String"}


def _type_error(expected: str, found: Any, key: str) -> ApiError:
    got = _RUBY_CLASS_NAMES.get(type(found), type(found).__name__)
    return bad_request(f"expected {expected} (got {got}) for param `{key}'")


def _add_form_value(target: dict[str, Any], name: str, value: str, depth: int = 0) -> Any:
    """Rack's nested parameters: scopes[]=a, alert[fingerprint]=y, a[b][]=x, a[][b]=x, to any depth
    up to Rack's limit. A name that makes a list of what is an object (or the reverse) is Rack's 400."""
    if depth >= PARAM_DEPTH_LIMIT:
        raise bad_request("parameters nested too deeply")
    key, after = _nested_key(name, depth)
    if not key:
        return None
    if not after:
        if key == "[]" and depth:
            return [value]
        target[key] = value
    elif after == "[":
        target[name] = value
    elif after == "[]":
        values = target.setdefault(key, [])
        if not isinstance(values, list):
            raise _type_error("Array", values, key)
        values.append(value)
    elif after.startswith("[]"):
        # a[][b]=x: objects in a list; a new one when the last already has b
        inner = after[3:-1] if after[2:3] == "[" and after.endswith("]") else ""
        child = inner if inner and "[" not in inner and "]" not in inner else after[2:]
        values = target.setdefault(key, [])
        if not isinstance(values, list):
            raise _type_error("Array", values, key)
        if values and isinstance(values[-1], dict) and not _has_nested_key(values[-1], child):
            _add_form_value(values[-1], child, value, depth + 1)
        else:
            values.append(_add_form_value({}, child, value, depth + 1))
    else:
        nested = target.setdefault(key, {})
        if not isinstance(nested, dict):
            raise _type_error("Hash", nested, key)
        _add_form_value(nested, after, value, depth + 1)
    return target


def release_large_body(request: web.Request) -> None:
    """Drop a large body's parameters once the request is answered (service/middleware.py calls this).

    aiohttp's connection loop keeps the last request in a local variable until the next request
    arrives on that keep-alive connection, so whatever the request holds stays in memory meanwhile:
    an idle worker kept ~300 MB after four concurrent 30 MB pushes. Large bodies are read without
    aiohttp's cache (_read), and their parsed parameters are dropped here.
    """
    length = request.content_length
    # A compressed body's length says nothing of what it inflated to.
    if length is None or length > LARGE_BODY or hdrs.CONTENT_ENCODING in request.headers:
        request.pop(_PARAMS_KEY, None)


class _ClientDeadline:
    """How long the client may go without sending any of its body (server.body_read_timeout, as
    Puma's first_data_timeout): asyncio's timeout, moved on by every chunk that arrives, so that a
    large body on a slow link is read to its end and a client that stalls is answered 408.

    Also where a client that left is told apart: the body's ConnectionResetError, on a connection
    that is closed, is the client's going (499), not the service's error.
    """

    __slots__ = ("_deadline", "_loop", "_request", "_seconds")

    def __init__(self, request: web.Request) -> None:
        settings = request.config_dict.get(app_keys.SETTINGS)
        # an application without settings (a test's) gets the setting's default
        self._seconds = (settings or Settings).body_read_timeout
        self._request = request
        self._loop = asyncio.get_running_loop()
        self._deadline = asyncio.timeout(self._seconds)

    def progressed(self) -> None:
        self._deadline.reschedule(self._loop.time() + self._seconds)

    async def __aenter__(self) -> _ClientDeadline:
        await self._deadline.__aenter__()
        return self

    async def __aexit__(self, kind: Any, exc: BaseException | None, traceback: Any) -> None:
        try:
            await self._deadline.__aexit__(kind, exc, traceback)
        except TimeoutError:
            self._request.content.feed_eof()  # the rest is not waited for: the connection closes
            raise request_timeout() from None
        if isinstance(exc, ConnectionResetError):
            transport = self._request.transport
            if transport is None or transport.is_closing():
                raise client_closed_request() from None  # past reading, as the credentials' reader knows


async def _read(request: web.Request, limit: int) -> bytes:
    """The whole body, refused with 413 once it is larger than `limit`, and with 400 when it does
    not decode (a Content-Encoding it is not in): the client's fault, never a 500."""
    length = request.content_length
    if length is not None and length > limit:
        raise too_large()
    arrived = _arrived_body(request, LARGE_BODY)
    if arrived is not None:
        return arrived
    try:
        async with _ClientDeadline(request) as client:
            # Not cached by aiohttp (see release_large_body); for a compressed body the limit
            # applies to what arrives after decompression.
            parts: list[bytes] = []
            size = 0
            async for chunk in request.content.iter_any():
                client.progressed()
                size += len(chunk)
                if size > limit:
                    raise too_large()
                parts.append(chunk)
            return b"".join(parts)
    except (RequestPayloadError, PayloadEncodingError):
        # A body that does not decode (not in its Content-Encoding): the stream is past use. It is
        # marked read, or aiohttp would read on once this is answered, fail again and log that with
        # a traceback, and the connection is closed after the answer (Connection: close).
        request.content.feed_eof()
        refused = bad_request("the body could not be decoded")
        refused.close_connection = True
        raise refused from None


def _arrived_body(request: web.Request, most: int) -> bytes | None:
    """A plain body (no Content-Encoding) of at most `most` bytes that arrived with the headers,
    taken as it is: without a loop, a copy or an await (nothing else reads the body). None when
    it has to be read."""
    length = request.content_length
    plain = hdrs.CONTENT_ENCODING not in request.headers
    if length is not None and length <= most and plain and request.content.is_eof():
        return request.content.read_nowait()
    return None


def _decode_json(body: bytes, content_type: str) -> dict[str, Any]:
    try:
        decoded = orjson.loads(body)
    except orjson.JSONDecodeError:
        if content_type == JSON:
            raise bad_request("There was a problem with the JSON") from None
        return {}  # curl's default text/plain with a body that is not JSON: no parameters
    if not isinstance(decoded, dict):
        raise bad_request("The request body must be a JSON object")
    return decoded


def _decode_form(body: bytes, target: dict[str, Any]) -> None:
    _check_count(body.count(b"&"))
    try:
        # Rack refuses a form that is not UTF-8 (Gitlab::Middleware::HandleMalformedStrings).
        pairs = parse_qsl(body.decode(), keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise bad_request("invalid byte sequence in UTF-8") from None
    _check_key_space(sum(len(key) for key, _ in pairs))
    for key, value in pairs:
        _add_form_value(target, key, value)


async def _decode_multipart(request: web.Request, limit: int, target: dict[str, Any]) -> None:
    """Text fields of a multipart/form-data body; file fields (an avatar...) are not parameters here."""
    if request.content_length is not None and request.content_length > limit:
        raise too_large()
    try:
        async with _ClientDeadline(request) as client:
            await _read_multipart(request, limit, target, client)
    except ApiError:
        raise
    except (ValueError, RuntimeError, AssertionError, Warning, HttpProcessingError):
        # aiohttp's parser says what is wrong (no boundary, a truncated part, a bad header) with these;
        # Warning: BadContentDispositionHeader, an error where warnings are errors (the tests);
        # HttpProcessingError: InvalidHeader, a part's header line without a colon.
        raise bad_request("malformed multipart body") from None


async def _read_multipart(request: web.Request, limit: int, target: dict[str, Any], client: _ClientDeadline) -> None:
    """The text fields into target; every chunk that arrives moves the client's deadline on."""
    size = parts = keys = 0
    reader = await request.multipart()
    while True:
        part = await reader.next()
        client.progressed()
        if part is None:
            return
        _check_count(parts)
        parts += 1
        if not isinstance(part, BodyPartReader):
            raise bad_request("nested multipart bodies are not supported")
        chunks: list[bytes] = []
        while chunk := await part.read_chunk():
            client.progressed()
            size += len(chunk)
            if size > limit:
                raise too_large()
            if part.filename is None:
                chunks.append(chunk)
        if part.name is None or part.filename is not None:
            continue
        keys += len(part.name)
        _check_key_space(keys)
        if part.headers.get(hdrs.CONTENT_ENCODING, "identity").lower() != "identity":
            # a compressed field could inflate far beyond the limit counted above
            raise bad_request("compressed multipart fields are not supported")
        charset = part.get_charset("utf-8")
        try:
            value = part.decode(b"".join(chunks)).decode(charset)
        except (LookupError, UnicodeDecodeError):
            raise bad_request("invalid byte sequence in UTF-8") from None
        _add_form_value(target, part.name, value)


async def params(request: web.Request) -> dict[str, Any]:
    """All parameters of the request; the body wins over the query string, as in Grape."""
    parsed_for = _PARSED_FOR.get()
    if parsed_for is not None and parsed_for() is request:
        cached: dict[str, Any] | None = request.get(_PARAMS_KEY)  # None once released
        if cached is not None:
            return cached
        failed = request.get(_PARAMS_ERROR_KEY)
        if failed is not None:
            raise _bare(failed)
    try:
        merged: dict[str, Any] = {}
        if request.query_string:  # the hook calls carry none: no query mapping built for them
            _check_count(request.query_string.count("&"))
            _check_key_space(sum(len(key) for key in request.query))
            for key, value in request.query.items():
                _add_form_value(merged, key, value)
        if request.body_exists:
            # Rack's params: the query's merged with the body's, key by key (not deeply)
            raw_type = request.headers.get(hdrs.CONTENT_TYPE)
            # the hooks' exact type needs no parsing (aiohttp's copies the type's parameters each time)
            content_type = JSON if raw_type == JSON else request.content_type
            if content_type == MULTIPART:
                form: dict[str, Any] = {}
                await _decode_multipart(request, body_limit(request), form)
                merged.update(form)
            else:
                # A small body (a hook's JSON) that has arrived with its headers is within every
                # consumer's limit (SMALL_BODY): neither the limit nor a read is needed for it.
                body = _arrived_body(request, SMALL_BODY)
                if body is None:
                    body = await _read(request, body_limit(request))
                if content_type == FORM:
                    form = {}
                    _decode_form(body, form)
                    merged.update(form)
                elif content_type in JSON_TYPES and body.strip():
                    merged.update(_decode_json(body, content_type))
                # any other type (XML...) carries no parameters Grape would read
    except ApiError as exc:
        # A copy without its traceback: the frames of the failed parse hold the whole decoded body,
        # which a keep-alive connection would keep until its next request.
        request[_PARAMS_ERROR_KEY] = _bare(exc)
        _PARSED_FOR.set(weakref.ref(request))
        raise
    request[_PARAMS_KEY] = merged
    _PARSED_FOR.set(weakref.ref(request))
    return merged


def _bare(error: ApiError) -> ApiError:
    """The same answer, as an exception never raised: no traceback, no frames, no cause."""
    return ApiError(error.status, error.body, error.headers, close_connection=error.close_connection)


def query_value(request: web.Request, name: str) -> str | None:
    """A plain query parameter as Rack reads it: the last of its values when it is given twice."""
    values = request.query.getall(name, None)
    return values[-1] if values else None


async def query_or_body_param(request: web.Request, name: str) -> Any:
    """A credential parameter: from the query string, and from the body only when the query has none.

    The body is then read within the route's limit, before anyone is authenticated; every other
    credential comes from a header, checked before the body is touched.
    """
    value = query_value(request, name)
    if value is not None or not request.body_exists:
        return value
    length = request.content_length
    if length is None or length > PRE_AUTH_BODY_LIMIT:
        # No client that sends its credentials in the body sends more than this with them (old
        # GitLab Shell's small JSON with `secret_token`): an anonymous client gets 401, not a read
        # of up to the route's limit (32 MiB on shell routes).
        return None
    try:
        return (await params(request)).get(name)
    except ApiError as exc:
        if exc.status == 413 or exc.close_connection:
            raise  # too large, or past reading: whoever sent it, the connection goes with this answer
        return None  # an unreadable body is not credentials: 401, not the body's 400


def _grape_messages(errors: Mapping[str, Any], prefix: str = "") -> list[str]:
    messages: list[str] = []
    for field, detail in errors.items():
        if field == "_schema":  # the nested value itself was wrong (not an object): name the parent
            name = prefix or "body"
        else:
            name = f"{prefix}[{field}]" if prefix else str(field)
        if isinstance(detail, Mapping):
            messages.extend(_grape_messages(detail, name))
            continue
        texts = detail if isinstance(detail, list) else [detail]
        for text in texts:
            if isinstance(text, Mapping):
                messages.extend(_grape_messages(text, name))
                continue
            wording = _GRAPE_WORDING.get(str(text))
            if wording is None:
                if str(text).startswith("Must be one of"):
                    wording = "does not have a valid value"
                elif str(text).startswith("Longer than maximum length"):
                    # Grape's `length: { maximum: }` wording
                    wording = f"is expected to have length less than or equal to {str(text).split()[-1].rstrip('.')}"
                else:
                    wording = "is invalid"
            messages.append(f"{name} {wording}")
            break
    return messages


def load(schema: Schema, data: Mapping[str, Any]) -> dict[str, Any]:
    """Validate with a marshmallow schema; failures become Grape's 400 `{"error": "x is missing, ..."}`."""
    try:
        return schema.load(data)  # type: ignore[no-any-return]
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, Mapping) else {"_schema": exc.messages}
        raise grape_error(", ".join(_grape_messages(messages))) from None


async def load_params(request: web.Request, schema: Schema) -> dict[str, Any]:
    return load(schema, await params(request))
