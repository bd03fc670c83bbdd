"""PUT and DELETE /api/v4/internal/upcoming_reconciliations (GitLab.com only)."""

from __future__ import annotations

from datetime import date

import orjson
import pytest

from service.app import create_app
from tests.billing_helpers import admin_headers, admin_token, namespace_with_id, reconciliations
from tests.factories import make_personal_access_token, make_user

PATH = "/api/v4/internal/upcoming_reconciliations"
DOC_BODY = (
    '{"upcoming_reconciliations": [{"namespace_id": 127, "next_reconciliation_date": "13 Jun 2021",'
    ' "display_alert_from": "06 Jun 2021"}, {"namespace_id": 129, "next_reconciliation_date": "12 Jun 2021",'
    ' "display_alert_from": "05 Jun 2021"}]}'
)


def item(
    namespace_id: object, next_date: object = "2024-06-13", alert_from: object = "2024-06-06"
) -> dict[str, object]:
    return {
        "namespace_id": namespace_id,
        "next_reconciliation_date": next_date,
        "display_alert_from": alert_from,
    }


async def test_update_example(client, db):
    token = await admin_token(db)
    await namespace_with_id(db, 127, "one")
    await namespace_with_id(db, 129, "two")

    resp = await client.put(
        PATH, data=DOC_BODY, headers={"PRIVATE-TOKEN": token, "Content-Type": "application/json"}
    )

    assert resp.status == 200
    assert await resp.text() == "200"
    assert await reconciliations(db) == [
        {
            "namespace_id": 127,
            "next_reconciliation_date": date(2021, 6, 13),
            "display_alert_from": date(2021, 6, 6),
        },
        {
            "namespace_id": 129,
            "next_reconciliation_date": date(2021, 6, 12),
            "display_alert_from": date(2021, 6, 5),
        },
    ]


async def test_update_is_an_upsert_by_namespace(client, db):
    token = await admin_token(db)
    await namespace_with_id(db, 127, "one")
    first = await client.put(
        PATH, json={"upcoming_reconciliations": [item(127)]}, headers=admin_headers(token)
    )

    again = await client.put(
        PATH,
        json={"upcoming_reconciliations": [item(127, "2024-09-13", "2024-09-06")]},
        headers=admin_headers(token),
    )

    assert (first.status, again.status) == (200, 200)
    assert await reconciliations(db) == [
        {
            "namespace_id": 127,
            "next_reconciliation_date": date(2024, 9, 13),
            "display_alert_from": date(2024, 9, 6),
        }
    ]


async def test_items_may_be_json_strings(client, db):
    """`type: Array[JSON]`: Grape also accepts each item as a JSON document."""
    token = await admin_token(db)
    await namespace_with_id(db, 127, "one")

    resp = await client.put(
        PATH,
        json={"upcoming_reconciliations": [orjson.dumps(item(127)).decode()]},
        headers=admin_headers(token),
    )

    assert resp.status == 200
    assert len(await reconciliations(db)) == 1


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({}, "upcoming_reconciliations is missing"),
        ({"upcoming_reconciliations": "soon"}, "upcoming_reconciliations is invalid"),
        ({"upcoming_reconciliations": [item(None)]}, "upcoming_reconciliations[namespace_id] is empty"),
        ({"upcoming_reconciliations": [item("")]}, "upcoming_reconciliations[namespace_id] is empty"),
        ({"upcoming_reconciliations": [item("abc")]}, "upcoming_reconciliations[namespace_id] is invalid"),
        (
            {
                "upcoming_reconciliations": [
                    item(127),
                    {"namespace_id": 127, "display_alert_from": "2024-06-06"},
                ]
            },
            "upcoming_reconciliations[next_reconciliation_date] is missing",
        ),
        (
            {"upcoming_reconciliations": [item(127, alert_from="whenever")]},
            "upcoming_reconciliations[display_alert_from] is invalid",
        ),
    ],
)
async def test_update_parameter_validation(client, db, body, error):
    token = await admin_token(db)
    await namespace_with_id(db, 127, "one")

    resp = await client.put(PATH, json=body, headers=admin_headers(token))

    assert resp.status == 400
    assert await resp.json() == {"error": error}
    assert await reconciliations(db) == []


