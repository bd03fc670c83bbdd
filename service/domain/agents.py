"""GitLab agents for Kubernetes: agent tokens, what an agent may read, and its configuration's authorizations.

GitLab: lib/api/internal/kubernetes.rb, app/services/clusters/agent_tokens/track_usage_service.rb,
app/services/clusters/agents/authorizations/{ci_access,user_access}/refresh_service.rb.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple


from service.db.rows import Pool
from service.config import Storage
from service.db import agents as agents_db

# the rows the routes render, re-exported: routes do not import service/db
from service.db.agents import AgentContextRow as AgentContextRow
from service.db.agents import AgentTokenRow
from service.db.batch import BatchLoader
from service.db.agents import KasProjectRow as KasProjectRow
from service.db.rows import Conn
from service.domain.errors import NoRoute
from service.domain.ids import as_id
from service.domain.permissions import MAINTAINER, Viewer, can_download
from service.domain.repository import gitaly_repository
from service.domain.tokens import token_digest

# TrackUsageService::UPDATE_USED_COLUMN_EVERY: last_used_at is written at most this often, at a
# random point in the range so that an agent fleet does not write in lock step.
UPDATE_USED_COLUMN_EVERY = (timedelta(minutes=40), timedelta(minutes=55))
# CiAccess/UserAccess::RefreshService::AUTHORIZED_ENTITY_LIMIT: of each list (projects, groups) of
# each section, entries past this are ignored (`.first(500)` before index_by, so malformed and
# duplicate entries count towards it).
AUTHORIZED_ENTITY_LIMIT = 500
AUTHORIZATION_KINDS = ("ci_access", "user_access")
AUTHORIZATION_ENTITIES = ("projects", "groups")
# API::Helpers::INTEGER_ID_REGEX; ASCII digits as Ruby's \d, and few enough for int() (past bigint
# anyway at 20)
_INTEGER_ID = re.compile(r"-?\d{1,64}\Z", re.ASCII)
_ANONYMOUS = Viewer(user_id=None, admin=False, external=False, access_level=0)


def usage_is_stale(last_used_at: datetime | None, now: datetime, max_age: timedelta) -> bool:
    return last_used_at is None or now - last_used_at >= max_age


class AgentTokenUse(NamedTuple):
    agent_id: int
    token_id: int


AgentTokens = BatchLoader[str, AgentTokenRow | None]  # by token digest
AgentContexts = BatchLoader[int, AgentContextRow | None]  # by agent id


async def authenticate_agent_token(tokens: AgentTokens, pool: Pool, token: str) -> AgentTokenUse | None:
    """The agent behind an active token, recording its use now and then; None when there is none."""
    digest = token_digest(token)
    found = await tokens.load(digest)
    if found is None:
        return None
    max_age = timedelta(seconds=random.uniform(*(d.total_seconds() for d in UPDATE_USED_COLUMN_EVERY)))
    if usage_is_stale(found.last_used_at, datetime.now(UTC), max_age):
        async with pool.acquire() as conn:
            # The statement re-checks the age, so concurrent requests write once.
            await agents_db.touch_token(conn, found.id, max_age.total_seconds())
        tokens.forget(digest)  # the remembered row has the old last_used_at: write once, not per request
    return AgentTokenUse(found.agent_id, found.id)


# --- What kas is told about repositories ---------------------------------------------------------


def gitaly_info(storage: Storage) -> dict[str, Any]:
    # kas requires a string token; an unset one is the empty string, not null.
    return {"address": storage.gitaly_address, "token": storage.gitaly_token or "", "features": {}}


def agent_info(agent: AgentContextRow, storage: Storage) -> dict[str, Any]:
    """GET /internal/kubernetes/agent_info: the agent and how to fetch its configuration project."""
    return {
        "project_id": agent.project_id,
        "agent_id": agent.agent_id,
        "agent_name": agent.agent_name,
        "gitaly_info": gitaly_info(storage),
        "gitaly_repository": gitaly_repository(
            agent.repository_storage,
            agent.project_id,
            agent.legacy_disk_path,
            f"project-{agent.project_id}",
            agent.project_full_path,
        ),
        "default_branch": agent.default_branch,
    }


def project_info(project: KasProjectRow, storage: Storage) -> dict[str, Any]:
    return {
        "project_id": project.id,
        "gitaly_info": gitaly_info(storage),
        "gitaly_repository": gitaly_repository(
            project.repository_storage, project.id, project.legacy_disk_path, f"project-{project.id}", project.full_path
        ),
        "default_branch": project.default_branch,
    }


def project_reference(value: str) -> int | str | None:
    """find_project: a numeric id, or a full path (it has a '/'); anything else names no project."""
    value = value.strip()
    if _INTEGER_ID.match(value):  # a number, even a negative or a huge one, is never a path
        number = as_id(value)
        return number if number else None
    return value if "/" in value else None


async def find_project_for_agent(conn: Conn, reference: str, agent_id: int) -> KasProjectRow | None:
    """The project kas asks about, if this agent may read it; None answers 404 either way."""
    ref = project_reference(reference)
    if ref is None:
        return None
    if isinstance(ref, int):
        project = await agents_db.find_project_by_id(conn, ref, agent_id)
    else:
        project = await agents_db.find_project_by_full_path(conn, ref, agent_id)
    if project is None or not agent_can_read(project):
        return None
    return project


def agent_can_read(project: KasProjectRow) -> bool:
    """Anonymous users may download its code (public project, public repository), or it is the
    agent's own configuration project (agent.has_access_to?)."""
    if project.is_agent_project:
        return True
    return can_download(_ANONYMOUS, project.visibility_level, project.repository_access_level)


