"""POST /api/v4/namespaces/:id/minutes and PATCH .../minutes/move/:target_id."""

from __future__ import annotations

import asyncio
from datetime import date

import asyncpg
import pytest

from service.db import billing as billing_db
from service.domain import minutes
from tests.billing_helpers import (
    admin_headers,
    admin_token,
    make_pack,
    namespace_with_id,
    packs,
    personal_namespace,
)
from tests.factories import add_member, make_group, make_personal_access_token, make_user

XID = "46952fe69bebc1a4de10b2b4ff439d0c"
UNABLE = {"message": "400 Bad request - Unable to save additional packs"}


def pack(xid: str = XID, minutes: int = 10000, expires_at: str = "2022-01-01") -> dict[str, object]:
    return {"number_of_minutes": minutes, "expires_at": expires_at, "purchase_xid": xid}


# --- POST ---------------------------------------------------------------------------------------


async def test_create_example(client, db):
    token = await admin_token(db)
    await namespace_with_id(db, 123, "example")

    resp = await client.post(
        "/api/v4/namespaces/123/minutes",
        data='{"packs": [{"number_of_minutes": 10000, "expires_at": "2022-01-01",'
        ' "purchase_xid": "46952fe69bebc1a4de10b2b4ff439d0c"}]}',
        headers={"Content-Type": "application/json", "PRIVATE-TOKEN": token},
    )

    assert resp.status == 201
    assert await resp.json() == [
        {"namespace_id": 123, "expires_at": "2022-01-01", "number_of_minutes": 10000, "purchase_xid": XID}
    ]
    assert await packs(db) == [
        {"namespace_id": 123, "purchase_xid": XID, "number_of_minutes": 10000, "expires_at": date(2022, 1, 1)}
    ]


async def test_create_single_flat_pack(client, db):
    """The first version of the endpoint took one pack as top-level parameters and returned it."""
    token = await admin_token(db)
    namespace_id = await personal_namespace(db, await make_user(db))

    resp = await client.post(
        f"/api/v4/namespaces/{namespace_id}/minutes", json=pack(), headers=admin_headers(token)
    )

    assert resp.status == 201
    assert await resp.json() == {
        "namespace_id": namespace_id,
        "expires_at": "2022-01-01",
        "number_of_minutes": 10000,
        "purchase_xid": XID,
    }


async def test_create_several_packs_in_request_order(client, db):
    token = await admin_token(db)
    group = await make_group(db)

    resp = await client.post(
        f"/api/v4/namespaces/{group['id']}/minutes",
        json={"packs": [pack("zzz", 1), pack("aaa", 2), pack("mmm", 3)]},
        headers=admin_headers(token),
    )

    assert resp.status == 201
    assert [item["purchase_xid"] for item in await resp.json()] == ["zzz", "aaa", "mmm"]
    assert [row["number_of_minutes"] for row in await packs(db)] == [2, 3, 1]


async def test_retry_returns_the_existing_pack_unchanged(client, db):
    token = await admin_token(db)
    group = await make_group(db)
    path = f"/api/v4/namespaces/{group['id']}/minutes"
    first = await client.post(path, json={"packs": [pack(minutes=10000)]}, headers=admin_headers(token))

    retry = await client.post(
        path, json={"packs": [pack(minutes=99999, expires_at="2030-01-01")]}, headers=admin_headers(token)
    )

    assert (first.status, retry.status) == (201, 201)
    assert await retry.json() == await first.json()
    assert [row["number_of_minutes"] for row in await packs(db)] == [10000]


async def test_concurrent_retries_of_one_purchase_insert_one_pack(client, db):
    token = await admin_token(db)
    group = await make_group(db)
    path = f"/api/v4/namespaces/{group['id']}/minutes"

    responses = await asyncio.gather(
        *(client.post(path, json={"packs": [pack()]}, headers=admin_headers(token)) for _ in range(20))
    )

    assert [resp.status for resp in responses] == [201] * 20
    bodies = [await resp.json() for resp in responses]
    assert all(body == bodies[0] for body in bodies)
    assert bodies[0] == [
        {
            "namespace_id": group["id"],
            "expires_at": "2022-01-01",
            "number_of_minutes": 10000,
            "purchase_xid": XID,
        }
    ]
    assert len(await packs(db)) == 1