async def test_invalid_records_are_reported_and_valid_ones_saved(client, db):
    """UpdateService upserts the valid records and answers with the others' errors (GitLab's contract)."""
    token = await admin_token(db)
    await namespace_with_id(db, 127, "one")

    resp = await client.put(
        PATH,
        json={"upcoming_reconciliations": [item(999), item(127), item(127 + 1000, next_date=None)]},
        headers=admin_headers(token),
    )

    assert resp.status == 400
    assert await resp.json() == {
        "message": {
            "error": '[{"999":["Namespace can\'t be blank"]},'
            '{"1127":["Namespace can\'t be blank","Next reconciliation date can\'t be blank"]}]'
        }
    }
    assert [row["namespace_id"] for row in await reconciliations(db)] == [127]


async def test_same_namespace_twice_keeps_the_last(client, db):
    token = await admin_token(db)
    await namespace_with_id(db, 127, "one")

    resp = await client.put(
        PATH,
        json={"upcoming_reconciliations": [item(127, "2024-01-01"), item(127, "2024-02-01")]},
        headers=admin_headers(token),
    )

    assert resp.status == 200
    assert [row["next_reconciliation_date"] for row in await reconciliations(db)] == [date(2024, 2, 1)]


async def test_delete_example(client, db):
    token = await admin_token(db)
    await namespace_with_id(db, 22, "gone")
    await client.put(PATH, json={"upcoming_reconciliations": [item(22)]}, headers=admin_headers(token))

    resp = await client.delete(f"{PATH}?namespace_id=22", headers={"PRIVATE-TOKEN": token})
    again = await client.delete(f"{PATH}?namespace_id=22", headers={"PRIVATE-TOKEN": token})

    assert resp.status == 204
    assert await reconciliations(db) == []
    assert (again.status, await again.json()) == (404, {"message": "404 Not Found"})


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("", "namespace_id is missing"),
        ("?namespace_id=", "namespace_id is empty"),
        ("?namespace_id=x", "namespace_id is invalid"),
    ],
)
async def test_delete_parameter_validation(client, db, query, error):
    token = await admin_token(db)

    resp = await client.delete(f"{PATH}{query}", headers=admin_headers(token))

    assert (resp.status, await resp.json()) == (400, {"error": error})


async def test_needs_an_admin(client, db):
    user = await make_user(db)
    token = await make_personal_access_token(db, user)
    await namespace_with_id(db, 127, "one")

    anonymous = await client.put(PATH, json={"upcoming_reconciliations": [item(127)]})
    non_admin = await client.put(
        PATH, json={"upcoming_reconciliations": [item(127)]}, headers={"PRIVATE-TOKEN": token}
    )
    delete = await client.delete(f"{PATH}?namespace_id=127", headers={"PRIVATE-TOKEN": token})

    assert (anonymous.status, await anonymous.json()) == (401, {"message": "401 Unauthorized"})
    assert (non_admin.status, await non_admin.json()) == (403, {"message": "403 Forbidden"})
    assert (delete.status, await delete.json()) == (403, {"message": "403 Forbidden"})
    assert await reconciliations(db) == []


async def test_only_on_gitlab_com_and_checked_before_authentication(
    aiohttp_client, settings, secrets, db, redis
):
    client = await aiohttp_client(create_app(settings.with_overrides(gitlab_com=False), secrets))
    token = await admin_token(db)
    await namespace_with_id(db, 127, "one")
    gate = {"message": "403 Forbidden - This API is gitlab.com only!"}

    anonymous = await client.put(PATH, json={"upcoming_reconciliations": [item(127)]})
    admin = await client.put(
        PATH, json={"upcoming_reconciliations": [item(127)]}, headers=admin_headers(token)
    )
    delete = await client.delete(f"{PATH}?namespace_id=127", headers=admin_headers(token))

    for resp in (anonymous, admin, delete):
        assert (resp.status, await resp.json()) == (403, gate)
    assert await reconciliations(db) == []
