"""Ruby's Date.parse, for the spellings GitLab's clients send: one parser for every date a client
gives (Grape's Date parameters, a token's expires_at)."""

from __future__ import annotations

import re
from datetime import date, datetime

# Date.parse accepts far more than ISO 8601; these are the spellings seen in CustomersDot traffic,
# GitLab's docs and gitlab-shell users ("2021-06-13", "13 Jun 2021", "Jun 13, 2021", "2021/06/13",
# "13/06/2021", "13.06.2021", "20210613"). Day before month where both are numbers, as Ruby reads them.
_FORMATS = (
    "%d %b %Y",
    "%d %B %Y",
    "%b %d %Y",
    "%B %d %Y",
    "%b %d, %Y",
    "%B %d, %Y",
    "%a, %d %b %Y",
    "%a %d %b %Y",
    "%d-%b-%Y",
    "%Y/%m/%d",
    "%Y%m%d",
    "%d/%m/%Y",
    "%d-%m-%Y",
    "%d.%m.%Y",
)
_MONTHS = {
    name: number
    for number, name in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], start=1
    )
}
_ISO_DATE_THEN_TIME = re.compile(r"(\d{4}-\d{2}-\d{2})[T ].*")


def parse_ruby_date(text: str) -> date | None:
    """The date in `text` as Date.parse reads the common spellings, or None."""
    cleaned = text.strip().strip('"').strip()
    if not cleaned:
        return None
    for parse in (date.fromisoformat, lambda value: datetime.fromisoformat(value).date()):
        try:
            return parse(cleaned)
        except ValueError:
            pass
    for pattern in _FORMATS:
        try:
            return datetime.strptime(cleaned, pattern).date()
        except ValueError:
            continue
    iso_prefix = _ISO_DATE_THEN_TIME.fullmatch(cleaned)
    if iso_prefix:
        return _date_or_none(iso_prefix.group(1))
    # a month's name with a day and a year in either order ("24 Jul 2020 12:00", "July 24th 2020")
    words = re.findall(r"[A-Za-z]+|\d+", cleaned)
    month = next((_MONTHS[word[:3].lower()] for word in words if word[:3].lower() in _MONTHS), None)
    numbers = [int(word) for word in words if word.isdigit()]
    if month is not None and len(numbers) == 2:
        day, year = (numbers[0], numbers[1]) if numbers[0] <= 31 < numbers[1] else (numbers[1], numbers[0])
        try:
            return date(year, month, day)
        except ValueError:
            return None
    return None


def _date_or_none(iso: str) -> date | None:
    try:
        return date.fromisoformat(iso)
    except ValueError:
        return None
