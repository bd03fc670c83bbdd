"""POST/PUT/GET /api/v4/namespaces/:id/gitlab_subscription, as CustomersDot uses them."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

import pytest

from tests.billing_helpers import (
    admin_headers,
    admin_token,
    histories,
    make_subscription,
    personal_namespace,
    subscription_row,
)
from tests.factories import add_member, make_group, make_personal_access_token, make_project, make_user

PREMIUM_DOC_ENTITY = {
    "plan": {
        "code": "premium",
        # The docs print the code here; GitLab exposes plan_title, and the plan's title is "Premium".
        "name": "Premium",
        "trial": False,
        "auto_renew": None,
        "upgradable": False,
        "exclude_guests": False,
    },
    "usage": {"seats_in_subscription": 80, "seats_in_use": 82, "max_seats_used": 82, "seats_owed": 2},
    "billing": {
        "subscription_start_date": "2020-07-15",
        "subscription_end_date": "2021-07-15",
        "trial_ends_on": None,
    },
}


def url(namespace: int | str) -> str:
    return f"/api/v4/namespaces/{namespace}/gitlab_subscription"


async def group_with_members(db, count: int, *, access_level: int = 30):  # type: ignore[no-untyped-def]
    group = await make_group(db)
    for _ in range(count):
        await add_member(db, await make_user(db), group, access_level)
    return group


# --- the seed documents' examples ---------------------------------------------------------------


async def test_create_example(client, db):
    """The documented POST, with `plan_code` (the documented attribute; the example's `plan=` is a typo)."""
    token = await admin_token(db)
    user = await make_user(db)
    namespace_id = await personal_namespace(db, user)

    resp = await client.post(
        f"{url(namespace_id)}?start_date=2020-07-15&plan_code=premium&seats=10", headers={"TOKEN": token}
    )

    assert resp.status == 201
    assert await resp.json() == {
        "plan": {
            "code": "premium",
            "name": "Premium",
            "trial": False,
            "auto_renew": None,
            # premium, 10 seats, not a trial, not expired: GitLab says true; the docs' false is
            # not what upgradable? computes for these inputs.
            "upgradable": True,
            "exclude_guests": False,
        },
        # a personal namespace bills exactly its owner
        "usage": {"seats_in_subscription": 10, "seats_in_use": 1, "max_seats_used": 0, "seats_owed": 0},
        "billing": {
            "subscription_start_date": "2020-07-15",
            "subscription_end_date": None,
            "trial_ends_on": None,
        },
    }
    row = await subscription_row(db, namespace_id)
    assert (row["plan_name"], row["seats"], row["start_date"], row["trial"]) == (
        "premium",
        10,
        date(2020, 7, 15),
        False,
    )


async def test_create_example_as_literally_written_ignores_plan(client, db):
    token = await admin_token(db)
    namespace_id = await personal_namespace(db, await make_user(db))

    resp = await client.post(
        f"{url(namespace_id)}?start_date=2020-07-15&plan=premium&seats=10", headers={"TOKEN": token}
    )

    assert resp.status == 201
    body = await resp.json()
    assert body["plan"]["code"] is None
    assert body["usage"]["seats_in_subscription"] == 10


async def test_get_example(client, db):
    token = await admin_token(db)
    group = await group_with_members(db, 82)
    await make_subscription(db, group["id"], seats=80, max_seats_used=82, end_date=date(2021, 7, 15))

    resp = await client.get(url(group["id"]), headers={"TOKEN": token})

    assert resp.status == 200
    assert await resp.json() == PREMIUM_DOC_ENTITY


async def test_update_example(client, db):
    token = await admin_token(db)
    group = await group_with_members(db, 82)
    subscription_id = await make_subscription(
        db, group["id"], seats=80, max_seats_used=82, end_date=date(2021, 7, 15)
    )

    resp = await client.put(f"{url(group['id'])}?max_seats_used=0", headers={"TOKEN": token})

    assert resp.status == 200
    expected = {**PREMIUM_DOC_ENTITY, "usage": {**PREMIUM_DOC_ENTITY["usage"], "max_seats_used": 0}}
    # The docs show seats_owed 2 here: GitLab's cached column, refreshed by a worker hours later.
    # seats_owed is max(0, max_seats_used - seats), and max_seats_used is now 0.
    expected["usage"]["seats_owed"] = 0
    assert await resp.json() == expected
    [history] = await histories(db, subscription_id)
    assert (history["change_type"], history["max_seats_used"], history["seats"]) == (1, 82, 80)


# --- POST ---------------------------------------------------------------------------------------


async def test_create_requires_start_date(client, db):
    token = await admin_token(db)
    namespace_id = await personal_namespace(db, await make_user(db))

    resp = await client.post(url(namespace_id), json={"seats": 10}, headers=admin_headers(token))

    assert resp.status == 400
    assert await resp.json() == {"error": "start_date is missing"}
    assert await subscription_row(db, namespace_id) is None


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"seats": "ten"}, "seats is invalid"),
        ({"seats": 10.5}, "seats is invalid"),
        ({"seats": True}, "seats is invalid"),
        ({"seats": 2**31}, "seats is invalid"),
        ({"max_seats_used": "x"}, "max_seats_used is invalid"),
        ({"end_date": "2021-13-45"}, "end_date is invalid"),
        ({"trial_ends_on": "soon"}, "trial_ends_on is invalid"),
        ({"trial_starts_on": 20200101}, "trial_starts_on is invalid"),
        ({"auto_renew": "maybe"}, "auto_renew is invalid"),
        ({"trial": "perhaps"}, "trial is invalid"),
        ({"plan_code": ["premium"]}, "plan_code is invalid"),
        ({"plan_code": "pre\x00mium"}, "plan_code is invalid"),
        ({"trial_extension_type": 3}, "trial_extension_type does not have a valid value"),
        ({"trial_extension_type": "extended"}, "trial_extension_type is invalid"),
    ],
)
async def test_create_rejects_bad_types(client, db, body, error):
    token = await admin_token(db)
    namespace_id = await personal_namespace(db, await make_user(db))

    resp = await client.post(
        url(namespace_id), json={"start_date": "2020-07-15", **body}, headers=admin_headers(token)
    )

    assert resp.status == 400
    assert await resp.json() == {"error": error}
    assert await subscription_row(db, namespace_id) is None


