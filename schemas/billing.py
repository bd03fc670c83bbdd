"""CustomersDot request (*In) and response (*Out) schemas, with Grape's coercions.

Grape coerces `Date` with Ruby's `Date.parse` (the seed docs send "13 Jun 2021"), `Integer` from
digits only, blank strings to nil (schemas/fields.py, `blank_is_nil=True` here), and names a bad item
of an array `parent[child]` without its index. The base schema below does the same, so
service.params.load renders GitLab's `{"error": "packs[purchase_xid] is missing"}` shapes. Unknown
parameters are ignored, as in Grape.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from marshmallow import EXCLUDE, Schema, ValidationError, fields, pre_load, validate

from schemas.fields import GrapeBoolean, GrapeInteger, GrapeString, RubyDate

# Out of range is "is invalid", never a 500: GrapeInteger stops at 64 bits (bigint), COUNT at integer.
# seats, max_seats_used, number_of_minutes: counts (GitLab's numericality greater_than_or_equal_to: 0)
COUNT = validate.Range(min=0, max=2**31 - 1)
# GitLab's text limit of plans.name (string, 255). purchase_xid has none here: Grape takes any string
# and the model's length check (32, service/domain/minutes.py) answers "Unable to save additional
# packs"; the body limit bounds its size.
PLAN_CODE_MAX = 255


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

    start_date = RubyDate(blank_is_nil=True, allow_none=True)
    seats = GrapeInteger(blank_is_nil=True, allow_none=True, validate=COUNT)
    max_seats_used = GrapeInteger(blank_is_nil=True, allow_none=True, validate=COUNT)
    plan_code = GrapeString(allow_none=True, validate=validate.Length(max=PLAN_CODE_MAX))
    end_date = RubyDate(blank_is_nil=True, allow_none=True)
    auto_renew = GrapeBoolean(blank_is_nil=True, allow_none=True)
    trial = GrapeBoolean(blank_is_nil=True, allow_none=True)
    trial_ends_on = RubyDate(blank_is_nil=True, allow_none=True)
    trial_starts_on = RubyDate(blank_is_nil=True, allow_none=True)
    # GitlabSubscription enum trial_extension_type: { extended: 1, reactivated: 2 }
    trial_extension_type = GrapeInteger(blank_is_nil=True, allow_none=True, validate=validate.OneOf([1, 2]))


class SubscriptionCreateIn(SubscriptionIn):
    """POST: `requires :start_date`."""

    start_date = RubyDate(blank_is_nil=True, required=True, allow_none=True)


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

    number_of_minutes = GrapeInteger(blank_is_nil=True, required=True, allow_none=True, validate=COUNT)
    expires_at = RubyDate(blank_is_nil=True, required=True, allow_none=True)
    purchase_xid = GrapeString(required=True, allow_none=True)


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
    namespace_id = GrapeInteger(blank_is_nil=True, required=True, allow_none=False)  # allow_blank: false
    next_reconciliation_date = RubyDate(blank_is_nil=True, required=True, allow_none=True)
    display_alert_from = RubyDate(blank_is_nil=True, required=True, allow_none=True)


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
    namespace_id = GrapeInteger(blank_is_nil=True, required=True, allow_none=False)
