"""API errors in GitLab's JSON shapes, rendered in exactly one place (reference section 0.1)."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
import orjson
from aiohttp import web

from service import app_keys
from service.db.pool import REFUSED_VALUE_ERRORS, describe_outage, is_database_outage
from service.domain import errors as domain
from service.domain.token_box import UNREADABLE_SECRET, UnreadableToken
from service.unavailable import RETRY_AFTER_SECONDS, BackendUnavailable
from service.wire import OneWriteResponse

log = logging.getLogger("gitlab_internal_api")

JSON = "application/json"
# aiohttp copies the headers it is given; content_type= would parse and rebuild the header instead
_JSON_HEADERS = {"Content-Type": JSON}


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return json_bytes_response(orjson.dumps(body), status, headers)


def json_bytes_response(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """An answer whose JSON is already encoded (remembered answers of the hot paths)."""
    return OneWriteResponse(
        body=body, status=status, headers=_JSON_HEADERS if headers is None else {**headers, **_JSON_HEADERS}
    )


class ApiError(Exception):
    """An HTTP answer with a JSON body: `{"message": ...}`, `{"error": ...}` or any other shape."""

    def __init__(
        self, status: int, body: Any, headers: dict[str, str] | None = None, *, close_connection: bool = False
    ) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body
        self.headers = headers
        # The connection cannot carry another request (its body could not be read to its end):
        # answered with `Connection: close`, and closed once the answer is written.
        self.close_connection = close_connection


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


def too_large() -> ApiError:
    return render_api_error("413 Request Entity Too Large", 413)


def request_timeout() -> ApiError:
    """The client sent nothing of its body for too long: the rest is not waited for, and the
    connection, whose stream is past use, closes with the answer."""
    return ApiError(408, {"message": "408 Request Timeout"}, close_connection=True)


def client_closed_request() -> ApiError:
    """The client closed its connection before its body was read (a timeout on its side, a killed
    gitlab-shell): nobody to answer, and not the service's error. The access log and the metrics
    say 499, nginx's status for a client that closed its request."""
    return ApiError(499, {"message": "499 Client Closed Request"}, close_connection=True)


def internal_error() -> ApiError:
    return render_api_error("500 Internal Server Error", 500)


def kas_unauthorized() -> ApiError:
    """Gitlab::Kas's refusal of a missing or invalid Gitlab-Kas-Api-Request JWT."""
    return render_api_error("KAS JWT authentication invalid", 401)


def invalid_token(description: str) -> ApiError:
    """APIGuard's answer to an expired or revoked token (OAuth 2's error shape)."""
    return ApiError(401, {"error": "invalid_token", "error_description": description})


def insufficient_scope(scopes: str) -> ApiError:
    """APIGuard's answer to a token without the scope the route needs."""
    return ApiError(
        403,
        {
            "error": "insufficient_scope",
            "error_description": "The request requires higher privileges than provided by the access token.",
            "scope": scopes,
        },
    )


def no_content() -> web.Response:
    return OneWriteResponse(status=204)


def accepted() -> web.Response:
    """Grape's accepted!: 202 {"message": "202 Accepted"}."""
    return json_response({"message": "202 Accepted"}, 202)


def rendered(error: ApiError) -> web.Response:
    return json_response(error.body, error.status, error.headers)


def conflict(message: Any = "409 Conflict") -> ApiError:
    return render_api_error(message, 409)


def validation_error(errors: dict[str, list[str]]) -> ApiError:
    return render_api_error(errors, 400)


def grape_error(message: str) -> ApiError:
    """Grape's parameter validation answer: 400 `{"error": "x is missing"}`."""
    return ApiError(400, {"error": message})


def from_domain(exc: domain.DomainError) -> ApiError:
    """The one place where the domain's refusals become GitLab's answers."""
    if isinstance(exc, domain.GitAccessError):
        return _allowed_denial(exc)
    if isinstance(exc, domain.CommandRefused):
        # The second special case: gitlab-shell prints the message of a 200 with success:false.
        body = {"success": False} if exc.message is None else {"success": False, "message": exc.message}
        return ApiError(200, body)
    if isinstance(exc, domain.Invalid):
        return validation_error(exc.errors)
    if isinstance(exc, domain.Conflict):
        return conflict(exc.message)
    if isinstance(exc, domain.Missing):
        return not_found(exc.resource) if exc.resource else record_not_found()
    if isinstance(exc, domain.NoRoute):
        return not_found()
    if isinstance(exc, domain.Denied):
        return forbidden(exc.reason)
    if isinstance(exc, domain.NotPermitted):
        return render_api_error(exc.message, 403)
    if isinstance(exc, domain.BadRequest):
        return bad_request(exc.reason)
    if isinstance(exc, domain.Refused):
        return render_api_error(exc.message, 400)
    if isinstance(exc, domain.InvalidParameter):
        return grape_error(exc.message)
    if isinstance(exc, domain.Unprocessable):
        return unprocessable_entity()
    raise TypeError(f"unmapped domain error {exc!r}")


# The documented special case: /allowed (the only route whose domain raises GitAccessError) answers
# its denials as {"status": false, "message": ...}, which gitlab-shell shows the user. The 401 (not
# 403) is GitLab's: "If we return 403 the custom message we return won't be shown to the user"
# (lib/api/internal/base.rb).
_ALLOWED_STATUS: dict[type[domain.GitAccessError], int] = {
    domain.AccessDenied: 401,
    domain.NotFound: 404,
    domain.AccessTimeout: 503,
    domain.ProjectCreationError: 422,
}


