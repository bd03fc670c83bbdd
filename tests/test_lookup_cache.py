"""Workers remember the keys, users, projects, memberships and agent tokens they looked up for a
fraction of a second (`lookup_cache_seconds`, service/db/batch.py). The promise that makes it safe:
whatever GitLab revokes in the database is refused by every worker within a second.

Two applications on one database stand for two workers (or two nodes), each with the default
setting, as in tests/test_settings_coherence.py. The changes are made in SQL, as GitLab's Rails
would make them, so that no worker hears of them: only the bound can make them apply.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta, timezone

import orjson
import pytest

from service.app import create_app
from service.config import Settings, load_settings
from tests.factories import add_member, make_key, make_project, make_user, set_application_settings
from tests.helpers import shell_headers
from tests.kas_factories import agent_headers, make_agent, make_agent_token

ALLOWED = "/api/v4/internal/allowed"
AUTHORIZED_KEYS = "/api/v4/internal/authorized_keys"
AGENT_INFO = "/api/v4/internal/kubernetes/agent_info"
REMEMBER_SECONDS = Settings.lookup_cache_seconds  # the shipped default
# The promise is one second; half a second more for a loaded CI machine (as the settings test).
BOUND = 1.0 + 0.5


@pytest.fixture
async def workers(aiohttp_client, settings, secrets):  # type: ignore[no-untyped-def]
    remembering = settings.with_overrides(lookup_cache_seconds=REMEMBER_SECONDS)
    return [await aiohttp_client(create_app(remembering, secrets)) for _ in range(2)]


async def _refused_everywhere_within_the_bound(workers, answer: Callable[..., Awaitable[int]], refused: int) -> float:  # type: ignore[no-untyped-def]
    """Poll every worker until each answers `refused`; fail if one still grants past the bound."""
    changed_at = time.monotonic()
    pending = list(workers)
    while pending:
        elapsed = time.monotonic() - changed_at
        pending = [worker for worker in pending if await answer(worker) != refused]
        if pending:
            assert elapsed < BOUND, f"a worker still grants {elapsed:.2f} s after the change"
            await asyncio.sleep(0.02)
    return time.monotonic() - changed_at


async def _granted_then_refused(workers, answer, revoke: Awaitable[object], refused: int) -> None:  # type: ignore[no-untyped-def]
    for _ in range(3):  # every worker has the answer remembered now
        assert [await answer(w) for w in workers] == [200, 200]
    await revoke
    await _refused_everywhere_within_the_bound(workers, answer, refused)


def _allowed_status(body: dict[str, str]):  # type: ignore[no-untyped-def]
    async def status(worker) -> int:  # type: ignore[no-untyped-def]
        async with worker.post(ALLOWED, json=body, headers=shell_headers()) as resp:
            return resp.status

    return status


def _ssh_key_query(parsed) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {"key": base64.b64encode(parsed.blob).decode()}  # what sshd's AuthorizedKeysCommand sends


async def test_the_default_remembers_for_half_a_second_and_no_more_than_one():
    assert load_settings(environ={}).lookup_cache_seconds == REMEMBER_SECONDS == 0.5
    assert load_settings(environ={"GITLAB_LOOKUP_CACHE_SECONDS": "0"}).lookup_cache_seconds == 0
    for beyond_the_promise in ("1.5", "-1"):
        with pytest.raises(ValueError, match="lookup_cache_seconds"):
            load_settings(environ={"GITLAB_LOOKUP_CACHE_SECONDS": beyond_the_promise})


async def test_a_worker_answers_a_repeated_lookup_from_memory(aiohttp_client, settings, secrets, db):
    """What the setting is for: the second lookup of a key does not reach the database. Shown with
    a key deleted in between, answered once more from memory (a second is remembered here, so the
    test is not a race against the clock)."""
    worker = await aiohttp_client(create_app(settings.with_overrides(lookup_cache_seconds=1.0), secrets))
    user = await make_user(db)
    key, parsed = await make_key(db, user)
    query = _ssh_key_query(parsed)
    async with worker.get(AUTHORIZED_KEYS, params=query, headers=shell_headers()) as resp:
        assert resp.status == 200
        first = await resp.json()
    await db.execute("DELETE FROM keys WHERE id = $1", key["id"])
    async with worker.get(AUTHORIZED_KEYS, params=query, headers=shell_headers()) as resp:
        assert (resp.status, await resp.json()) == (200, first)


async def test_a_deleted_key_stops_authorizing_ssh_on_every_worker_within_a_second(workers, db):
    user = await make_user(db)
    key, parsed = await make_key(db, user)
    query = _ssh_key_query(parsed)

    async def lookup(worker) -> int:  # type: ignore[no-untyped-def]
        async with worker.get(AUTHORIZED_KEYS, params=query, headers=shell_headers()) as resp:
            return resp.status

    await _granted_then_refused(workers, lookup, db.execute("DELETE FROM keys WHERE id = $1", key["id"]), 404)


async def test_a_new_key_is_found_within_a_second_after_it_was_unknown(workers, db):
    """Unknown keys are remembered too (sshd asks about each key a client offers): a key added
    right after a failed lookup works within the same bound."""
    user = await make_user(db)
    key, parsed = await make_key(db, user)
    query = _ssh_key_query(parsed)
    await db.execute("UPDATE keys SET fingerprint_sha256 = 'elsewhere' WHERE id = $1", key["id"])

    async def lookup(worker) -> int:  # type: ignore[no-untyped-def]
        async with worker.get(AUTHORIZED_KEYS, params=query, headers=shell_headers()) as resp:
            return resp.status

    assert [await lookup(w) for w in workers] == [404, 404]
    await db.execute("UPDATE keys SET fingerprint_sha256 = $2 WHERE id = $1", key["id"], parsed.fingerprint_sha256)
    await _refused_everywhere_within_the_bound(workers, lookup, 200)


async def test_a_renamed_key_or_user_shows_in_the_answer_within_a_second(workers, db):
    """The answer's JSON is encoded once per remembered row (service/rendered.py): a changed
    title or owner's name is a new row, so it shows within the same bound as a revocation."""
    user = await make_user(db, name="Before")
    key, parsed = await make_key(db, user)
    query = _ssh_key_query(parsed)

    async def answer(worker) -> tuple[str, str]:  # type: ignore[no-untyped-def]
        async with worker.get(AUTHORIZED_KEYS, params=query, headers=shell_headers()) as resp:
            assert resp.status == 200
            body = await resp.json()
            return body["title"], body["key"].split(" ", 2)[2]

    first = [await answer(w) for w in workers]
    assert first[0] == first[1] and first[0][1].startswith("Before (")
    await db.execute("UPDATE keys SET title = 'renamed' WHERE id = $1", key["id"])
    await db.execute("UPDATE users SET name = 'After' WHERE id = $1", user["id"])
    changed_at = time.monotonic()
    pending = list(workers)
    while pending:
        pending = [w for w in pending if await answer(w) != ("renamed", first[0][1].replace("Before", "After"))]
        if pending:
            assert time.monotonic() - changed_at < BOUND, "a worker still answers the old title and name"
            await asyncio.sleep(0.02)


