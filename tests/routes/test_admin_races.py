"""Admin writes that race each other: a rename against creations under the renamed namespace, and
writes that name a user against that user's deletion. Real concurrent transactions on PostgreSQL:
each request holds its own connection, and the requests of one round are in flight together."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from service.domain.admin import namespaces as namespaces_domain
from service.domain.admin import users as users_domain
from tests.admin_helpers import created, make_admin
from tests.factories import add_member, ed25519_public_key, make_group, make_project, make_user

# Every route must be its parent's route and its own path: a project's under its namespace's, a
# subgroup's under its parent group's. A creation that read the old path of a namespace renamed
# meanwhile would leave a route here.
MISPLACED_ROUTES = """
SELECT r.path FROM projects p
JOIN routes r ON r.source_type = 'Project' AND r.source_id = p.id
JOIN routes nr ON nr.source_type = 'Namespace' AND nr.source_id = p.namespace_id
WHERE r.path <> nr.path || '/' || p.path
UNION ALL
SELECT r.path FROM namespaces n
JOIN routes r ON r.source_type = 'Namespace' AND r.source_id = n.id
JOIN routes pr ON pr.source_type = 'Namespace' AND pr.source_id = n.parent_id
WHERE r.path <> pr.path || '/' || n.path
"""


async def test_renames_racing_creations_leave_every_route_under_its_namespace(client, db):
    _, token = await make_admin(db)
    headers = {"PRIVATE-TOKEN": token}
    group = await created(client, token, "/api/v4/groups", {"name": "g0", "path": "g0"})
    sub = await created(client, token, "/api/v4/groups", {"name": "sub", "path": "sub", "parent_id": group["id"]})
    user = await created(
        client,
        token,
        "/api/v4/users",
        {"username": "u0", "email": "u0@example.com", "name": "U", "password": "correct-horse-1"},
    )
    personal = await db.fetchval("SELECT id FROM namespaces WHERE owner_id = $1 AND type = 'User'", user["id"])
    for n in range(1, 7):
        requests = [
            client.put(f"/api/v4/groups/{group['id']}", json={"path": f"g{n}"}, headers=headers),
            client.put(f"/api/v4/users/{user['id']}", json={"username": f"u{n}"}, headers=headers),
            *(
                client.post("/api/v4/projects", json={"name": f"p{n}x{i}", "namespace_id": namespace}, headers=headers)
                for i in range(3)
                for namespace in (sub["id"], personal)
            ),
            *(
                client.post("/api/v4/groups", json={"name": f"s{n}x{i}", "path": f"s{n}x{i}", "parent_id": sub["id"]}, headers=headers)
                for i in range(2)
            ),
        ]
        answers = await asyncio.gather(*requests)
        assert [a.status for a in answers] == [200, 200] + [201] * 8, [await a.text() for a in answers]
    assert await db.fetch(MISPLACED_ROUTES) == []
    assert await db.fetchval("SELECT count(*) FROM projects") == 36
    # and the paths resolve: the last project made under the subgroup is where its route says
    resp = await client.get("/api/v4/projects/g6%2Fsub%2Fp6x2", headers=headers)
    assert (resp.status, (await resp.json())["path_with_namespace"]) == (200, "g6/sub/p6x2")


async def test_writes_racing_a_users_deletion_answer_404_never_500(client, db):
    _, token = await make_admin(db)
    headers = {"PRIVATE-TOKEN": token}
    owner = await make_user(db)
    project = await make_project(db, owner=owner)
    statuses: dict[str, set[int]] = {}
    for n in range(12):
        user = await make_user(db)
        requests = {
            "delete": client.delete(f"/api/v4/users/{user['id']}", headers=headers),
            "update": client.put(f"/api/v4/users/{user['id']}", json={"name": f"N{n}", "username": f"renamed{n}"}, headers=headers),
            "member": client.post(
                f"/api/v4/projects/{project['id']}/members", json={"user_id": user["id"], "access_level": 30}, headers=headers
            ),
            "key": client.post(f"/api/v4/users/{user['id']}/keys", json={"title": "k", "key": ed25519_public_key()}, headers=headers),
            "token": client.post(
                f"/api/v4/users/{user['id']}/personal_access_tokens", json={"name": "t", "scopes": ["api"]}, headers=headers
            ),
            "block": client.post(f"/api/v4/users/{user['id']}/block", headers=headers),
        }
        answers = dict(zip(requests, await asyncio.gather(*requests.values())))
        for name, answer in answers.items():
            statuses.setdefault(name, set()).add(answer.status)
            if answer.status == 404:
                assert await answer.json() == {"message": "404 User Not Found"}, name
        assert answers["delete"].status == 204
        # nothing of the user outlived it
        for table in ("members", "keys", "personal_access_tokens"):
            assert await db.fetchval(f"SELECT count(*) FROM {table} WHERE user_id = $1", user["id"]) == 0, table
    assert statuses["delete"] == {204}
    for name in ("update", "member", "key", "token", "block"):
        assert statuses[name] <= {200, 201, 404}, (name, statuses[name])


async def test_a_group_and_its_parent_renamed_at_once_keep_their_routes_in_step(client, db):
    """Each rename moves the routes under the path it reads: the child's must be read once the
    parent's rename is over, or it moves nothing and keeps a path that no longer exists."""
    _, token = await make_admin(db)
    headers = {"PRIVATE-TOKEN": token}
    for n in range(8):
        top = await created(client, token, "/api/v4/groups", {"name": f"a{n}", "path": f"a{n}"})
        middle = await created(client, token, "/api/v4/groups", {"name": f"b{n}", "path": f"b{n}", "parent_id": top["id"]})
        bottom = await created(client, token, "/api/v4/groups", {"name": f"c{n}", "path": f"c{n}", "parent_id": middle["id"]})
        await created(client, token, "/api/v4/projects", {"name": f"p{n}", "namespace_id": bottom["id"]})
        answers = await asyncio.gather(
            client.put(f"/api/v4/groups/{top['id']}", json={"path": f"a{n}n"}, headers=headers),
            client.put(f"/api/v4/groups/{middle['id']}", json={"path": f"b{n}n"}, headers=headers),
            client.put(f"/api/v4/groups/{bottom['id']}", json={"name": f"C{n}", "path": f"c{n}n"}, headers=headers),
            client.post("/api/v4/projects", json={"name": f"q{n}", "namespace_id": bottom["id"]}, headers=headers),
            client.post("/api/v4/groups", json={"name": f"d{n}", "path": f"d{n}", "parent_id": bottom["id"]}, headers=headers),
        )
        assert [a.status for a in answers] == [200, 200, 200, 201, 201], [await a.text() for a in answers]
        assert await db.fetch(MISPLACED_ROUTES) == []
        resp = await client.get(f"/api/v4/projects/a{n}n%2Fb{n}n%2Fc{n}n%2Fq{n}", headers=headers)
        assert resp.status == 200


