"""GitLab's offset pagination: page/per_page in (lib/gitlab/pagination); the X-* and Link headers out
are HTTP, built in service/routes/admin/common.py."""

from __future__ import annotations

from dataclasses import dataclass

# what a list query returns: the rows of one page and the total (re-exported for the routes)
from service.db.rows import Paged as Paged

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