def _pull(key_id: int, project: str) -> dict[str, str]:
    return {"action": "git-upload-pack", "project": project, "changes": "_any", "protocol": "ssh", "key_id": str(key_id)}


async def test_a_blocked_user_is_refused_git_access_on_every_worker_within_a_second(workers, db):
    user = await make_user(db)
    key, _ = await make_key(db, user)
    await make_project(db, owner=user, path="app")
    pull = _allowed_status(_pull(key["id"], f"{user['username']}/app.git"))
    await _granted_then_refused(workers, pull, db.execute("UPDATE users SET state = 'blocked' WHERE id = $1", user["id"]), 401)


async def test_a_removed_member_loses_a_private_project_on_every_worker_within_a_second(workers, db):
    owner = await make_user(db)
    member = await make_user(db)
    key, _ = await make_key(db, member)
    project = await make_project(db, owner=owner, path="secret")
    await add_member(db, member, project, 30)
    pull = _allowed_status(_pull(key["id"], f"{owner['username']}/secret.git"))
    await _granted_then_refused(workers, pull, db.execute("DELETE FROM members WHERE user_id = $1", member["id"]), 404)


async def test_two_first_pushes_to_a_new_path_in_quick_succession_both_succeed(workers, db):
    """"No such project" is never remembered: the first push creates it, and the next one (through
    the other worker, a moment later) must find it rather than try to create it again."""
    user = await make_user(db)
    push = {"action": "git-receive-pack", "project": f"{user['username']}/fresh.git", "protocol": "ssh",
            "changes": "_any", "user_id": str(user["id"])}
    for worker in (*workers, *workers):
        async with worker.post(ALLOWED, json=push, headers=shell_headers()) as resp:
            assert resp.status == 200, await resp.text()
    assert await db.fetchval("SELECT count(*) FROM routes WHERE path = $1", f"{user['username']}/fresh") == 1


