"""The one id parser: a database id (bigint, positive) from what a client sent; and Grape's Integer
coercion, the rule the schemas' integers and kas's hand-parsed counters share."""

from __future__ import annotations

import re
from typing import Any

BIGINT_MAX = 2**63 - 1


def as_id(value: Any, *, lenient: bool = False) -> int | None:
    """An id, or None when the value is not one.

    Strict (path segments, Grape's `type: Integer` on :id): ASCII digits within bigint range.
    Lenient (gitlab-shell's and Gitaly's key_id / user_id, which arrive as strings or numbers): a
    positive int, or digits with white space around them; 0 is nobody.
    """
    if lenient:
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return value if 0 < value <= BIGINT_MAX else None
        if isinstance(value, str):
            text = value.strip()
            # ASCII digits only ("²" is a digit to str.isdigit() but not to int()), and few enough
            # for int() (it refuses over 4,300) and bigint
            if text.isascii() and text.isdigit() and len(text) <= 19:
                number = int(text)
                return number if 0 < number <= BIGINT_MAX else None
        return None
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        number = int(value)
        return number if number <= BIGINT_MAX else None
    return None


def fits_bigint(digits: str) -> bool:
    """Whether ASCII digits are a number a bigint column can hold (without int() on 5,000 of them)."""
    return len(digits) <= 19 and int(digits) <= BIGINT_MAX


# Grape's Integer within 64 bits (what PostgreSQL's bigint and Redis's INCRBY hold)
INTEGER_MIN, INTEGER_MAX = -(2**63), 2**63 - 1
# decimal text (white space around it, a sign) of few enough digits for int(), which refuses over 4,300
_GRAPE_INTEGER = re.compile(r"\s*[+-]?\d{1,64}\s*\Z", re.ASCII)


def grape_integer(value: Any) -> int | None:
    """Grape's Integer coercion: numbers and decimal strings; not booleans, not fractions (5.5)."""
    if type(value) is int:
        number = value
    elif (isinstance(value, float) and value.is_integer()) or (isinstance(value, str) and _GRAPE_INTEGER.match(value)):
        number = int(value)
    else:
        return None
    return number if INTEGER_MIN <= number <= INTEGER_MAX else None
