"""What every admin handler shares: the caller's identity, parameter loading and paginated answers
(GitLab's X-* and Link headers). Domain errors are rendered by the error middleware (service/errors.py)."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import asyncpg
from aiohttp import web
from yarl import URL

from service import app_keys
from service.auth import Identity
from service.current_settings import current_settings
from service.domain.admin.pagination import Page, Paged, page_of
from service.domain.ids import as_id
from service.domain.app_settings import AppSettings
from service.domain.urls import InstanceUrls
from service.errors import grape_error, json_response
from service.params import load_params as load_params  # the one loader, re-exported for the admin routes

T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def identity(request: web.Request) -> Identity:
    return request[app_keys.IDENTITY]


def actor_id(request: web.Request) -> int:
    user_id = identity(request).user_id
    assert user_id is not None  # the USER and ADMIN consumers always resolve a user
    return user_id


def pool(request: web.Request) -> asyncpg.Pool[asyncpg.Record]:
    return request.app[app_keys.DB_POOL]


def urls(request: web.Request) -> InstanceUrls:
    return request.app[app_keys.URLS]


async def app_settings(request: web.Request) -> AppSettings:
    return await current_settings(request.app)


def int_param(request: web.Request, name: str) -> int:
    """A path segment declared `type: Integer` in Grape: anything else is "<name> is invalid"."""
    number = as_id(request.match_info[name])
    if number is None:
        raise grape_error(f"{name} is invalid")
    return number


def require_one_of(values: dict[str, Any], *names: str, blank_is_missing: bool = True) -> None:
    """Grape's at_least_one_of. blank_is_missing=False counts any given value, false included
    (`{"can_push": false}` is an update)."""
    missing: tuple[object, ...] = (None, False, "") if blank_is_missing else (None,)
    if all(values.get(name) in missing for name in names):
        raise grape_error(f"{', '.join(names)} are missing, at least one parameter must be provided")


def page(values: dict[str, Any]) -> Page:
    return page_of(values.get("page"), values.get("per_page"))


def pagination_headers(url: URL, page: Page, total: int) -> dict[str, str]:
    """lib/gitlab/pagination/offset_pagination.rb: X-Page, X-Total, ... and a Link per neighbour."""
    total_pages = max(math.ceil(total / page.per_page), 1)
    next_page = page.page + 1 if page.page < total_pages else None
    prev_page = page.page - 1 if page.page > 1 else None
    # The links repeat the request's own query, minus a private_token: a token must not travel
    # into logs and browser histories through a URL that the answer hands out.
    query = {k: v for k, v in url.query.items() if k not in ("page", "per_page", "private_token")}

    def link(number: int) -> str:
        return str(url.with_query({**query, "page": str(number), "per_page": str(page.per_page)}))

    links = []
    if prev_page is not None:
        links.append(f'<{link(prev_page)}>; rel="prev"')
    if next_page is not None:
        links.append(f'<{link(next_page)}>; rel="next"')
    links.append(f'<{link(1)}>; rel="first"')
    links.append(f'<{link(total_pages)}>; rel="last"')
    return {
        "X-Page": str(page.page),
        "X-Per-Page": str(page.per_page),
        "X-Total": str(total),
        "X-Total-Pages": str(total_pages),
        "X-Next-Page": str(next_page) if next_page else "",
        "X-Prev-Page": str(prev_page) if prev_page else "",
        "Link": ", ".join(links),
    }


def paginated(request: web.Request, current: Page, result: Paged[T], render: Callable[[T], Any]) -> web.Response:
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