async def test_memberships_added_while_their_group_is_deleted_go_with_it(client, db):
    _, token = await make_admin(db)
    headers = {"PRIVATE-TOKEN": token}
    users = [await make_user(db) for _ in range(4)]
    statuses = set()
    for n in range(10):
        group = await created(client, token, "/api/v4/groups", {"name": f"m{n}", "path": f"m{n}"})
        sub = await created(client, token, "/api/v4/groups", {"name": f"s{n}", "path": f"s{n}", "parent_id": group["id"]})
        project = await created(client, token, "/api/v4/projects", {"name": f"p{n}", "namespace_id": sub["id"]})
        requests = [
            client.post(f"/api/v4/groups/{group['id']}/members", json={"user_id": users[0]["id"], "access_level": 30}, headers=headers),
            client.post(f"/api/v4/groups/{sub['id']}/members", json={"user_id": users[1]["id"], "access_level": 30}, headers=headers),
            client.post(f"/api/v4/projects/{project['id']}/members", json={"user_id": users[2]["id"], "access_level": 30}, headers=headers),
            client.delete(f"/api/v4/groups/{group['id']}", headers=headers),
            client.post(f"/api/v4/projects/{project['id']}/members", json={"user_id": users[3]["id"], "access_level": 30}, headers=headers),
        ]
        answers = await asyncio.gather(*requests)
        statuses |= {a.status for a in answers}
        assert answers[3].status == 202
    assert statuses <= {201, 202, 404}, statuses
    orphans = await db.fetchval(
        "SELECT count(*) FROM members m WHERE NOT EXISTS ("
        " SELECT 1 FROM namespaces n WHERE m.source_type = 'Namespace' AND n.id = m.source_id"
        " UNION ALL SELECT 1 FROM projects p WHERE m.source_type = 'Project' AND p.id = m.source_id)"
    )
    assert orphans == 0


