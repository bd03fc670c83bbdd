"""POST /internal/kubernetes/agent_events: kas's per-user and per-agent events as unique counts.

GitLab turns each event into an InternalEvents event for an existing user and project; this
service keeps what those events measure, unique users and agents per ISO week, in the same
HyperLogLogs as usage_metrics (service/domain/usage_metrics.py), so the read path shows both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.db import agents as agents_db
from service.db.rows import Conn
from service.domain.usage_metrics import UsageUpdate, unique_update

USER_EVENTS = (
    "k8s_api_proxy_requests_unique_users_via_ci_access",
    "k8s_api_proxy_requests_unique_users_via_user_access",
    "k8s_api_proxy_requests_unique_users_via_pat_access",
)
# GitLab derives this one from the three lists above.
CI_TUNNEL_EVENT = "agent_users_using_ci_tunnel"
REGISTER_EVENT = "register_agent_at_kas"


def _entries(events: Mapping[str, Any], name: str) -> list[Mapping[str, Any]]:
    return [entry for entry in events.get(name) or [] if entry]


def referenced_ids(events: Mapping[str, Any]) -> tuple[list[int], list[int]]:
    """The user ids and project ids the events name, to check which exist."""
    users: set[int] = set()
    projects: set[int] = set()
    for name in (*USER_EVENTS, REGISTER_EVENT):
        for entry in _entries(events, name):
            if entry.get("user_id") is not None:
                users.add(entry["user_id"])
            if entry.get("project_id") is not None:
                projects.add(entry["project_id"])
    return sorted(users), sorted(projects)


def agent_events_update(events: Mapping[str, Any], users: set[int], projects: set[int]) -> UsageUpdate:
    """Events whose user and project exist (track_event skips the others) as unique-count additions."""
    pairs: list[tuple[str, list[int]]] = []
    tunnel_users: list[int] = []
    for name in USER_EVENTS:
        ids = [
            entry["user_id"]
            for entry in _entries(events, name)
            if entry.get("user_id") in users and entry.get("project_id") in projects
        ]
        pairs.append((name, ids))
        tunnel_users.extend(ids)
    pairs.append((CI_TUNNEL_EVENT, tunnel_users))
    agents = [
        entry["agent_id"]
        for entry in _entries(events, REGISTER_EVENT)
        if entry.get("agent_id") is not None and entry.get("project_id") in projects
    ]
    pairs.append((REGISTER_EVENT, agents))
    return UsageUpdate(unique=unique_update(pairs))


async def known_update(conn: Conn, events: Mapping[str, Any]) -> UsageUpdate | None:
    """The update for the events whose users and projects exist; None when no event names a project."""
    user_ids, project_ids = referenced_ids(events)
    if not project_ids:
        return None  # every event needs an existing project
    users, projects = await agents_db.existing_users_and_projects(conn, user_ids, project_ids)
    return agent_events_update(events, users, projects)
