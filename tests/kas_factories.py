"""Agents and agent tokens for the kas tests, written directly in SQL like tests/factories.py."""

from __future__ import annotations

import itertools
import secrets
from datetime import datetime
from typing import Any

import asyncpg

from service.domain.tokens import token_digest
from tests.factories import make_project, make_user
from tests.helpers import kas_headers

_sequence = itertools.count(1)


async def make_agent(
    db: asyncpg.Connection,
    project: asyncpg.Record | None = None,
    *,
    name: str | None = None,
    creator: asyncpg.Record | None = None,
) -> asyncpg.Record:
    """An agent configured in `project` (default: a new private project owned by a new user, who
    also created the agent and so may report vulnerabilities)."""
    if project is None:
        creator = creator or await make_user(db)
        project = await make_project(db, owner=creator)
    return await db.fetchrow(
        "INSERT INTO cluster_agents (name, project_id, created_by_user_id) VALUES ($1, $2, $3) RETURNING *",
        name or f"agent-{next(_sequence)}",
        project["id"],
        creator["id"] if creator else None,
    )


async def make_agent_token(
    db: asyncpg.Connection,
    agent: asyncpg.Record,
    *,
    status: str = "active",
    last_used_at: datetime | None = None,
) -> tuple[str, asyncpg.Record]:
    """A token in GitLab's format ("glagent-" + random); only its digest is stored."""
    token = "glagent-" + secrets.token_urlsafe(36)
    record = await db.fetchrow(
        "INSERT INTO cluster_agent_tokens (agent_id, token_digest, name, status, last_used_at)"
        " VALUES ($1, $2, $3, $4, $5) RETURNING *",
        agent["id"],
        token_digest(token),
        "token",
        status,
        last_used_at,
    )
    return token, record


def agent_headers(token: str, header: str = "Authorization", **claims: Any) -> dict[str, str]:
    """The kas JWT plus the agent token in one of the three headers kas has used."""
    value = f"Bearer {token}" if header == "Authorization" else token
    return {**kas_headers(**claims), header: value}