def _allowed_denial(exc: domain.GitAccessError) -> ApiError:
    if isinstance(exc, domain.RateLimited):
        # ApplicationRateLimiter's shape, not the /allowed one. No Retry-After: gitlab-shell's HTTP
        # client would wait that long before each retry.
        return ApiError(429, {"message": {"error": exc.message}})
    status = next(code for kind, code in _ALLOWED_STATUS.items() if isinstance(exc, kind))
    return ApiError(status, {"status": False, "message": exc.message})


async def error_response(request: web.Request, error: Exception) -> web.StreamResponse:
    """The answer to a request that raised `error`: every domain and API error becomes HTTP here,
    in GitLab's shapes (service/middleware.py calls it). Re-raises what it does not render."""
    try:
        raise error
    except ApiError as exc:
        response = rendered(exc)
        if exc.close_connection:
            response.force_close()
        return response
    except domain.DomainError as exc:
        return rendered(from_domain(exc))
    except (asyncpg.UniqueViolationError, asyncpg.ForeignKeyViolationError) as exc:
        # A race past the checks: two requests took the same name or path (the checks before the
        # INSERT saw neither), or a row was deleted between its lookup and a write that refers to
        # it. Answered as the check would have answered had it run after the other request.
        log.info("%s %s lost a race: %s", request.method, request.path, type(exc).__name__)
        return rendered(_lost_race(exc))
    except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError) as exc:
        # Concurrent writes PostgreSQL could not order; the transaction was rolled back whole.
        log.warning("%s %s rolled back by PostgreSQL: %s", request.method, request.path, type(exc).__name__)
        return _retry_later()
    except web.HTTPException as exc:
        if exc.status == 404:
            # GitLab's catch-all route answers unknown paths this way.
            return json_response({"error": "404 Not Found"}, 404)
        if exc.status == 405:
            return json_response({"error": "405 Not Allowed"}, 405, {"Allow": exc.headers.get("Allow", "")})
        if exc.status == 413:
            return rendered(too_large())
        if 300 <= exc.status < 400:
            # Clients never follow redirects from this API (gitlab-shell >= 14.x refuses them).
            log.error("refusing to redirect %s %s", request.method, request.path)
            return rendered(internal_error())
        if exc.status >= 400:
            return json_response({"message": f"{exc.status} {exc.reason}"}, exc.status)
        raise
    except BackendUnavailable:
        return _retry_later()  # whoever raised it logged the outage (the Redis store does, once)
    except UnreadableToken:
        # A hook's URL or token sealed with another db_key_base: the server's configuration, not
        # the request; one line that says what to check, not a traceback per request.
        log.error("%s %s: %s", request.method, request.path, UNREADABLE_SECRET)
        return rendered(internal_error())
    except REFUSED_VALUE_ERRORS as exc:
        # The caller's input, so a 400, never a 500. The schemas' limits (schemas/*.py) should have
        # refused it first; this is the net under them.
        log.info("invalid input on %s %s: %s", request.method, request.path, type(exc).__name__)
        return rendered(bad_request())
    except Exception as exc:
        if is_database_outage(exc):
            # Connections of the pool may be dead (a restart, a failover): drop them all, so the
            # next requests connect anew (to the promoted primary) instead of inheriting them.
            await request.app[app_keys.DB_POOL].expire_connections()
            request.app[app_keys.OUTAGES].down("database", describe_outage(exc))
            return _retry_later()
        log.exception("unhandled error on %s %s", request.method, request.path)
        return rendered(internal_error())


# A write naming a row another request deleted meanwhile: the lookup's 404, had it come second. By
# the foreign key's column (the constraint is named <table>_<column>_fkey; its message may be in
# the server's language).
_GONE_BY_COLUMN = {
    "user_id": "User",
    "owner_id": "User",
    "creator_id": "User",
    "created_by_id": "User",
    "namespace_id": "Namespace",
    "parent_id": "Group",
    "project_id": "Project",
    "deploy_key_id": "Deploy Key",
}


def _lost_race(exc: asyncpg.UniqueViolationError | asyncpg.ForeignKeyViolationError) -> ApiError:
    """The net under the domain's own race answers (domain.unique_races_answered): a unique index
    nobody answered for is a bare 409; a foreign key naming a deleted row, that row's 404 (a key
    still referenced by a row being deleted, a 409)."""
    if isinstance(exc, asyncpg.ForeignKeyViolationError):
        table, constraint = exc.table_name or "", exc.constraint_name or ""
        # A write into the referencing table reports that table (its constraint starts with the
        # table's name); a deletion of a row still referenced reports the referenced table.
        if constraint.startswith(f"{table}_"):
            resource = _GONE_BY_COLUMN.get(constraint.removeprefix(f"{table}_").removesuffix("_fkey"))
            if resource is not None:
                return not_found(resource)
    return conflict()


def _retry_later() -> web.Response:
    """A retryable 503: GitLab Shell, Gitaly and kas retry it (honouring Retry-After)."""
    return json_response({"message": "503 Service Unavailable"}, 503, {"Retry-After": str(RETRY_AFTER_SECONDS)})
