"""CustomersDot request (*In) and response (*Out) schemas, with Grape's coercions.

Grape coerces `Date` with Ruby's `Date.parse` (the seed docs send "13 Jun 2021"), `Integer` from
digits only, blank strings to nil, and names a bad item of an array `parent[child]` without its
index. The fields and the base schema below do the same, so service.params.load renders GitLab's
`{"error": "packs[purchase_xid] is missing"}` shapes. Unknown parameters are ignored, as in Grape.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import orjson
from marshmallow import EXCLUDE, Schema, ValidationError, fields, pre_load, validate

INT4 = validate.Range(
    min=-(2**31), max=2**31 - 1
)  # integer columns: out of range is "is invalid", never a 500
INT8 = validate.Range(min=-(2**63), max=2**63 - 1)
# seats, max_seats_used, number_of_minutes: counts (GitLab's numericality greater_than_or_equal_to: 0)
COUNT = validate.Range(min=0, max=2**31 - 1)
# GitLab's text limits: plans.name (string, 255), ci_minutes_additional_packs.purchase_xid (text_limit 50)
PLAN_CODE_MAX = 255
PURCHASE_XID_MAX = 50

NOT_A_DATE = "Not a valid date."
NOT_AN_INTEGER = "Not a valid integer."
_INTEGER_TEXT = re.compile(r"\A\s*[+-]?\d+\s*\Z")

# Ruby's Date.parse accepts far more than ISO 8601; these are the spellings seen in CustomersDot
# traffic and GitLab's docs ("2021-06-13", "13 Jun 2021", "Jun 13, 2021", "2021/06/13", "13/06/2021").
_DATE_FORMATS = (
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
    "%d/%m/%Y",
    "%d-%m-%Y",
    "%d.%m.%Y",
)


def parse_ruby_date(text: str) -> date | None:
    """The date in `text` the way Date.parse reads the common spellings, or None."""
    cleaned = text.strip().strip('"').strip()
    if not cleaned:
        return None
    try:
        return date.fromisoformat(cleaned)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(cleaned).date()
    except ValueError:
        pass
    for pattern in _DATE_FORMATS:
        try:
            return datetime.strptime(cleaned, pattern).date()
        except ValueError:
            continue
    return None


def _blank(field: fields.Field[Any], value: Any) -> bool:
    """Grape turns "" into nil for non-String types; `allow_blank: false` then says "is empty"."""
    if isinstance(value, str) and not value.strip():
        if not field.allow_none:
            raise field.make_error("null")
        return True
    return False


class RubyDate(fields.Field[date]):
    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> Any:
        if _blank(self, value):
            return None
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        if not isinstance(value, str):
            raise ValidationError(NOT_A_DATE)
        parsed = parse_ruby_date(value)
        if parsed is None:
            raise ValidationError(NOT_A_DATE)
        return parsed

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return None if value is None else value.isoformat()


class GrapeInteger(fields.Field[int]):
    """Integers, or their decimal text; never a fraction or a boolean (money: 10.5 seats is invalid)."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> Any:
        if _blank(self, value):
            return None
        if isinstance(value, bool):
            raise ValidationError(NOT_AN_INTEGER)
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and _INTEGER_TEXT.match(value):
            return int(value)
        raise ValidationError(NOT_AN_INTEGER)

    def _validate(self, value: Any) -> None:
        # A blank value is nil, as in Grape: the range rules apply to numbers only, and the
        # model's presence rules decide about nil afterwards ("seats can't be blank").
        if value is not None:
            super()._validate(value)


