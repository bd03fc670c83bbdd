"""Driving the admin API with python-gitlab, the client operators use.

python-gitlab is synchronous (requests) while the aiohttp test server runs in the test's event
loop, so every call goes through `call()`, which runs it in a worker thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import asyncpg
import gitlab

from tests.factories import make_personal_access_token, make_user

T = TypeVar("T")


async def call(fn: Callable[[], T]) -> T:
    return await asyncio.to_thread(fn)


def base_url(client: Any) -> str:
    # python-gitlab appends /api/v4 itself
    return str(client.make_url("")).rstrip("/")


@contextmanager
def gitlab_client(client: Any, token: str) -> Iterator[gitlab.Gitlab]:
    # The context manager closes the requests session: no socket left for the GC to warn about.
    # keep_base_url: the test server listens on 127.0.0.1 while entities carry the instance's
    # external URL (http://gitlab.test), like a deployment reached through a proxy.
    with gitlab.Gitlab(base_url(client), private_token=token, keep_base_url=True) as gl:
        yield gl


async def make_admin(db: asyncpg.Connection, **overrides: Any) -> tuple[asyncpg.Record, str]:
    admin = await make_user(db, admin=True, **overrides)
    return admin, await make_personal_access_token(db, admin, scopes=["api"])


async def error_of(fn: Callable[[], Any]) -> gitlab.exceptions.GitlabError:
    """The python-gitlab exception a call raises (its response_code and error_message are asserted)."""
    try:
        await call(fn)
    except gitlab.exceptions.GitlabError as exc:
        return exc
    raise AssertionError("the call succeeded")


async def created(client: Any, token: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST `body` to an admin API path as the admin with `token`; the created object (201)."""
    resp = await client.post(path, json=body, headers={"PRIVATE-TOKEN": token})
    assert resp.status == 201, (path, resp.status, await resp.text())
    answer: dict[str, Any] = await resp.json()
    return answer