async def test_create_start_date_is_parsed_like_ruby(client, db):
    token = await admin_token(db)
    namespace_id = await personal_namespace(db, await make_user(db))

    resp = await client.post(
        url(namespace_id),
        data={"start_date": "15 Jul 2020", "end_date": "2021-07-15", "seats": "5", "auto_renew": "true"},
        headers=admin_headers(token),
    )

    assert resp.status == 201, await resp.text()
    row = await subscription_row(db, namespace_id)
    assert (row["start_date"], row["end_date"], row["seats"], row["auto_renew"]) == (
        date(2020, 7, 15),
        date(2021, 7, 15),
        5,
        True,
    )


async def test_create_with_every_attribute(client, db):
    token = await admin_token(db)
    group = await make_group(db)

    resp = await client.post(
        url(group["id"]),
        json={
            "start_date": "2024-01-01",
            "end_date": "2025-01-01",
            "plan_code": "ultimate_trial",
            "seats": 0,
            "max_seats_used": 0,
            "auto_renew": False,
            "trial": True,
            "trial_ends_on": "2024-01-31",
            "trial_extension_type": 2,
        },
        headers=admin_headers(token),
    )

    assert resp.status == 201
    body = await resp.json()
    assert body["plan"] == {
        "code": "ultimate_trial",
        "name": "Ultimate Trial",
        "trial": True,
        "auto_renew": False,
        "upgradable": False,
        "exclude_guests": True,
    }
    assert body["billing"]["trial_ends_on"] == "2024-01-31"
    row = await subscription_row(db, group["id"])
    # trial_starts_on ||= start_date when trial
    assert row["trial_starts_on"] == date(2024, 1, 1)
    assert row["trial_extension_type"] == 2


async def test_create_twice_is_refused(client, db):
    token = await admin_token(db)
    namespace_id = await personal_namespace(db, await make_user(db))
    first = await client.post(
        url(namespace_id), json={"start_date": "2020-07-15"}, headers=admin_headers(token)
    )
    assert first.status == 201

    resp = await client.post(
        url(namespace_id), json={"start_date": "2021-01-01", "seats": 99}, headers=admin_headers(token)
    )

    assert resp.status == 400
    assert await resp.json() == {"message": {"namespace_id": ["has already been taken"]}}
    assert (await subscription_row(db, namespace_id))["seats"] == 0