async def test_concurrent_purchases_sharing_packs_in_any_order_do_not_deadlock(client, db):
    token = await admin_token(db)
    group = await make_group(db)
    path = f"/api/v4/namespaces/{group['id']}/minutes"
    orders = [["a", "b", "c"], ["c", "b", "a"], ["b", "c", "a"]] * 4

    responses = await asyncio.gather(
        *(
            client.post(path, json={"packs": [pack(xid) for xid in order]}, headers=admin_headers(token))
            for order in orders
        )
    )

    assert [resp.status for resp in responses] == [201] * len(orders)
    assert [row["purchase_xid"] for row in await packs(db)] == ["a", "b", "c"]


async def test_one_invalid_pack_saves_nothing(client, db):
    token = await admin_token(db)
    group = await make_group(db)

    resp = await client.post(
        f"/api/v4/namespaces/{group['id']}/minutes",
        json={"packs": [pack("first"), pack("x" * 33)]},
        headers=admin_headers(token),
    )

    assert resp.status == 400
    assert await resp.json() == UNABLE
    assert await packs(db) == []


@pytest.mark.parametrize(
    "bad",
    [
        {"purchase_xid": None},
        {"purchase_xid": ""},
        {"expires_at": None},
        {"number_of_minutes": None},
    ],
)
async def test_blank_values_fail_the_model(client, db, bad):
    token = await admin_token(db)
    group = await make_group(db)

    resp = await client.post(
        f"/api/v4/namespaces/{group['id']}/minutes",
        json={"packs": [pack("ok"), {**pack("second"), **bad}]},
        headers=admin_headers(token),
    )

    assert (resp.status, await resp.json()) == (400, UNABLE)
    assert await packs(db) == []


@pytest.mark.parametrize("length", [33, 60, 100_000])
async def test_long_purchase_xid_fails_the_model(client, db, length):
    """Grape takes any String; AdditionalPack's `length: { maximum: 32 }` refuses it."""
    token = await admin_token(db)
    group = await make_group(db)

    resp = await client.post(
        f"/api/v4/namespaces/{group['id']}/minutes",
        json={"packs": [pack("x" * length)]},
        headers=admin_headers(token),
    )

    assert (resp.status, await resp.json()) == (400, UNABLE)
    assert await packs(db) == []


async def test_single_pack_error_message(client, db):
    token = await admin_token(db)
    group = await make_group(db)

    resp = await client.post(
        f"/api/v4/namespaces/{group['id']}/minutes", json=pack("y" * 40), headers=admin_headers(token)
    )

    assert (resp.status, await resp.json()) == (
        400,
        {"message": "400 Bad request - Unable to save additional pack"},
    )


async def test_purchase_held_by_another_namespace_saves_nothing(client, db):
    token = await admin_token(db)
    group = await make_group(db)
    other = await make_group(db)
    await make_pack(db, other["id"], "taken")

    resp = await client.post(
        f"/api/v4/namespaces/{group['id']}/minutes",
        json={"packs": [pack("fresh"), pack("taken")]},
        headers=admin_headers(token),
    )

    assert (resp.status, await resp.json()) == (400, UNABLE)
    assert [(row["namespace_id"], row["purchase_xid"]) for row in await packs(db)] == [(other["id"], "taken")]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({}, "packs is missing"),
        ({"packs": "lots"}, "packs is invalid"),
        ({"packs": ["lots"]}, "packs is invalid"),
        (
            {"packs": [{"expires_at": "2022-01-01", "purchase_xid": "a"}]},
            "packs[number_of_minutes] is missing",
        ),
        (
            {"packs": [pack("a"), {"number_of_minutes": 5, "expires_at": "2022-01-01"}]},
            "packs[purchase_xid] is missing",
        ),
        ({"packs": [{**pack(), "number_of_minutes": "many"}]}, "packs[number_of_minutes] is invalid"),
        ({"packs": [{**pack(), "number_of_minutes": 2**40}]}, "packs[number_of_minutes] is invalid"),
        ({"packs": [{**pack(), "expires_at": "someday"}]}, "packs[expires_at] is invalid"),
        # Grape's String takes 12 as "12"; a list is no string
        ({"packs": [{**pack(), "purchase_xid": ["a"]}]}, "packs[purchase_xid] is invalid"),
        ({"packs": [{**pack(), "purchase_xid": "a\x00b"}]}, "packs[purchase_xid] is invalid"),
        ({"number_of_minutes": 5, "expires_at": "2022-01-01"}, "purchase_xid is missing"),
    ],
)
async def test_parameter_validation(client, db, body, error):
    token = await admin_token(db)
    group = await make_group(db)

    resp = await client.post(
        f"/api/v4/namespaces/{group['id']}/minutes", json=body, headers=admin_headers(token)
    )

    assert resp.status == 400
    assert await resp.json() == {"error": error}
    assert await packs(db) == []


