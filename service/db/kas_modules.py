"""What kas's agent modules store: alerts, vulnerability findings, scan execution policies (sql/kas_modules.sql)."""

from __future__ import annotations

import json
import math
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


class ExactNumber(str):
    """A number of a stored policy document that orjson cannot carry (an integer beyond 64 bits, a
    float beyond a double's range), kept as the digits PostgreSQL stored: written into the policy's
    YAML as it is, and as a string in JSON (GitLab's own JSON encoder fails on these: a 500)."""


def _integer(digits: str) -> int | ExactNumber:
    # the length check first: int() refuses more than 4,300 digits
    if len(digits) <= 20 and -(2**63) <= (number := int(digits)) < 2**64:
        return number
    return ExactNumber(digits)


def _float(text: str) -> float | ExactNumber:
    number = float(text)
    return number if math.isfinite(number) else ExactNumber(text)


def policy_document(text: str) -> Any:
    """A jsonb policy column: jsonb keeps any number exactly, which orjson would read as a rounded
    float (a long integer) or refuse (1e400)."""
    return json.loads(text, parse_int=_integer, parse_float=_float)


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
            actions=policy_document(r["actions"]),
            rules=policy_document(r["rules"]),
            updated_at=r["updated_at"],
        )
        for r in records
    ]
