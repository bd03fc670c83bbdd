"""API errors in GitLab's JSON shapes, rendered in exactly one place (reference section 0.1)."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
import orjson
from aiohttp import web

log = logging.getLogger("gitlab_internal_api")

JSON = "application/json"


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type=JSON, headers=headers)


class ApiError(Exception):
    """An HTTP answer with a JSON body: `{"message": ...}`, `{"error": ...}` or any other shape."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body
        self.headers = headers


def render_api_error(message: Any, status: int) -> ApiError:
    return ApiError(status, {"message": message})


def unauthorized(reason: str | None = None) -> ApiError:
    return render_api_error("401 Unauthorized" + (f" - {reason}" if reason else ""), 401)


def forbidden(reason: str | None = None) -> ApiError:
    return render_api_error("403 Forbidden" + (f" - {reason}" if reason else ""), 403)


def bad_request(reason: str | None = None) -> ApiError:
    # GitLab writes "Bad request" with a lower-case r.
    return render_api_error("400 Bad request" + (f" - {reason}" if reason else ""), 400)


def not_found(resource: str | None = None) -> ApiError:
    return render_api_error(f"404 {resource} Not Found" if resource else "404 Not Found", 404)


def record_not_found() -> ApiError:
    # ActiveRecord::RecordNotFound is rescued globally with a lower-case "found".
    return render_api_error("404 Not found", 404)


def unprocessable_entity() -> ApiError:
    return render_api_error("422 Unprocessable Entity", 422)


def conflict(message: Any = "409 Conflict") -> ApiError:
    return render_api_error(message, 409)


def validation_error(errors: dict[str, list[str]]) -> ApiError:
    return render_api_error(errors, 400)


def grape_error(message: str) -> ApiError:
    """Grape's parameter validation answer: 400 `{"error": "x is missing"}`."""
    return ApiError(400, {"error": message})


@web.middleware
async def error_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except ApiError as exc:
        return json_response(exc.body, exc.status, exc.headers)
    except web.HTTPException as exc:
        if exc.status == 404:
            # GitLab's catch-all route answers unknown paths this way.
            return json_response({"error": "404 Not Found"}, 404)
        if exc.status == 405:
            return json_response({"error": "405 Not Allowed"}, 405, {"Allow": exc.headers.get("Allow", "")})
        if exc.status == 413:
            return json_response({"message": "413 Request Entity Too Large"}, 413)
        if 300 <= exc.status < 400:
            # Clients never follow redirects from this API (gitlab-shell >= 14.x refuses them).
            log.error("refusing to redirect %s %s", request.method, request.path)
            return json_response({"message": "500 Internal Server Error"}, 500)
        if exc.status >= 400:
            return json_response({"message": f"{exc.status} {exc.reason}"}, exc.status)
        raise
    except asyncpg.DataError as exc:
        # PostgreSQL refused a value the request carried (a NUL byte, a number out of range...):
        # the caller's input, so a 400, never a 500.
        log.info("invalid input on %s %s: %s", request.method, request.path, type(exc).__name__)
        return json_response({"message": "400 Bad request"}, 400)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return json_response({"message": "500 Internal Server Error"}, 500)
