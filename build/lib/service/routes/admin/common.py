"""What every admin handler shares: domain errors rendered in GitLab's shapes, the caller's
identity, parameter loading and paginated answers."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import asyncpg
from aiohttp import web
from marshmallow import Schema

from service import keys
from service.auth import Identity
from service.db.admin_pages import Paged
from service.domain.admin.errors import AdminError, ApiMessage, BadRequest, Conflict, Denied, Invalid, Missing
from service.domain.admin.pagination import Page, page_of, pagination_headers
from service.domain.admin.validation import as_id
from service.domain.app_settings import AppSettings, get_settings
from service.domain.urls import InstanceUrls
from service.errors import (
    ApiError,
    bad_request,
    conflict,
    forbidden,
    grape_error,
    json_response,
    not_found,
    record_not_found,
    render_api_error,
    validation_error,
)
from service.params import load, params

T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def as_api_error(exc: AdminError) -> ApiError:
    """The one place where admin domain errors become HTTP answers."""
    if isinstance(exc, Invalid):
        return validation_error(exc.errors)
    if isinstance(exc, Conflict):
        return conflict(exc.message)
    if isinstance(exc, Missing):
        return not_found(exc.resource) if exc.resource else record_not_found()
    if isinstance(exc, Denied):
        return forbidden(exc.reason)
    if isinstance(exc, BadRequest):
        return bad_request(exc.reason)
    if isinstance(exc, ApiMessage):
        return render_api_error(exc.message, exc.status)
    raise TypeError(f"unmapped admin error {exc!r}")


def _translating(handler: Handler) -> Handler:
    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except AdminError as exc:
            raise as_api_error(exc) from None
        except asyncpg.UniqueViolationError:
            # Two requests raced for the same name or path; the checks before the INSERT saw neither.
            raise conflict() from None

    return wrapper


class AdminRoutes(web.RouteTableDef):
    """A RouteTableDef whose handlers have their domain errors rendered as GitLab does."""

    def route(self, method: str, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        register = super().route(method, path, **kwargs)

        def decorator(handler: Handler) -> Handler:
            register(_translating(handler))
            return handler

        return decorator


def identity(request: web.Request) -> Identity:
    return request[keys.IDENTITY]


def actor_id(request: web.Request) -> int:
    user_id = identity(request).user_id
    assert user_id is not None  # the USER and ADMIN consumers always resolve a user
    return user_id


def pool(request: web.Request) -> asyncpg.Pool:
    return request.app[keys.DB_POOL]


def urls(request: web.Request) -> InstanceUrls:
    return request.app[keys.URLS]


async def app_settings(request: web.Request) -> AppSettings:
    return await get_settings(request.app)


async def load_params(request: web.Request, schema: Schema) -> dict[str, Any]:
    return load(schema, await params(request))


def int_param(request: web.Request, name: str) -> int:
    """A path segment declared `type: Integer` in Grape: anything else is "<name> is invalid"."""
    number = as_id(request.match_info[name])
    if number is None:
        raise grape_error(f"{name} is invalid")
    return number


def require_one_of(values: dict[str, Any], *names: str) -> None:
    """Grape's at_least_one_of."""
    if all(values.get(name) in (None, False, "") for name in names):
        raise grape_error(f"{', '.join(names)} are missing, at least one parameter must be provided")


def page(values: dict[str, Any]) -> Page:
    return page_of(values.get("page"), values.get("per_page"))


def paginated(
    request: web.Request, current: Page, result: Paged[T], render: Callable[[T], Any]
) -> web.Response:
    return json_response(
        [render(item) for item in result.items],
        headers=pagination_headers(request.url, current, result.total),
    )


def paginated_list(request: web.Request, current: Page, items: Sequence[Any]) -> web.Response:
    """Paginate a short list that was read whole (protected refs, client keys)."""
    window = list(items[current.offset : current.offset + current.limit])
    return json_response(window, headers=pagination_headers(request.url, current, len(items)))


def created(body: Any) -> web.Response:
    return json_response(body, 201)


def no_content() -> web.Response:
    return web.Response(status=204)


def accepted() -> web.Response:
    return json_response({"message": "202 Accepted"}, 202)