async def test_create_on_unknown_namespace(client, db):
    token = await admin_token(db)

    resp = await client.post(
        "/api/v4/namespaces/4040/minutes", json={"packs": [pack()]}, headers=admin_headers(token)
    )

    assert (resp.status, await resp.json()) == (404, {"message": "404 Namespace Not Found"})


async def test_create_by_full_path(client, db):
    token = await admin_token(db)
    group = await make_group(db, "buyer")

    resp = await client.post(
        "/api/v4/namespaces/buyer/minutes", json={"packs": [pack()]}, headers=admin_headers(token)
    )

    assert resp.status == 201
    assert (await resp.json())[0]["namespace_id"] == group["id"]


async def test_create_needs_an_admin(client, db):
    user = await make_user(db)
    namespace_id = await personal_namespace(db, user)
    token = await make_personal_access_token(db, user)
    path = f"/api/v4/namespaces/{namespace_id}/minutes"

    anonymous = await client.post(path, json={"packs": [pack()]})
    non_admin = await client.post(path, json={"packs": [pack()]}, headers={"PRIVATE-TOKEN": token})

    assert (anonymous.status, await anonymous.json()) == (401, {"message": "401 Unauthorized"})
    assert (non_admin.status, await non_admin.json()) == (403, {"message": "403 Forbidden"})
    assert await packs(db) == []


# --- PATCH move ---------------------------------------------------------------------------------


async def _owned_groups(db, owner=None):  # type: ignore[no-untyped-def]
    owner = owner or await make_user(db)
    source, target = await make_group(db), await make_group(db)
    await add_member(db, owner, source, 50)
    await add_member(db, owner, target, 50)
    return owner, source, target


async def test_move_example(client, db):
    token = await admin_token(db)
    owner = await make_user(db)
    await namespace_with_id(db, 123, "from")
    await namespace_with_id(db, 321, "to")
    await add_member(db, owner, {"id": 123}, 50, kind="Namespace")
    await add_member(db, owner, {"id": 321}, 50, kind="Namespace")
    await make_pack(db, 123, "one")
    await make_pack(db, 123, "two")

    resp = await client.patch("/api/v4/namespaces/123/minutes/move/321", headers={"PRIVATE-TOKEN": token})

    assert resp.status == 202
    assert await resp.json() == {"message": "202 Accepted"}
    assert [row["namespace_id"] for row in await packs(db)] == [321, 321]


async def test_move_from_personal_namespace_to_owned_group(client, db):
    token = await admin_token(db)
    owner = await make_user(db)
    personal = await personal_namespace(db, owner)
    group = await make_group(db)
    await add_member(db, owner, group, 50)
    await make_pack(db, personal, "mine")

    resp = await client.patch(
        f"/api/v4/namespaces/{owner['username']}/minutes/move/{group['id']}", headers=admin_headers(token)
    )

    assert resp.status == 202
    assert [row["namespace_id"] for row in await packs(db)] == [group["id"]]


async def _assert_move_refused(client, db, source_id, target_id, message, token):  # type: ignore[no-untyped-def]
    before = await packs(db)
    resp = await client.patch(
        f"/api/v4/namespaces/{source_id}/minutes/move/{target_id}", headers=admin_headers(token)
    )
    assert resp.status == 400
    assert await resp.json() == {"message": f"400 Bad request - {message}"}
    assert await packs(db) == before