async def test_concurrent_creates_make_one_subscription(client, db):
    token = await admin_token(db)
    namespace_id = await personal_namespace(db, await make_user(db))

    responses = await asyncio.gather(
        *(
            client.post(
                url(namespace_id), json={"start_date": "2020-07-15", "seats": 5}, headers=admin_headers(token)
            )
            for _ in range(10)
        )
    )

    assert sorted(resp.status for resp in responses) == [201] + [400] * 9
    assert await db.fetchval("SELECT count(*) FROM gitlab_subscriptions") == 1


async def test_create_with_unknown_plan_code_clears_the_plan(client, db):
    token = await admin_token(db)
    namespace_id = await personal_namespace(db, await make_user(db))

    resp = await client.post(
        url(namespace_id),
        json={"start_date": "2020-07-15", "plan_code": "platinum"},
        headers=admin_headers(token),
    )

    assert resp.status == 201
    body = await resp.json()
    assert (body["plan"]["code"], body["plan"]["name"]) == (None, None)
    assert (await subscription_row(db, namespace_id))["hosted_plan_id"] is None


@pytest.mark.parametrize("field", ["start_date", "seats"])
async def test_create_with_blank_required_value(client, db, field):
    token = await admin_token(db)
    namespace_id = await personal_namespace(db, await make_user(db))

    resp = await client.post(
        url(namespace_id), json={"start_date": "2020-07-15", field: None}, headers=admin_headers(token)
    )

    assert resp.status == 400
    assert await resp.json() == {"message": {field: ["can't be blank"]}}


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        # trial_starts_on defaults to start_date; the comparison reports the blank end date again
        ({"start_date": "2024-01-01"}, {"trial_ends_on": ["can't be blank", "can't be blank"]}),
        (
            {"start_date": "2024-01-10", "trial_ends_on": "2024-01-01"},
            {"trial_ends_on": ["must be greater than 2024-01-10"]},
        ),
        (
            {"start_date": "2024-01-10", "trial_ends_on": "2024-01-10"},
            {"trial_ends_on": ["must be greater than 2024-01-10"]},
        ),
        (
            {"start_date": "2024-01-01", "trial_starts_on": "2024-02-01", "trial_ends_on": "2024-01-31"},
            {"trial_ends_on": ["must be greater than 2024-02-01"]},
        ),
    ],
)
async def test_create_trial_needs_trial_dates_in_order(client, db, body, errors):
    token = await admin_token(db)
    namespace_id = await personal_namespace(db, await make_user(db))

    resp = await client.post(
        url(namespace_id), json={**body, "plan_code": "ultimate_trial", "trial": True}, headers=admin_headers(token)
    )

    assert resp.status == 400
    assert await resp.json() == {"message": errors}
    assert await subscription_row(db, namespace_id) is None


async def test_create_errors_follow_the_order_of_the_validations(client, db):
    token = await admin_token(db)
    namespace_id = await personal_namespace(db, await make_user(db))
    await make_subscription(db, namespace_id)

    resp = await client.post(
        url(namespace_id),
        json={"start_date": "2024-01-10", "seats": None, "trial": True, "trial_ends_on": "2024-01-01"},
        headers=admin_headers(token),
    )

    assert resp.status == 400
    message = (await resp.json())["message"]
    assert list(message.items()) == [
        ("seats", ["can't be blank"]),
        ("namespace_id", ["has already been taken"]),
        ("trial_ends_on", ["must be greater than 2024-01-10"]),
    ]


async def test_create_by_url_encoded_full_path(client, db):
    token = await admin_token(db)
    parent = await make_group(db, "acme")
    await make_group(db, "widgets", parent=parent)

    resp = await client.post(
        "/api/v4/namespaces/ACME%2Fwidgets/gitlab_subscription?start_date=2020-07-15",
        headers=admin_headers(token),
    )

    assert resp.status == 201
    child_id = await db.fetchval("SELECT id FROM namespaces WHERE path = 'widgets'")
    assert (await subscription_row(db, child_id)) is not None


@pytest.mark.parametrize(
    "namespace", ["424242", "no%2Fsuch-group", "99999999999999999999999", "nul%00byte", "1" * 5000, "%D9%A3"]
)
async def test_create_on_unknown_namespace(client, db, namespace):
    token = await admin_token(db)

    resp = await client.post(f"{url(namespace)}?start_date=2020-07-15", headers=admin_headers(token))

    assert resp.status == 404
    assert await resp.json() == {"message": "404 Namespace Not Found"}


