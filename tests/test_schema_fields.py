"""schemas/fields.py: GitLab's Grape coercions, one field each, with each consumer's options.

The fields alone (what a value becomes, or that it is refused), then through service.params.load with
each consumer's real schemas, where the answer is Grape's `{"error": "x is invalid"}` / "x is empty".
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from marshmallow import Schema, ValidationError, fields, validate

from schemas import admin, billing, kas
from schemas.fields import GrapeBoolean, GrapeInteger, GrapeString, RubyDate
from service.errors import ApiError
from service.params import load

REFUSED = object()


def _load(field: Any, value: Any) -> Any:
    schema = Schema.from_dict({"x": field})()
    try:
        return schema.load({"x": value})["x"]
    except ValidationError:
        return REFUSED


# --- GrapeInteger -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (5, 5),
        (-5, -5),
        ("5", 5),
        (" -5 ", -5),
        ("+7", 7),
        (5.0, 5),  # JSON 5.0
        (2**63 - 1, 2**63 - 1),
        (-(2**63), -(2**63)),
        (str(2**63 - 1), 2**63 - 1),
        (5.5, REFUSED),  # a fraction, never truncated
        ("5.0", REFUSED),  # Ruby's Integer("5.0", 10) refuses it too
        ("5.5", REFUSED),
        ("abc", REFUSED),
        ("", REFUSED),  # blank: invalid unless blank_is_nil
        (True, REFUSED),
        (False, REFUSED),
        (2**63, REFUSED),  # past bigint: the caller's 400, not the database's 500
        (-(2**63) - 1, REFUSED),
        (str(2**63), REFUSED),
        (1e300, REFUSED),
        ([5], REFUSED),
        ({"a": 5}, REFUSED),
    ],
)
def test_integer(value: Any, expected: Any) -> None:
    result = _load(GrapeInteger(), value)
    assert result is REFUSED if expected is REFUSED else result == expected


@pytest.mark.parametrize("blank", ["", "  "])
def test_integer_blank_is_nil(blank: str) -> None:
    assert _load(GrapeInteger(blank_is_nil=True, allow_none=True, validate=validate.Range(min=0)), blank) is None
    # allow_blank: false (allow_none=False) says "is empty" through service.params
    schema = Schema.from_dict({"x": GrapeInteger(blank_is_nil=True, allow_none=False)})()
    with pytest.raises(ValidationError) as refused:
        schema.load({"x": blank})
    assert refused.value.messages == {"x": ["Field may not be null."]}


def test_integer_validators_apply_to_numbers() -> None:
    field = GrapeInteger(blank_is_nil=True, allow_none=True, validate=validate.Range(min=0, max=2**31 - 1))
    assert _load(field, "12") == 12
    assert _load(field, -1) is REFUSED
    assert _load(field, 2**31) is REFUSED


# --- GrapeString ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("text", "text"),
        ("", ""),  # Grape keeps "" for String
        (42, "42"),  # Grape coerces numbers to their text
        (-7, "-7"),
        (1.5, "1.5"),
        (5.0, "5.0"),
        ("a\x00b", REFUSED),  # PostgreSQL text cannot hold NUL: a 400, never a 500
        ("\x00", REFUSED),
        (True, REFUSED),
        (["a"], REFUSED),  # Grape refuses an Array or a Hash for String
        ({"a": "b"}, REFUSED),
    ],
)
def test_string(value: Any, expected: Any) -> None:
    result = _load(GrapeString(), value)
    assert result is REFUSED if expected is REFUSED else result == expected


def test_string_items_of_a_list() -> None:
    assert _load(fields.List(GrapeString()), ["api", 1]) == ["api", "1"]
    assert _load(fields.List(GrapeString()), ["api", "a\x00"]) is REFUSED


def test_string_validators_see_the_text() -> None:
    field = GrapeString(validate=validate.Length(max=2))
    assert _load(field, 42) == "42"
    assert _load(field, 420) is REFUSED


# --- GrapeBoolean -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        ("true", True),
        ("false", False),
        ("1", True),
        ("0", False),
        (1, True),
        (0, False),
        ("yes", True),
        ("no", False),
        ("on", True),
        ("off", False),
        ("maybe", REFUSED),
        (2, REFUSED),
        ("", REFUSED),
    ],
)
def test_boolean(value: Any, expected: Any) -> None:
    result = _load(GrapeBoolean(), value)
    assert result is REFUSED if expected is REFUSED else result is expected


def test_boolean_blank_is_nil() -> None:
    assert _load(GrapeBoolean(blank_is_nil=True, allow_none=True), "") is None
    assert _load(GrapeBoolean(blank_is_nil=True, allow_none=False), "") is REFUSED


# --- RubyDate ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2021-06-13", date(2021, 6, 13)),
        ("13 Jun 2021", date(2021, 6, 13)),
        ("Jun 13, 2021", date(2021, 6, 13)),
        ("2021/06/13", date(2021, 6, 13)),
        ("13/06/2021", date(2021, 6, 13)),
        ("2021-06-13T10:00:00Z", date(2021, 6, 13)),
        ("2021-13-45", REFUSED),
        ("soon", REFUSED),
        (20210613, REFUSED),
        ("", REFUSED),
    ],
)
def test_date(value: Any, expected: Any) -> None:
    result = _load(RubyDate(), value)
    assert result is REFUSED if expected is REFUSED else result == expected


def test_date_blank_is_nil_and_dump() -> None:
    assert _load(RubyDate(blank_is_nil=True, allow_none=True), " ") is None
    schema = Schema.from_dict({"x": RubyDate(allow_none=True)})()
    assert schema.dump({"x": date(2021, 6, 13)}) == {"x": "2021-06-13"}
    assert schema.dump({"x": None}) == {"x": None}


# --- each consumer, through service.params.load (GitLab's answers) ---------------------------------


def _error(schema: Schema, data: dict[str, Any]) -> Any:
    try:
        return load(schema, data)
    except ApiError as exc:
        assert exc.status == 400
        return exc.body


@pytest.mark.parametrize(
    ("schema", "data", "expected"),
    [
        # CustomersDot: blank is nil (Grape), which allow_blank: false reports as "is empty"
        (billing.ReconciliationDeleteIn(), {"namespace_id": ""}, {"error": "namespace_id is empty"}),
        (billing.ReconciliationDeleteIn(), {"namespace_id": "12"}, {"namespace_id": 12}),
        (billing.ReconciliationDeleteIn(), {"namespace_id": 12.0}, {"namespace_id": 12}),
        (billing.ReconciliationDeleteIn(), {"namespace_id": 2**63}, {"error": "namespace_id is invalid"}),
        (billing.ReconciliationDeleteIn(), {"namespace_id": True}, {"error": "namespace_id is invalid"}),
        (billing.SubscriptionIn(), {"seats": ""}, {"seats": None}),
        (billing.SubscriptionIn(), {"seats": 10.5}, {"error": "seats is invalid"}),
        (billing.SubscriptionIn(), {"plan_code": 5}, {"plan_code": "5"}),
        (billing.SubscriptionIn(), {"plan_code": "a\x00"}, {"error": "plan_code is invalid"}),
        (billing.SubscriptionIn(), {"trial": ""}, {"trial": None}),
        # CustomersDot's purchase_xid is a Grape String: 12 is "12"
        (
            billing.FlatPackIn(),
            {"number_of_minutes": 5, "expires_at": "2022-01-01", "purchase_xid": 12},
            {"number_of_minutes": 5, "expires_at": date(2022, 1, 1), "purchase_xid": "12"},
        ),
        # kas: a blank integer is invalid; strings take numbers, never NUL
        (kas.AGENT_CONFIGURATION, {"agent_id": "", "agent_config": {}}, {"error": "agent_id is invalid"}),
        (kas.AGENT_CONFIGURATION, {"agent_id": "7", "agent_config": {}}, {"agent_id": 7, "agent_config": {}}),
        (kas.AGENT_CONFIGURATION, {"agent_id": 2**64, "agent_config": {}}, {"error": "agent_id is invalid"}),
        (kas.PROJECT_ID, {"id": 42}, {"id": "42"}),
        (kas.PROJECT_ID, {"id": "group/p\x00"}, {"error": "id is invalid"}),
        (kas.SCAN_RESULT, {"uuids": ["a", 1]}, {"uuids": ["a", "1"]}),
        # admin: integer columns keep their 32-bit range, ids the 64-bit one; no fractions
        (
            admin.MemberCreateIn(),
            {"user_id": 2**63 - 1, "access_level": "30"},
            {"user_id": 2**63 - 1, "access_level": 30},
        ),
        (admin.MemberCreateIn(), {"user_id": 2**63, "access_level": 30}, {"error": "user_id is invalid"}),
        (admin.MemberCreateIn(), {"user_id": 1, "access_level": 30.5}, {"error": "access_level is invalid"}),
        (
            admin.MemberCreateIn(),
            {"user_id": 1, "access_level": 31},
            {"error": "access_level does not have a valid value"},
        ),
        (admin.PageIn(), {"page": 2**31}, {"error": "page is invalid"}),
        (admin.PageIn(), {"page": ""}, {"error": "page is invalid"}),
        (admin.GroupUpdateIn(), {"name": 42}, {"name": "42"}),
        (admin.GroupUpdateIn(), {"name": "g\x00"}, {"error": "name is invalid"}),
        (
            admin.UserListIn(),
            {"active": "yes"},
            # the filters GitLab declares with `default: false`
            {"active": True, "admins": False, "external": False, "exclude_external": False, "page": 1, "per_page": 20},
        ),
        (admin.UserListIn(), {"active": ""}, {"error": "active is invalid"}),
        (admin.TransferIn(), {"namespace": 42}, {"namespace": "42"}),
        (admin.TransferIn(), {"namespace": ["x"]}, {"error": "namespace is invalid"}),
        (admin.TransferIn(), {"namespace": "a\x00b"}, {"error": "namespace is invalid"}),
        (admin.TokenCreateIn(), {"name": "t", "scopes": ["api", 1]}, {"name": "t", "scopes": ["api", "1"]}),
    ],
)
def test_consumers(schema: Schema, data: dict[str, Any], expected: Any) -> None:
    assert _error(schema, data) == expected