def can_admin_vulnerability(agent: AgentContextRow) -> bool:
    """kas reports findings as the agent's creator, who needs admin_vulnerability (maintainer and up)."""
    if agent.created_by_user_id is None or not agent.creator_active:
        return False
    return agent.creator_admin or agent.creator_access_level >= MAINTAINER


# --- Authorizations from the agent's configuration file ------------------------------------------


def authorization_entries(config: Mapping[str, Any], kind: str, entity: str) -> list[dict[str, Any]]:
    """`config[kind][entity]` as [{"path": lower-case full path, "config": ...}] (extract_config_entries).

    ci_access keeps each entry without its id (default_namespace, access_as, environments...);
    user_access stores the section's access_as for every entry. Entries without a string id are
    skipped, and a later entry for the same path wins, as with Rails' index_by.
    """
    section = config.get(kind)
    if not isinstance(section, Mapping):
        return []
    items = section.get(entity)
    if not isinstance(items, list):
        return []
    shared = {"access_as": section["access_as"]} if "access_as" in section else {}
    by_path: dict[str, dict[str, Any]] = {}
    for item in items[:AUTHORIZED_ENTITY_LIMIT]:
        if not isinstance(item, Mapping) or not isinstance(item.get("id"), str) or not item["id"].strip():
            continue
        entry_config = shared if kind == "user_access" else {k: v for k, v in item.items() if k != "id"}
        by_path[item["id"].strip().lower()] = entry_config
    return [{"path": path, "config": entry_config} for path, entry_config in by_path.items()]


async def refresh_authorizations(conn: Conn, agent_id: int, config: Mapping[str, Any]) -> bool:
    """Rewrites the agent's four authorization lists from its configuration; False for no such agent.

    Only projects and groups under the root namespace of the agent's configuration project count.
    One transaction, with the agent row locked: a refresh is seen whole or not at all.
    """
    async with conn.transaction():
        agent = await agents_db.lock_agent(conn, agent_id)
        if agent is None:
            return False
        for kind in AUTHORIZATION_KINDS:
            for entity in AUTHORIZATION_ENTITIES:
                entries = authorization_entries(config, kind, entity)
                await agents_db.replace_authorizations(conn, kind, entity, agent.id, agent.root_namespace_id, entries)
    return True


async def find_agent(contexts: AgentContexts, agent_id: int) -> AgentContextRow:
    """The authenticated agent; 404 when it was deleted after its token was checked."""
    agent = await contexts.load(agent_id)
    if agent is None:
        raise NoRoute()
    return agent