# --- PUT ----------------------------------------------------------------------------------------


async def test_update_without_subscription(client, db):
    token = await admin_token(db)
    namespace_id = await personal_namespace(db, await make_user(db))

    resp = await client.put(url(namespace_id), json={"seats": 5}, headers=admin_headers(token))

    assert resp.status == 404
    assert await resp.json() == {"message": "404 GitlabSubscription Not Found"}


async def test_update_records_the_previous_state_once_per_change(client, db):
    token = await admin_token(db)
    namespace_id = await personal_namespace(db, await make_user(db))
    subscription_id = await make_subscription(db, namespace_id, seats=10, auto_renew=True)

    changed = await client.put(
        url(namespace_id), json={"seats": 20, "plan_code": "ultimate"}, headers=admin_headers(token)
    )
    unchanged = await client.put(url(namespace_id), json={"seats": 20}, headers=admin_headers(token))

    assert (changed.status, unchanged.status) == (200, 200)
    [history] = await histories(db, subscription_id)
    premium_id = await db.fetchval("SELECT id FROM plans WHERE name = 'premium'")
    assert history["change_type"] == 1  # gitlab_subscription_updated
    assert (history["seats"], history["hosted_plan_id"], history["auto_renew"]) == (10, premium_id, True)
    assert history["namespace_id"] == namespace_id
    assert history["start_date"] == date(2020, 7, 15)
    row = await subscription_row(db, namespace_id)
    assert (row["seats"], row["plan_name"]) == (20, "ultimate")


async def test_update_with_null_plan_code_means_free(client, db):
    token = await admin_token(db)
    namespace_id = await personal_namespace(db, await make_user(db))
    await make_subscription(db, namespace_id)

    resp = await client.put(url(namespace_id), json={"plan_code": None}, headers=admin_headers(token))

    assert resp.status == 200
    assert (await resp.json())["plan"]["code"] == "free"


async def test_update_trial_defaults_trial_starts_on(client, db):
    token = await admin_token(db)
    namespace_id = await personal_namespace(db, await make_user(db))
    await make_subscription(db, namespace_id, plan="free", seats=0)

    resp = await client.put(
        url(namespace_id),
        json={
            "trial": True,
            "start_date": "2024-03-01",
            "trial_ends_on": "2024-03-31",
            "plan_code": "ultimate_trial",
        },
        headers=admin_headers(token),
    )

    assert resp.status == 200
    row = await subscription_row(db, namespace_id)
    assert (row["trial"], row["trial_starts_on"], row["trial_ends_on"]) == (
        True,
        date(2024, 3, 1),
        date(2024, 3, 31),
    )


async def test_update_invalid_value_changes_nothing(client, db):
    token = await admin_token(db)
    namespace_id = await personal_namespace(db, await make_user(db))
    subscription_id = await make_subscription(db, namespace_id, seats=10)

    bad_type = await client.put(
        url(namespace_id), json={"seats": 20, "end_date": "never"}, headers=admin_headers(token)
    )
    blank = await client.put(
        url(namespace_id), json={"seats": None, "plan_code": "gold"}, headers=admin_headers(token)
    )

    assert (bad_type.status, await bad_type.json()) == (400, {"error": "end_date is invalid"})
    assert (blank.status, await blank.json()) == (400, {"message": {"seats": ["can't be blank"]}})
    row = await subscription_row(db, namespace_id)
    assert (row["seats"], row["plan_name"], row["end_date"]) == (10, "premium", None)
    assert await histories(db, subscription_id) == []


async def test_new_term_resets_max_seats_used(client, db):
    token = await admin_token(db)
    group = await group_with_members(db, 3)
    await make_subscription(
        db, group["id"], seats=10, max_seats_used=15, start_date=date(2024, 1, 1), end_date=date(2025, 1, 1)
    )

    resp = await client.put(
        url(group["id"]),
        json={"start_date": "2025-01-01", "end_date": "2026-01-01"},
        headers=admin_headers(token),
    )

    assert resp.status == 200
    usage = (await resp.json())["usage"]
    assert usage == {"seats_in_subscription": 10, "seats_in_use": 3, "max_seats_used": 3, "seats_owed": 0}
    assert (await subscription_row(db, group["id"]))["max_seats_used_changed_at"] is not None


