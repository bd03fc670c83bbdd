"""Request parameters the way Grape sees them: query string merged with a JSON or form body."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import orjson
from aiohttp import web
from marshmallow import Schema, ValidationError

from service.errors import ApiError, grape_error

T = TypeVar("T")

_PARAMS_KEY = web.RequestKey("merged_params", dict)

# marshmallow message -> Grape's wording (reference section 0.1)
_GRAPE_WORDING = {
    "Missing data for required field.": "is missing",
    "Field may not be null.": "is empty",
    "Field may not be blank.": "is empty",
    "Shorter than minimum length 1.": "is empty",
}


def _add_form_value(target: dict[str, Any], key: str, value: str) -> None:
    # Rack's nested keys, one level deep: scopes[]=a, push_options[]=x, alert[fingerprint]=y
    if key.endswith("[]"):
        target.setdefault(key[:-2], [])
        if isinstance(target[key[:-2]], list):
            target[key[:-2]].append(value)
        return
    if "[" in key and key.endswith("]"):
        outer, inner = key[:-1].split("[", 1)
        nested = target.setdefault(outer, {})
        if isinstance(nested, dict):
            nested[inner] = value
        return
    target[key] = value


async def params(request: web.Request) -> dict[str, Any]:
    """All parameters of the request; the body wins over the query string, as in Grape."""
    cached: dict[str, Any] | None = request.get(_PARAMS_KEY)
    if cached is not None:
        return cached
    merged: dict[str, Any] = {}
    for key, value in request.query.items():
        _add_form_value(merged, key, value)
    if request.body_exists:
        body = await request.read()
        content_type = request.content_type
        if body.strip() and content_type in ("application/json", "text/plain", "application/octet-stream", ""):
            try:
                decoded = orjson.loads(body)
            except orjson.JSONDecodeError:
                if content_type == "application/json":
                    raise ApiError(400, {"message": "400 Bad request - There was a problem with the JSON"}) from None
                decoded = None
            if isinstance(decoded, dict):
                merged.update(decoded)
            elif decoded is not None:
                raise ApiError(400, {"message": "400 Bad request - The request body must be a JSON object"})
        elif content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            for key, field_value in form.items():
                if isinstance(field_value, str):
                    _add_form_value(merged, key, field_value)
    request[_PARAMS_KEY] = merged
    return merged


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
                wording = "does not have a valid value" if str(text).startswith("Must be one of") else "is invalid"
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
