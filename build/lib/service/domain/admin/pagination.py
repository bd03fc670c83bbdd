"""GitLab's offset pagination: page/per_page in, X-* and Link headers out (lib/gitlab/pagination)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from yarl import URL

DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 100  # Kaminari max_per_page in GitLab's API


@dataclass(frozen=True)
class Page:
    page: int
    per_page: int

    @property
    def limit(self) -> int:
        return self.per_page

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page


def page_of(page: int | None, per_page: int | None) -> Page:
    """Out-of-range values are clamped, as Kaminari does, rather than refused."""
    size = per_page if per_page and per_page > 0 else DEFAULT_PER_PAGE
    return Page(max(page or 1, 1), min(size, MAX_PER_PAGE))


def pagination_headers(url: URL, page: Page, total: int) -> dict[str, str]:
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