@pytest.mark.parametrize(
    "body",
    [
        # overlapping dates are not a new term
        {"start_date": "2024-06-01", "end_date": "2025-06-01"},
        # switching to the trial for Premium customers never resets, even with a new term in the
        # same request, which would reset any other paid plan
        {"plan_code": "ultimate_trial_paid_customer", "start_date": "2025-01-01", "end_date": "2026-01-01"},
    ],
)
async def test_seat_statistics_kept(client, db, body):
    token = await admin_token(db)
    group = await group_with_members(db, 3)
    await make_subscription(
        db, group["id"], seats=10, max_seats_used=15, start_date=date(2024, 1, 1), end_date=date(2025, 1, 1)
    )

    resp = await client.put(url(group["id"]), json=body, headers=admin_headers(token))

    assert resp.status == 200
    assert (await resp.json())["usage"]["max_seats_used"] == 15
    assert (await resp.json())["usage"]["seats_owed"] == 5


async def test_trial_ending_on_a_paid_plan_resets_max_seats_used(client, db):
    token = await admin_token(db)
    group = await group_with_members(db, 2)
    await make_subscription(db, group["id"], plan="ultimate_trial", seats=0, max_seats_used=40, trial=True)

    resp = await client.put(
        url(group["id"]),
        json={"trial": False, "plan_code": "premium", "seats": 5},
        headers=admin_headers(token),
    )

    assert resp.status == 200
    assert (await resp.json())["usage"]["max_seats_used"] == 2


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        # `trial_starts_on ||= start_date` assigns nil when start_date was not sent either
        (
            {"trial": True},
            {"trial_ends_on": ["can't be blank", "can't be blank"], "trial_starts_on": ["can't be blank"]},
        ),
        (
            {"trial": True, "trial_ends_on": "2024-03-31"},
            {"trial_starts_on": ["can't be blank"], "trial_ends_on": ["comparison of Date with nil failed"]},
        ),
        (
            {"trial": True, "start_date": "2024-03-01", "trial_ends_on": "2024-02-01"},
            {"trial_ends_on": ["must be greater than 2024-03-01"]},
        ),
    ],
)
async def test_update_to_a_trial_needs_trial_dates_in_order(client, db, body, errors):
    token = await admin_token(db)
    namespace_id = await personal_namespace(db, await make_user(db))
    subscription_id = await make_subscription(db, namespace_id, plan="free", seats=0)

    resp = await client.put(
        url(namespace_id), json={**body, "plan_code": "ultimate_trial"}, headers=admin_headers(token)
    )

    assert resp.status == 400
    assert await resp.json() == {"message": errors}
    row = await subscription_row(db, namespace_id)
    assert (row["plan_name"], row["trial"], row["trial_starts_on"], row["trial_ends_on"]) == ("free", False, None, None)
    assert await histories(db, subscription_id) == []


async def test_update_of_a_running_trial_is_validated_as_a_whole(client, db):
    token = await admin_token(db)
    namespace_id = await personal_namespace(db, await make_user(db))
    await make_subscription(
        db,
        namespace_id,
        plan="ultimate_trial",
        seats=0,
        trial=True,
        trial_starts_on=date(2024, 3, 1),
        trial_ends_on=date(2024, 3, 31),
    )

    moved_before_start = await client.put(
        url(namespace_id), json={"trial_ends_on": "2024-02-28"}, headers=admin_headers(token)
    )
    extended = await client.put(url(namespace_id), json={"trial_ends_on": "2024-04-30"}, headers=admin_headers(token))

    assert moved_before_start.status == 400
    assert await moved_before_start.json() == {"message": {"trial_ends_on": ["must be greater than 2024-03-01"]}}
    assert extended.status == 200
    assert (await subscription_row(db, namespace_id))["trial_ends_on"] == date(2024, 4, 30)


# --- ultimate_trial_paid_customer: reset_involves_ultimate_trial_paid_customer_plan? ------------


async def _premium_customer_on_a_trial(client, db, token):  # type: ignore[no-untyped-def]
    """A group of 3 on Premium (10 seats, 15 used) that took the Ultimate trial for paying customers."""
    group = await group_with_members(db, 3)
    await make_subscription(
        db, group["id"], seats=10, max_seats_used=15, start_date=date(2024, 1, 1), end_date=date(2025, 1, 1)
    )
    resp = await client.put(
        url(group["id"]),
        json={
            "plan_code": "ultimate_trial_paid_customer",
            "trial": True,
            "trial_starts_on": "2024-06-01",
            "trial_ends_on": "2024-07-01",
        },
        headers=admin_headers(token),
    )
    assert resp.status == 200
    assert (await resp.json())["usage"]["max_seats_used"] == 15
    return group


