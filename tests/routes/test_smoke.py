from tests.factories import make_key, make_project, make_user
from tests.helpers import shell_headers


async def test_allowed_download_public(client, db):
    user = await make_user(db)
    key, _ = await make_key(db, user)
    project = await make_project(db, owner=user, visibility_level=20)
    resp = await client.post(
        "/api/v4/internal/allowed",
        json={"action": "git-upload-pack", "project": project["full_path"] + ".git", "changes": "_any",
              "protocol": "ssh", "key_id": str(key["id"])},
        headers=shell_headers(),
    )
    body = await resp.json()
    assert resp.status == 200, body
    assert body["gl_id"] == f"user-{user['id']}"