async def test_a_revoked_agent_token_is_refused_on_every_worker_within_a_second(workers, db):
    owner = await make_user(db)
    project = await make_project(db, owner=owner, path="infra")
    agent = await make_agent(db, project, creator=owner)
    token, record = await make_agent_token(db, agent)

    async def agent_info(worker) -> int:  # type: ignore[no-untyped-def]
        async with worker.get(AGENT_INFO, headers=agent_headers(token)) as resp:
            return resp.status

    revoke = db.execute("UPDATE cluster_agent_tokens SET status = 'revoked' WHERE id = $1", record["id"])
    await _granted_then_refused(workers, agent_info, revoke, 401)


# /allowed's kept answers (allowed_answer in service/domain/git_access.py): a worker that remembers a
# context row also keeps the body it computed from it. What must still hold for every call:


def _keeping(settings: Settings) -> Settings:
    """A worker that remembers rows and settings for a second: long enough not to race the clock."""
    return settings.with_overrides(lookup_cache_seconds=1.0, settings_cache_seconds=1.0)


async def _active_today(db, user) -> None:  # type: ignore[no-untyped-def]
    """A user whose first pull of the day is behind them: a pull that stamps the day's activity
    wrote something, and its answer is not kept."""
    await db.execute("UPDATE users SET last_activity_on = $1 WHERE id = $2", date.today(), user["id"])


async def _pull_answer(worker, body: dict[str, str]) -> tuple[int, bytes]:  # type: ignore[no-untyped-def]
    async with worker.post(ALLOWED, json=body, headers=shell_headers()) as resp:
        return resp.status, await resp.read()


async def test_a_kept_allowed_answer_is_the_same_body_and_every_call_still_counts_against_the_rate_limit(
    aiohttp_client, settings, secrets, db
):
    await set_application_settings(db, gitlab_shell_operation_limit=3)
    worker = await aiohttp_client(create_app(_keeping(settings), secrets))
    user = await make_user(db)
    await _active_today(db, user)
    key, _ = await make_key(db, user)
    await make_project(db, owner=user, path="app")
    pull = _pull(key["id"], f"{user['username']}/app.git")
    answers = [await _pull_answer(worker, pull) for _ in range(3)]
    assert {status for status, _ in answers} == {200}
    assert answers[0][1] == answers[1][1] == answers[2][1]
    assert orjson.loads(answers[0][1])["gl_key_id"] == key["id"]
    status, body = await _pull_answer(worker, pull)  # the same shape, answered within the second
    assert status == 429, body


async def test_a_kept_allowed_answer_ends_when_the_key_expires_even_while_its_row_is_remembered(
    aiohttp_client, settings, secrets, db
):
    """The row stays remembered for a second, unchanged; the answer must follow the clock: first
    the expiring-soon notice, then the refusal, at the moments the key's expiry sets."""
    worker = await aiohttp_client(create_app(_keeping(settings), secrets))
    user = await make_user(db)
    await _active_today(db, user)
    await make_project(db, owner=user, path="app")
    soon, _ = await make_key(db, user, expires_at=datetime.now(timezone.utc) + timedelta(days=7, seconds=0.4))
    gone, _ = await make_key(db, user, expires_at=datetime.now(timezone.utc) + timedelta(seconds=0.4))
    soon_pull = _pull(soon["id"], f"{user['username']}/app.git")
    gone_pull = _pull(gone["id"], f"{user['username']}/app.git")
    for _ in range(2):
        status, body = await _pull_answer(worker, soon_pull)
        assert status == 200 and orjson.loads(body)["gl_console_messages"] == []
        assert (await _pull_answer(worker, gone_pull))[0] == 200
    await asyncio.sleep(0.5)  # both moments have passed; both rows are still remembered
    status, body = await _pull_answer(worker, soon_pull)
    assert status == 200
    assert orjson.loads(body)["gl_console_messages"] == ["INFO: Your SSH key is expiring soon. Please generate a new key."]
    status, body = await _pull_answer(worker, gone_pull)
    assert (status, orjson.loads(body)["message"]) == (401, "Your SSH key has expired.")