@pytest.mark.parametrize(
    ("body", "max_seats_used", "seats_owed"),
    [
        # premium_plan_not_renewed?: back on the Premium term the trial interrupted, overage kept
        ({"plan_code": "premium", "trial": False}, 15, 5),
        # a renewed Premium term (other dates than the last Premium history row) starts afresh
        ({"plan_code": "premium", "trial": False, "start_date": "2025-01-01", "end_date": "2026-01-01"}, 3, 0),
        ({"plan_code": "premium", "trial": False, "end_date": "2025-06-01"}, 3, 0),
        # any other plan after the trial resets, paid or not
        ({"plan_code": "ultimate", "trial": False}, 3, 0),
        ({"plan_code": "free", "trial": False}, 3, 0),
        # the plan stays ultimate_trial_paid_customer: nothing resets
        ({"trial_ends_on": "2024-08-01"}, 15, 0),
    ],
)
async def test_trial_for_premium_customers_and_seat_statistics(client, db, body, max_seats_used, seats_owed):
    token = await admin_token(db)
    group = await _premium_customer_on_a_trial(client, db, token)

    resp = await client.put(url(group["id"]), json=body, headers=admin_headers(token))

    assert resp.status == 200
    usage = (await resp.json())["usage"]
    assert (usage["max_seats_used"], usage["seats_owed"]) == (max_seats_used, seats_owed)


@pytest.mark.parametrize(
    "change, max_seats_used",
    [
        # a new term on the trial keeps the seat statistics
        ({"start_date": "2025-01-01", "end_date": "2026-01-01"}, 15),
        # premium_plan_not_renewed? finds no Premium history row (the subscription began on the
        # trial): the statistics start afresh from the live seat count
        ({"plan_code": "premium"}, 3),
    ],
)
async def test_leaving_or_renewing_a_trial_for_premium_customers_without_premium_history(
    client, db, change, max_seats_used
):
    token = await admin_token(db)
    group = await group_with_members(db, 3)
    await make_subscription(
        db,
        group["id"],
        plan="ultimate_trial_paid_customer",
        seats=10,
        max_seats_used=15,
        start_date=date(2024, 1, 1),
        end_date=date(2025, 1, 1),
    )

    resp = await client.put(url(group["id"]), json=change, headers=admin_headers(token))

    assert resp.status == 200
    assert (await resp.json())["usage"]["max_seats_used"] == max_seats_used


async def test_free_and_trial_plans_owe_no_seats(client, db):
    token = await admin_token(db)
    free = await personal_namespace(db, await make_user(db))
    trial = await personal_namespace(db, await make_user(db))
    await make_subscription(db, free, plan="free", seats=1, max_seats_used=9)
    await make_subscription(db, trial, plan="ultimate_trial", seats=1, max_seats_used=9, trial=True)

    for namespace_id in (free, trial):
        resp = await client.get(url(namespace_id), headers=admin_headers(token))
        body = await resp.json()
        assert (body["usage"]["seats_owed"], body["plan"]["upgradable"]) == (0, False)


async def test_seats_in_use_counts_billable_users(client, db):
    token = await admin_token(db)
    top = await make_group(db)
    sub = await make_group(db, parent=top)
    project = await make_project(db, sub)
    billable = [await make_user(db) for _ in range(4)]
    await add_member(db, billable[0], top, 50)
    await add_member(db, billable[1], sub, 30)
    await add_member(db, billable[1], project, 30)  # counted once
    await add_member(db, billable[2], project, 20)
    await add_member(db, billable[3], top, 10)  # a guest
    await add_member(db, await make_user(db, state="blocked"), top, 30)
    await add_member(db, await make_user(db, user_type="project_bot"), project, 40)
    await add_member(db, await make_user(db), top, 30, requested_at=date.today())
    await add_member(db, await make_user(db), top, 30, state="awaiting")
    await add_member(db, await make_user(db), top, 30, expires_at=date.today() - timedelta(days=1))
    await add_member(db, await make_user(db), await make_group(db), 30)  # another group
    await make_subscription(db, top["id"], plan="premium", seats=10)

    premium = await (await client.get(url(top["id"]), headers=admin_headers(token))).json()
    await client.put(url(top["id"]), json={"plan_code": "ultimate"}, headers=admin_headers(token))
    ultimate = await (await client.get(url(top["id"]), headers=admin_headers(token))).json()

    assert (premium["usage"]["seats_in_use"], premium["plan"]["exclude_guests"]) == (4, False)
    # Ultimate does not bill guests
    assert (ultimate["usage"]["seats_in_use"], ultimate["plan"]["exclude_guests"]) == (3, True)