async def test_move_refuses_subgroups(client, db):
    token = await admin_token(db)
    owner, source, target = await _owned_groups(db)
    child = await make_group(db, parent=source)
    await add_member(db, owner, child, 50)
    await make_pack(db, child["id"], "child-pack")
    await make_pack(db, source["id"], "source-pack")

    await _assert_move_refused(
        client, db, child["id"], target["id"], "Namespace must be a top-level namespace", token
    )
    await _assert_move_refused(
        client, db, source["id"], child["id"], "Target namespace must be a top-level namespace", token
    )


async def test_move_refuses_namespaces_without_a_shared_owner(client, db):
    token = await admin_token(db)
    _, source, _ = await _owned_groups(db)
    stranger_group = await make_group(db)
    await add_member(db, await make_user(db), stranger_group, 50)
    maintainer_only = await make_group(db)
    await make_pack(db, source["id"], "p1")
    await make_pack(db, source["id"], "p2")

    await _assert_move_refused(
        client, db, source["id"], stranger_group["id"], "Both namespaces must share the same owner", token
    )
    await _assert_move_refused(
        client, db, source["id"], maintainer_only["id"], "Both namespaces must share the same owner", token
    )
    assert {row["namespace_id"] for row in await packs(db)} == {source["id"]}


async def test_move_unknown_namespaces(client, db):
    token = await admin_token(db)
    _, source, _ = await _owned_groups(db)
    await make_pack(db, source["id"], "stay")

    missing_source = await client.patch(
        f"/api/v4/namespaces/9999/minutes/move/{source['id']}", headers=admin_headers(token)
    )
    missing_target = await client.patch(
        f"/api/v4/namespaces/{source['id']}/minutes/move/9999", headers=admin_headers(token)
    )

    assert (missing_source.status, await missing_source.json()) == (
        404,
        {"message": "404 Namespace Not Found"},
    )
    assert (missing_target.status, await missing_target.json()) == (
        404,
        {"message": "404 Target namespace Not Found"},
    )
    assert [row["namespace_id"] for row in await packs(db)] == [source["id"]]


async def test_move_needs_an_admin(client, db):
    owner, source, target = await _owned_groups(db)
    await make_pack(db, source["id"], "stay")
    token = await make_personal_access_token(db, owner)

    resp = await client.patch(
        f"/api/v4/namespaces/{source['id']}/minutes/move/{target['id']}", headers={"PRIVATE-TOKEN": token}
    )

    assert (resp.status, await resp.json()) == (403, {"message": "403 Forbidden"})
    assert [row["namespace_id"] for row in await packs(db)] == [source["id"]]


# --- the race, step by step ---------------------------------------------------------------------


async def _two_connections(backends):  # type: ignore[no-untyped-def]
    return await asyncpg.connect(backends.database_url), await asyncpg.connect(backends.database_url)


@pytest.mark.parametrize("first_outcome", ["commit", "rollback"])
async def test_retry_waits_for_an_uncommitted_purchase(db, backends, first_outcome):
    """A retry arriving while the first attempt is still in its transaction waits on the unique
    index, then answers with the committed pack (or saves its own if the first attempt failed)."""
    group = await make_group(db)
    namespace = await billing_db.find_namespace_by_id(db, group["id"])
    assert namespace is not None
    first, second = await _two_connections(backends)
    try:
        transaction = first.transaction()
        await transaction.start()
        await minutes.create_packs(first, namespace, [minutes.PackRequest(100, date(2030, 1, 1), XID)])
        retry = asyncio.create_task(
            minutes.create_packs(second, namespace, [minutes.PackRequest(999, date(2031, 1, 1), XID)])
        )
        await asyncio.sleep(0.3)
        assert not retry.done()  # blocked on the index entry, not answered from a stale snapshot
        await (transaction.commit() if first_outcome == "commit" else transaction.rollback())
        [answer] = await asyncio.wait_for(retry, 5)
    finally:
        await first.close()
        await second.close()

    expected_minutes = 100 if first_outcome == "commit" else 999
    assert answer.number_of_minutes == expected_minutes
    assert [row["number_of_minutes"] for row in await packs(db)] == [expected_minutes]