async def test_concurrent_projects_of_one_name_make_one(client, db):
    _, token = await make_admin(db)
    headers = {"PRIVATE-TOKEN": token}
    group = await created(client, token, "/api/v4/groups", {"name": "same", "path": "same"})
    for n in range(5):
        answers = await asyncio.gather(
            *(
                client.post(
                    "/api/v4/projects",
                    json={"name": f"Name{n}", "path": f"path-{n}-{i}", "namespace_id": group["id"]},
                    headers=headers,
                )
                for i in range(6)
            )
        )
        statuses = sorted(a.status for a in answers)
        assert statuses == [201] + [400] * 5, statuses
        for answer in answers:
            if answer.status == 400:
                assert await answer.json() == {"message": {"name": ["has already been taken"]}}
    assert await db.fetchval("SELECT count(*) FROM projects WHERE namespace_id = $1", group["id"]) == 5


async def test_the_pairs_that_deadlocked_take_their_locks_in_one_order(client, db):
    """Namespaces (root first), then projects, then users, in every transaction: the pairs a review
    found deadlocking (a 503 after PostgreSQL's deadlock_timeout) now wait for each other."""
    _, token = await make_admin(db)
    headers = {"PRIVATE-TOKEN": token}
    statuses: set[int] = set()
    for n in range(6):
        top = await created(client, token, "/api/v4/groups", {"name": f"t{n}", "path": f"t{n}"})
        doomed = await created(client, token, "/api/v4/groups", {"name": f"d{n}", "path": f"d{n}", "parent_id": top["id"]})
        elsewhere = await created(client, token, "/api/v4/groups", {"name": f"e{n}", "path": f"e{n}"})
        moving = await created(client, token, "/api/v4/projects", {"name": f"m{n}", "namespace_id": doomed["id"]})
        staying = await created(client, token, "/api/v4/projects", {"name": f"s{n}", "namespace_id": doomed["id"]})
        user = await created(
            client,
            token,
            "/api/v4/users",
            {"username": f"owner{n}", "email": f"owner{n}@example.com", "name": "O", "password": "correct-horse-1"},
        )
        personal = await db.fetchval("SELECT id FROM namespaces WHERE owner_id = $1 AND type = 'User'", user["id"])
        answers = await asyncio.gather(
            client.put(f"/api/v4/projects/{staying['id']}", json={"name": f"S{n}", "path": f"s{n}x"}, headers=headers),
            client.put(f"/api/v4/projects/{moving['id']}/transfer", json={"namespace": elsewhere["id"]}, headers=headers),
            client.delete(f"/api/v4/groups/{doomed['id']}", headers=headers),
            client.put(f"/api/v4/groups/{top['id']}", json={"path": f"t{n}n"}, headers=headers),
            client.put(f"/api/v4/users/{user['id']}", json={"username": f"owner{n}n"}, headers=headers),
            client.post("/api/v4/projects", json={"name": f"own{n}", "namespace_id": personal}, headers=headers),
            client.post(f"/api/v4/users/{user['id']}/block", headers=headers),
        )
        statuses |= {a.status for a in answers}
        assert 503 not in {a.status for a in answers} and 500 not in {a.status for a in answers}, [await a.text() for a in answers]
        assert await db.fetch(MISPLACED_ROUTES) == []
        gone = await client.delete(f"/api/v4/users/{user['id']}", headers=headers)
        again = await client.put(f"/api/v4/users/{user['id']}", json={"name": "late"}, headers=headers)
        assert (gone.status, again.status) == (204, 404)
    assert statuses <= {200, 201, 202, 404}, statuses