async def test_expired_subscription_is_not_upgradable(client, db):
    token = await admin_token(db)
    namespace_id = await personal_namespace(db, await make_user(db))
    await make_subscription(
        db, namespace_id, plan="premium", seats=5, end_date=date.today() - timedelta(days=1)
    )

    body = await (await client.get(url(namespace_id), headers=admin_headers(token))).json()

    assert body["plan"]["upgradable"] is False


# --- GET ----------------------------------------------------------------------------------------


async def test_get_without_subscription_renders_nulls(client, db):
    token = await admin_token(db)
    group = await make_group(db)

    resp = await client.get(url(group["id"]), headers=admin_headers(token))

    assert resp.status == 200
    assert await resp.json() == {
        "plan": {
            "code": None,
            "name": None,
            "trial": None,
            "auto_renew": None,
            "upgradable": None,
            "exclude_guests": None,
        },
        "usage": {
            "seats_in_subscription": None,
            "seats_in_use": None,
            "max_seats_used": None,
            "seats_owed": None,
        },
        "billing": {"subscription_start_date": None, "subscription_end_date": None, "trial_ends_on": None},
    }


async def test_group_owners_may_read(client, db):
    top = await make_group(db)
    sub = await make_group(db, parent=top)
    owner = await make_user(db)
    await add_member(db, owner, top, 50)
    await make_subscription(db, sub["id"])
    token = await make_personal_access_token(db, owner, scopes=["read_api"])

    resp = await client.get(url(sub["id"]), headers={"PRIVATE-TOKEN": token})

    assert resp.status == 200
    assert (await resp.json())["plan"]["code"] == "premium"


async def test_personal_namespace_owner_may_read(client, db):
    user = await make_user(db)
    namespace_id = await personal_namespace(db, user)
    token = await make_personal_access_token(db, user)

    resp = await client.get(url(user["username"]), headers={"Authorization": f"Bearer {token}"})

    assert resp.status == 200
    assert (await resp.json())["plan"]["code"] is None
    assert namespace_id


async def test_non_owner_member_is_forbidden(client, db):
    group = await make_group(db)
    developer = await make_user(db)
    await add_member(db, developer, group, 40)
    token = await make_personal_access_token(db, developer)

    resp = await client.get(url(group["id"]), headers={"PRIVATE-TOKEN": token})

    assert resp.status == 403
    assert await resp.json() == {"message": "403 Forbidden"}


async def test_stranger_sees_public_group_forbidden_and_private_namespaces_not_found(client, db):
    public = await make_group(db)
    private = await make_group(db)
    await db.execute("UPDATE namespaces SET visibility_level = 0 WHERE id = $1", private["id"])
    someone = await make_user(db)
    stranger = await make_user(db)
    token = await make_personal_access_token(db, stranger)

    public_resp = await client.get(url(public["id"]), headers={"PRIVATE-TOKEN": token})
    private_resp = await client.get(url(private["id"]), headers={"PRIVATE-TOKEN": token})
    personal_resp = await client.get(url(someone["username"]), headers={"PRIVATE-TOKEN": token})

    assert (public_resp.status, await public_resp.json()) == (403, {"message": "403 Forbidden"})
    assert (private_resp.status, await private_resp.json()) == (404, {"message": "404 Namespace Not Found"})
    assert (personal_resp.status, await personal_resp.json()) == (404, {"message": "404 Namespace Not Found"})


