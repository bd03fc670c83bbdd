"""GitLab's Grape parameter coercions as marshmallow fields: one of each, for every consumer.

Grape coerces with dry-types (grape lib/grape/validations/types/primitive_coercer.rb): `Integer` from
integers and decimal text, `String` from text and numbers (an Array or a Hash is invalid), `Boolean`
from true/false and "1"/"0"/"yes"/"no"/..., `Date` with Ruby's Date.parse, and "" as nil for every
type but String. A failure is Grape's 400 `{"error": "x is invalid"}`: service.params renders every
message it does not know that way, so the message texts below are not part of the API.

Where this service is stricter than Grape, it is because the value goes to PostgreSQL, and a value
the database would refuse must be the caller's 400, never a 500:
- an integer past 64 bits (bigint) is invalid; narrower columns add a `validate.Range`;
- a fraction (5.5) is invalid rather than truncated as Ruby's Integer(5.5) does (money and counts:
  10.5 seats is a caller's mistake);
- text with a NUL character is invalid (PostgreSQL text cannot hold one).

Consumers differ in one thing only, and say so with a keyword: `blank_is_nil=True` (CustomersDot,
as Grape does) turns "" and whitespace into None, which `allow_none=False` then reports as
"is empty"; without it (kas, the admin API) a blank value is "is invalid".
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from marshmallow import fields

# Grape's Integer coercion with the 64-bit range, shared with the hand-parsed POST /usage_metrics.
from service.domain.ruby_date import parse_ruby_date
from service.domain.ids import grape_integer

__all__ = [
    "GrapeBoolean",
    "GrapeInteger",
    "GrapeString",
    "RubyDate",
    "parse_ruby_date",
]

class _NilWhenBlank(fields.Field[Any]):
    """The `blank_is_nil` keyword, and validators that skip the None a blank value became."""

    def __init__(self, *, blank_is_nil: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.blank_is_nil = blank_is_nil

    def _blank(self, value: Any) -> bool:
        """Grape turns "" into nil for non-String types; `allow_blank: false` then says "is empty"."""
        if not (self.blank_is_nil and isinstance(value, str) and not value.strip()):
            return False
        if not self.allow_none:
            raise self.make_error("null")
        return True

    def _validate(self, value: Any) -> None:
        # The range and choice rules apply to values; the model's presence rules decide about nil
        # afterwards ("seats can't be blank").
        if value is not None:
            super()._validate(value)


class GrapeInteger(_NilWhenBlank):
    """Grape's Integer: 5, "5", " -5 " and 5.0; never 5.5, "5.0", "abc", true, or past 64 bits."""

    default_error_messages = {"invalid": "Not a valid integer."}

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        if self._blank(value):
            return None
        number = grape_integer(value)
        if number is None:
            raise self.make_error("invalid")
        return number


class GrapeBoolean(_NilWhenBlank, fields.Boolean):
    """Grape's Boolean (dry-types Params::Bool): true/false, 1/0, "true"/"false", "yes"/"no", "on"/"off"..."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        if self._blank(value):
            return None
        return super()._deserialize(value, attr, data, **kwargs)


class RubyDate(_NilWhenBlank):
    """Grape's Date: Ruby's Date.parse of the text (see parse_ruby_date); dumped as ISO 8601."""

    default_error_messages = {"invalid": "Not a valid date."}

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        if self._blank(value):
            return None
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        parsed = parse_ruby_date(value) if isinstance(value, str) else None
        if parsed is None:
            raise self.make_error("invalid")
        return parsed

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return None if value is None else value.isoformat()


class GrapeString(fields.String):
    """Grape's String: text, and numbers as their decimal text (42 -> "42"); never a list, an object,
    a boolean or a NUL character.
    """

    default_error_messages = {"invalid": "Not a valid string.", "nul": "Contains a NUL character."}

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> str:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        text: str = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in text:
            # PostgreSQL text cannot hold NUL: the caller's 400 rather than the database's 500
            raise self.make_error("nul")
        return text