class GrapeString(fields.String):
    """Text PostgreSQL can store: a NUL character is "is invalid" rather than a database error."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in text:
            raise ValidationError("Not a valid string.")
        return text


class GrapeBoolean(fields.Boolean):
    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> Any:
        if _blank(self, value):
            return None
        return super()._deserialize(value, attr, data, **kwargs)


def _collapse_indices(messages: Any) -> Any:
    """{"packs": {0: {"x": [...]}, 3: {...}}} -> {"packs": {"x": [...]}}: Grape names `packs[x]`."""
    if not isinstance(messages, Mapping):
        return messages
    if messages and all(isinstance(key, int) for key in messages):
        merged: dict[Any, Any] = {}
        for nested in messages.values():
            collapsed = _collapse_indices(nested)
            if isinstance(collapsed, Mapping):
                for key, value in collapsed.items():
                    merged.setdefault(key, value)
            else:
                return collapsed
        messages = merged
    result = {key: _collapse_indices(value) for key, value in messages.items()}
    if set(result) == {"_schema"}:
        # the item itself is not an object: "packs is invalid"
        return ["Not a valid object."]
    return result


class _GrapeIn(Schema):
    class Meta:
        unknown = EXCLUDE

    def handle_error(self, error: ValidationError, data: Any, *, many: bool, **kwargs: Any) -> None:
        raise ValidationError(_collapse_indices(error.messages))


# --- subscriptions ------------------------------------------------------------------------------


class SubscriptionIn(_GrapeIn):
    """PUT /namespaces/:id/gitlab_subscription: every attribute optional.

    null is accepted here as in Grape; the model rules (seats can't be blank...) decide afterwards.
    """

    start_date = RubyDate(allow_none=True)
    seats = GrapeInteger(allow_none=True, validate=COUNT)
    max_seats_used = GrapeInteger(allow_none=True, validate=COUNT)
    plan_code = GrapeString(allow_none=True, validate=validate.Length(max=PLAN_CODE_MAX))
    end_date = RubyDate(allow_none=True)
    auto_renew = GrapeBoolean(allow_none=True)
    trial = GrapeBoolean(allow_none=True)
    trial_ends_on = RubyDate(allow_none=True)
    trial_starts_on = RubyDate(allow_none=True)
    # GitlabSubscription enum trial_extension_type: { extended: 1, reactivated: 2 }
    trial_extension_type = GrapeInteger(allow_none=True, validate=validate.OneOf([1, 2]))


class SubscriptionCreateIn(SubscriptionIn):
    """POST: `requires :start_date`."""

    start_date = RubyDate(required=True, allow_none=True)


class PlanOut(Schema):
    code = fields.String(allow_none=True)
    name = fields.String(allow_none=True)
    trial = fields.Boolean(allow_none=True)
    auto_renew = fields.Boolean(allow_none=True)
    upgradable = fields.Boolean(allow_none=True)
    exclude_guests = fields.Boolean(allow_none=True)


class UsageOut(Schema):
    seats_in_subscription = fields.Integer(allow_none=True)
    seats_in_use = fields.Integer(allow_none=True)
    max_seats_used = fields.Integer(allow_none=True)
    seats_owed = fields.Integer(allow_none=True)


class BillingOut(Schema):
    subscription_start_date = RubyDate(allow_none=True)
    subscription_end_date = RubyDate(allow_none=True)
    trial_ends_on = RubyDate(allow_none=True)


class SubscriptionOut(Schema):
    """API::Entities::GitlabSubscription."""

    plan = fields.Nested(PlanOut)
    usage = fields.Nested(UsageOut)
    billing = fields.Nested(BillingOut)


# --- compute minutes ----------------------------------------------------------------------------


class PackIn(_GrapeIn):
    """One pack; null values pass Grape and fail the model ("Unable to save additional packs")."""

    number_of_minutes = GrapeInteger(required=True, allow_none=True, validate=COUNT)
    expires_at = RubyDate(required=True, allow_none=True)
    purchase_xid = GrapeString(required=True, allow_none=True, validate=validate.Length(max=PURCHASE_XID_MAX))


class PacksIn(_GrapeIn):
    """POST /namespaces/:id/minutes since GitLab 14.x: `requires :packs, type: Array`."""

    packs = fields.List(fields.Nested(PackIn), required=True)


class FlatPackIn(PackIn):
    """The first version of the endpoint: one pack as top-level parameters."""


class PackOut(Schema):
    """EE::API::Entities::Ci::Minutes::AdditionalPack."""

    namespace_id = fields.Integer()
    expires_at = RubyDate()
    number_of_minutes = fields.Integer()
    purchase_xid = fields.String()


# --- upcoming reconciliations -------------------------------------------------------------------


class ReconciliationIn(_GrapeIn):
    namespace_id = GrapeInteger(required=True, allow_none=False, validate=INT8)  # allow_blank: false
    next_reconciliation_date = RubyDate(required=True, allow_none=True)
    display_alert_from = RubyDate(required=True, allow_none=True)


def _decode_json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


class ReconciliationsIn(_GrapeIn):
    """PUT /internal/upcoming_reconciliations: `requires :upcoming_reconciliations, type: Array[JSON]`."""

    upcoming_reconciliations = fields.List(fields.Nested(ReconciliationIn), required=True)

    @pre_load
    def _json_items(self, data: Any, **kwargs: Any) -> Any:
        # Array[JSON]: the array, or each of its items, may arrive as a JSON-encoded string.
        if not isinstance(data, Mapping) or "upcoming_reconciliations" not in data:
            return data
        items = _decode_json(data["upcoming_reconciliations"])
        if isinstance(items, Mapping):
            items = [items]
        if isinstance(items, list):
            items = [_decode_json(item) for item in items]
        return {**data, "upcoming_reconciliations": items}


class ReconciliationDeleteIn(_GrapeIn):
    namespace_id = GrapeInteger(required=True, allow_none=False, validate=INT8)