async def test_a_race_past_a_check_gets_the_checks_own_answer(client, db):
    _, token = await make_admin(db)
    headers = {"PRIVATE-TOKEN": token}

    def new_user(username: str, email: str) -> dict[str, str]:
        return {"username": username, "email": email, "name": "N", "password": "correct-horse-1"}

    for n in range(4):
        same_name = await asyncio.gather(
            *(client.post("/api/v4/users", json=new_user(f"twin{n}", f"twin{n}-{i}@example.com"), headers=headers) for i in range(5))
        )
        answers = sorted([(a.status, await a.json()) for a in same_name], key=lambda answer: answer[0])
        assert [status for status, _ in answers] == [201, 409, 409, 409, 409], answers
        assert all(body == {"message": "Username has already been taken"} for _, body in answers[1:])
        # a user and a group racing for one top-level path: each loser gets its own route's answer
        user_answer, group_answer = await asyncio.gather(
            client.post("/api/v4/users", json=new_user(f"spot{n}", f"spot{n}@example.com"), headers=headers),
            client.post("/api/v4/groups", json={"name": f"spot{n}", "path": f"spot{n}"}, headers=headers),
        )
        outcomes = {(user_answer.status, str(await user_answer.json())[:40]), (group_answer.status, str(await group_answer.json())[:40])}
        assert sorted(status for status, _ in outcomes) == [201, 400], outcomes
        if user_answer.status == 400:
            assert await user_answer.json() == {"message": {"username": ["has already been taken"]}}
        else:
            assert await group_answer.json() == {"message": {"path": ["has already been taken"]}}


@pytest.mark.parametrize("second_owner", ["added", "promoted"])
async def test_hard_delete_keeps_a_group_that_gained_an_owner_meanwhile(db, backends, second_owner):
    """hard_delete deletes the groups a user alone owns, checked again under each group's lock: an
    owner added or promoted in a transaction in flight commits first, and the group stays."""
    leaving = await make_user(db)
    other = await make_user(db)
    group = await make_group(db, f"shared-{second_owner}")
    await add_member(db, leaving, group, 50)
    if second_owner == "promoted":
        await add_member(db, other, group, 30)
    adding = await asyncpg.connect(backends.database_url)
    deleting = await asyncpg.connect(backends.database_url)
    try:
        transaction = adding.transaction()
        await transaction.start()
        if second_owner == "added":
            await namespaces_domain.add_member(
                adding, "Namespace", group["id"], user_id=other["id"], access_level=50, expires_at=None,
                actor_id=leaving["id"],
            )
        else:
            await namespaces_domain.update_member(
                adding, "Namespace", group["id"], other["id"], access_level=50, expires_at=None, expires_given=False
            )
        deletion = asyncio.create_task(users_domain.delete_user(deleting, leaving["id"], hard_delete=True))
        await asyncio.sleep(0.3)
        assert not deletion.done()  # it waits for the group the other transaction holds
        await transaction.commit()
        await deletion
    finally:
        await adding.close()
        await deleting.close()
    assert await db.fetchval("SELECT count(*) FROM namespaces WHERE id = $1", group["id"]) == 1
    assert await db.fetchval(
        "SELECT access_level FROM members WHERE user_id = $1 AND source_id = $2", other["id"], group["id"]
    ) == 50
    assert await db.fetchval("SELECT count(*) FROM users WHERE id = $1", leaving["id"]) == 0
