"""What kas's agent modules store: alerts, vulnerability findings, scan execution policies (sql/kas_modules.sql)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from service.db.queries import many, returning, statement, value
from service.db.rows import Conn, row

_LOCK_ALERTS = statement("lock_project_alerts")
_UPSERT_ALERT = returning("upsert_alert")
_CREATE_FINDING = value("create_vulnerability_finding")
_RESOLVE_MISSING = value("resolve_missing_findings")
_POLICIES = many("scan_execution_policies_for_project")


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


@dataclass(frozen=True)
class AlertRow:
    id: int
    iid: int
    events: int


@dataclass(frozen=True)
class PolicyRow:
    name: str
    description: str
    enabled: bool
    actions: list[Any]
    rules: list[Any]
    updated_at: datetime


async def upsert_alert(
    conn: Conn,
    *,
    project_id: int,
    title: str,
    description: str | None,
    severity: str,
    fingerprint: str,
    monitoring_tool: str,
    payload: dict[str, Any],
) -> AlertRow:
    """A new alert or one more event on the open one with this fingerprint; opens its own transaction."""
    async with conn.transaction():
        await conn.execute(_LOCK_ALERTS, project_id)
        record = await conn.fetchrow(
            _UPSERT_ALERT,
            project_id,
            title,
            description,
            severity,
            fingerprint,
            monitoring_tool,
            _json(payload),
        )
    result = row(AlertRow, record)
    assert result is not None  # INSERT ... ON CONFLICT DO UPDATE always returns the row
    return result


async def create_vulnerability_finding(
    conn: Conn,
    *,
    uuid: str,
    project_id: int,
    agent_id: int,
    name: str,
    severity: str,
    confidence: str | None,
    location_fingerprint: str,
    primary_identifier_fingerprint: str,
    location: dict[str, Any],
    identifiers: list[dict[str, Any]],
    scanner: dict[str, Any],
    raw_metadata: dict[str, Any],
    author_id: int | None,
) -> bool:
    """True when the finding is new; a single statement, so never half-written."""
    created: bool = await conn.fetchval(
        _CREATE_FINDING,
        uuid,
        project_id,
        agent_id,
        name,
        severity,
        confidence,
        location_fingerprint,
        primary_identifier_fingerprint,
        _json(location),
        _json(identifiers),
        _json(scanner),
        _json(raw_metadata),
        author_id,
    )
    return created


async def resolve_missing_findings(conn: Conn, agent_id: int, project_id: int, uuids: list[str]) -> int:
    resolved: int = await conn.fetchval(_RESOLVE_MISSING, agent_id, project_id, uuids)
    return resolved


async def scan_execution_policies(conn: Conn, project_id: int) -> list[PolicyRow]:
    records = await conn.fetch(_POLICIES, project_id)
    return [
        PolicyRow(
            name=r["name"],
            description=r["description"],
            enabled=r["enabled"],
            actions=orjson.loads(r["actions"]),
            rules=orjson.loads(r["rules"]),
            updated_at=r["updated_at"],
        )
        for r in records
    ]