async def test_admin_without_admin_mode_reads_as_any_user(client, db):
    """With the admin_mode setting on, an administrator's token without the admin_mode scope is not
    an administrator (APIGuard#bypass_session_for_admin_mode?): GET sees what its user may see."""
    from tests.factories import set_application_settings

    public = await make_group(db)
    private = await make_group(db)
    await db.execute("UPDATE namespaces SET visibility_level = 0 WHERE id = $1", private["id"])
    admin = await make_user(db, admin=True)
    plain = await make_personal_access_token(db, admin, scopes=["api"])
    elevated = await make_personal_access_token(db, admin, scopes=["api", "admin_mode"])
    await set_application_settings(db, admin_mode=True)

    public_resp = await client.get(url(public["id"]), headers={"PRIVATE-TOKEN": plain})
    private_resp = await client.get(url(private["id"]), headers={"PRIVATE-TOKEN": plain})
    write_resp = await client.put(url(private["id"]), json={"seats": 1}, headers={"PRIVATE-TOKEN": plain})
    elevated_resp = await client.get(url(private["id"]), headers={"PRIVATE-TOKEN": elevated})

    assert (public_resp.status, await public_resp.json()) == (403, {"message": "403 Forbidden"})
    assert (private_resp.status, await private_resp.json()) == (404, {"message": "404 Namespace Not Found"})
    # authenticated_as_admin!: the plain 403 of forbidden!
    assert (write_resp.status, await write_resp.json()) == (403, {"message": "403 Forbidden"})
    assert elevated_resp.status == 200

    await set_application_settings(db, admin_mode=False)
    assert (await client.get(url(private["id"]), headers={"PRIVATE-TOKEN": plain})).status == 200


# --- authentication -----------------------------------------------------------------------------


async def test_writes_need_a_token(client, db):
    namespace_id = await personal_namespace(db, await make_user(db))

    post = await client.post(f"{url(namespace_id)}?start_date=2020-07-15")
    get = await client.get(url(namespace_id))
    wrong = await client.put(url(namespace_id), json={"seats": 1}, headers={"PRIVATE-TOKEN": "glpat-nope"})

    for resp in (post, get, wrong):
        assert (resp.status, await resp.json()) == (401, {"message": "401 Unauthorized"})
    assert await subscription_row(db, namespace_id) is None


async def test_writes_need_an_admin(client, db):
    user = await make_user(db)
    namespace_id = await personal_namespace(db, user)
    token = await make_personal_access_token(db, user)

    post = await client.post(f"{url(namespace_id)}?start_date=2020-07-15", headers={"PRIVATE-TOKEN": token})
    await make_subscription(db, namespace_id)
    put = await client.put(url(namespace_id), json={"seats": 1000}, headers={"PRIVATE-TOKEN": token})

    for resp in (post, put):
        assert (resp.status, await resp.json()) == (403, {"message": "403 Forbidden"})
    assert (await subscription_row(db, namespace_id))["seats"] == 10


@pytest.mark.parametrize("where", ["PRIVATE-TOKEN", "TOKEN", "Authorization", "private_token"])
async def test_admin_token_locations(client, db, where):
    token = await admin_token(db)
    namespace_id = await personal_namespace(db, await make_user(db))
    query = (
        f"?start_date=2020-07-15&private_token={token}"
        if where == "private_token"
        else "?start_date=2020-07-15"
    )
    headers = (
        {} if where == "private_token" else {where: f"Bearer {token}" if where == "Authorization" else token}
    )

    resp = await client.post(url(namespace_id) + query, headers=headers)

    assert resp.status == 201


async def test_paid_subscription_records_peak_usage_and_seats_owed(client, db):
    """GitLab's seat refresh: max_seats_used follows the live count up, seats_owed the overage."""
    from tests.billing_helpers import admin_headers, admin_token
    from tests.factories import add_member, make_group, make_user

    token = await admin_token(db)
    group = await make_group(db, "overage")
    for _ in range(5):
        await add_member(db, await make_user(db), group, 30)
    path = f"/api/v4/namespaces/{group['id']}/gitlab_subscription"
    resp = await client.post(path, json={"start_date": "2026-01-01", "seats": 3, "plan_code": "premium"}, headers=admin_headers(token))
    assert resp.status == 201
    body = await (await client.get(path, headers=admin_headers(token))).json()
    assert body["usage"] == {"seats_in_subscription": 3, "seats_in_use": 5, "max_seats_used": 5, "seats_owed": 2}
    history = await db.fetchval(
        "SELECT count(*) FROM gitlab_subscription_histories h JOIN gitlab_subscriptions s ON s.id = h.gitlab_subscription_id"
        " WHERE s.namespace_id = $1", group["id"])
    assert history >= 1
    # an empty plan_code clears the plan (Ruby's `code || 'free'` keeps "")
    body = await (await client.put(path, json={"plan_code": ""}, headers=admin_headers(token))).json()
    assert body["plan"]["code"] is None
