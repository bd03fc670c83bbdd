"""The agent modules behind /internal/kubernetes/modules/*: Cilium network alerts, Starboard
vulnerability findings and the scan execution policies agents read (GitLab EE:
ee/lib/ee/api/internal/kubernetes.rb, AlertManagement::NetworkAlertService,
Vulnerabilities::StarboardVulnerability{Create,Resolve}Service, Security::ScanExecutionPoliciesFinder).
The rules are pure functions; the last section holds what the routes call, which does the I/O.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from service.db import kas_modules as modules_db
from service.db.agents import AgentContextRow
from service.db.kas_modules import ExactNumber, PolicyRow
from service.db.rows import Conn
from service.domain.agents import can_admin_vulnerability
from service.domain.errors import Denied

# --- Cilium alerts -------------------------------------------------------------------------------

CILIUM = "Cilium"  # Gitlab::AlertManagement::Payload::MONITORING_TOOLS[:cilium]
DEFAULT_ALERT_TITLE = "New: Alert"  # Payload::Cilium::DEFAULT_TITLE
ALERT_SEVERITIES = ("critical", "high", "medium", "low", "info", "unknown")
# Gitlab::Utils::DeepSize defaults: a bigger or deeper alert payload is refused with 400.
MAX_ALERT_BYTES = 1024 * 1024
MAX_ALERT_DEPTH = 100
# Fields that differ between two sightings of the same alert and so stay out of its fingerprint.
_ALERT_TIME_FIELDS = ("start_time", "startsAt", "end_time", "endsAt", "time")


@dataclass(frozen=True)
class NetworkAlert:
    title: str
    description: str | None
    severity: str
    fingerprint: str


def _depth(value: Any) -> int:
    """Nesting depth of a JSON value, iteratively (a deep payload must not exhaust the stack)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > MAX_ALERT_DEPTH:
            break
        if isinstance(item, Mapping):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return deepest


def alert_payload_valid(alert: Mapping[str, Any]) -> bool:
    return _depth(alert) <= MAX_ALERT_DEPTH and len(orjson.dumps(alert)) <= MAX_ALERT_BYTES


def _dig(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def _first_text(*candidates: Any) -> str | None:
    for candidate in candidates:
        if isinstance(candidate, str) and candidate.strip():
            return candidate
    return None


def sha1_hex(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def alert_fingerprint(alert: Mapping[str, Any]) -> str:
    """SHA-1 of the payload's own `fingerprint` when it has one (Gitlab::AlertManagement::Fingerprint);
    otherwise of the payload itself without its timestamps, so a repeated flow counts as the same alert."""
    given = alert.get("fingerprint")
    if isinstance(given, (str, int, float)) and not isinstance(given, bool) and str(given):
        return sha1_hex(str(given))
    if isinstance(given, list) and given:
        return sha1_hex("".join(str(part) for part in given))
    stable: dict[str, Any] = {k: v for k, v in alert.items() if k not in _ALERT_TIME_FIELDS}
    flow = stable.get("flow")
    if isinstance(flow, Mapping):
        stable["flow"] = {k: v for k, v in flow.items() if k not in _ALERT_TIME_FIELDS}
    return sha1_hex(orjson.dumps(stable, option=orjson.OPT_SORT_KEYS).decode())


def network_alert(alert: Mapping[str, Any]) -> NetworkAlert:
    """The alert's title, description and severity: the generic alert fields first, then Cilium's."""
    severity = alert.get("severity")
    return NetworkAlert(
        title=_first_text(alert.get("title"), _dig(alert, "ciliumNetworkPolicy", "metadata", "name"))
        or DEFAULT_ALERT_TITLE,
        description=_first_text(alert.get("description"), alert.get("message"), _dig(alert, "flow", "dropReasonDesc")),
        severity=severity.lower() if isinstance(severity, str) and severity.lower() in ALERT_SEVERITIES else "critical",
        fingerprint=alert_fingerprint(alert),
    )


# --- Starboard vulnerability findings ------------------------------------------------------------

REPORT_TYPE = "cluster_image_scanning"
# Gitlab::UUID::NAMESPACE_IDS[:production]: finding uuids are the ones GitLab.com would compute.
FINDING_UUID_NAMESPACE = uuid.UUID("58dc0f06-936c-43b3-93bb-71693f1b6570")


@dataclass(frozen=True)
class FindingIdentity:
    uuid: str
    location_fingerprint: str
    primary_identifier_fingerprint: str


def finding_identity(agent_id: int, project_id: int, vulnerability: Mapping[str, Any]) -> FindingIdentity:
    """The finding's stable identity, so that reporting it again finds the same row.

    Location: SHA-1 of "<agent_id>:<namespace>:<kind>:<name>:<container>:<package name>" (the agent
    is the token's, whatever the payload says). Primary identifier: SHA-1 of "<type>:<value>" of the
    first identifier. uuid: v5 of "<report type>-<identifier fp>-<location fp>-<project id>"
    (Security::VulnerabilityUUID.generate).
    """
    location = vulnerability["location"]
    resource = location["kubernetes_resource"]
    package = _dig(location, "dependency", "package", "name") or ""
    # StarboardVulnerabilityCreateService#location_fingerprint joins kubernetes_resource[:container],
    # not the container_name that the API requires (and kas sends) since it declared the location's
    # fields; `container` is only the 2021 payload's key, which schemas/kas.py folds into
    # container_name. So the container is blank, as in GitLab, and a workload's containers with the
    # same package and CVE share one finding: kept, so that the uuids kas gets back (and sends to
    # scan_result) are GitLab's.
    container = resource.get("container") or ""
    location_fingerprint = sha1_hex(
        f"{agent_id}:{resource['namespace']}:{resource['kind']}:{resource['name']}:{container}:{package}"
    )
    primary = vulnerability["identifiers"][0]
    # The 2021 payload may leave value out; its name then stands for it.
    primary_fingerprint = sha1_hex(f"{primary['type']}:{primary.get('value') or primary['name']}")
    finding_uuid = uuid.uuid5(
        FINDING_UUID_NAMESPACE, f"{REPORT_TYPE}-{primary_fingerprint}-{location_fingerprint}-{project_id}"
    )
    return FindingIdentity(str(finding_uuid), location_fingerprint, primary_fingerprint)


def normalised_uuids(values: list[str]) -> list[str]:
    """uuids as PostgreSQL prints them (lower case); strings that are no uuid match nothing anyway."""
    return [value.strip().lower() for value in values]


# --- Scan execution policies ---------------------------------------------------------------------


def _agent_rules(policy: PolicyRow, agent_name: str) -> list[Mapping[str, Any]]:
    return [
        rule
        for rule in policy.rules
        if isinstance(rule, Mapping)
        and rule.get("type") == "agent"
        and isinstance(rule.get("agents"), Mapping)
        and agent_name in rule["agents"]
    ]


def _scans_containers(policy: PolicyRow) -> bool:
    return any(isinstance(a, Mapping) and a.get("scan") == "container_scanning" for a in policy.actions)


def agent_policies(policies: list[PolicyRow], agent_name: str) -> list[PolicyRow]:
    """The policies that scan this agent's cluster: a container_scanning action and an agent rule naming it."""
    return [p for p in policies if _scans_containers(p) and _agent_rules(p, agent_name)]


def datetime_to_s(moment: datetime) -> str:
    """Ruby's DateTime#to_s: 2022-06-02T05:36:26+00:00."""
    return moment.isoformat(timespec="seconds")


def policy_entity(policy: PolicyRow) -> dict[str, Any]:
    """EE::API::Entities::SecurityPolicy."""
    document = {
        "name": policy.name,
        "description": policy.description,
        "enabled": policy.enabled,
        "actions": policy.actions,
        "rules": policy.rules,
    }
    return {
        "name": policy.name,
        "description": policy.description,
        "enabled": policy.enabled,
        "yaml": to_yaml(document),
        "updated_at": datetime_to_s(policy.updated_at),
    }


def policy_configurations(policies: list[PolicyRow], agent_name: str) -> list[dict[str, Any]]:
    """EE::API::Entities::SecurityPolicyConfiguration: cadence and namespaces of each enabled agent rule."""
    configurations = []
    for policy in agent_policies(policies, agent_name):
        if not policy.enabled:
            continue
        for rule in _agent_rules(policy, agent_name):
            namespaces = _dig(rule, "agents", agent_name, "namespaces")
            configurations.append(
                {
                    "cadence": rule.get("cadence"),
                    "namespaces": namespaces if isinstance(namespaces, list) else [],
                    "updated_at": datetime_to_s(policy.updated_at),
                }
            )
    return configurations


# A minimal YAML emitter for policy documents (JSON-like data), in the block style of Ruby's
# YAML.dump. Strings that plain YAML could misread are written as JSON strings, which YAML reads.
_PLAIN = re.compile(r"[A-Za-z_/][A-Za-z0-9_./ -]*\Z")
_RESERVED = frozenset({"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"})


def _scalar(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, ExactNumber):
        return str(value)
    if isinstance(value, (int, float)):
        return orjson.dumps(value).decode()
    text = str(value)
    if _PLAIN.match(text) and text == text.strip() and text.lower() not in _RESERVED:
        return text
    return orjson.dumps(text).decode()


def _block(value: Any, indent: int) -> list[str]:
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(item, Mapping) and item:
                lines.append(f"{pad}{_scalar(key)}:")
                lines.extend(_block(item, indent + 2))
            elif isinstance(item, list) and item:
                lines.append(f"{pad}{_scalar(key)}:")
                lines.extend(_block(item, indent))  # Psych puts "- " under the key, not indented
            else:
                lines.append(f"{pad}{_scalar(key)}: {_inline(item)}".rstrip())
    else:
        for item in value:
            if isinstance(item, (Mapping, list)) and item:
                nested = _block(item, indent + 2)
                nested[0] = f"{pad}- " + nested[0][indent + 2 :]
                lines.extend(nested)
            else:
                lines.append(f"{pad}- {_inline(item)}".rstrip())
    return lines


def _inline(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return _scalar(value)


def to_yaml(document: Mapping[str, Any]) -> str:
    return "---\n" + "\n".join(_block(document, 0)) + "\n"


# --- What the routes call ------------------------------------------------------------------------


async def record_cilium_alert(conn: Conn, project_id: int, alert: dict[str, Any]) -> None:
    """AlertManagement::NetworkAlertService: one alert per fingerprint, updated on each sighting."""
    parsed = network_alert(alert)
    await modules_db.upsert_alert(
        conn,
        project_id=project_id,
        title=parsed.title,
        description=parsed.description,
        severity=parsed.severity,
        fingerprint=parsed.fingerprint,
        monitoring_tool=CILIUM,
        payload=alert,
    )


def _require_vulnerability_admin(agent: AgentContextRow) -> None:
    if not can_admin_vulnerability(agent):
        raise Denied()


async def record_vulnerability(
    conn: Conn, agent: AgentContextRow, vulnerability: dict[str, Any], scanner: dict[str, Any]
) -> str:
    """StarboardVulnerabilityCreateService: an idempotent finding; its uuid."""
    _require_vulnerability_admin(agent)
    identity = finding_identity(agent.agent_id, agent.project_id, vulnerability)
    location = {**vulnerability["location"]}
    location["kubernetes_resource"] = {**location["kubernetes_resource"], "agent_id": str(agent.agent_id)}
    await modules_db.create_vulnerability_finding(
        conn,
        uuid=identity.uuid,
        project_id=agent.project_id,
        agent_id=agent.agent_id,
        name=vulnerability["name"],
        severity=vulnerability["severity"],
        confidence=vulnerability.get("confidence"),
        location_fingerprint=identity.location_fingerprint,
        primary_identifier_fingerprint=identity.primary_identifier_fingerprint,
        location=location,
        identifiers=vulnerability["identifiers"],
        scanner=scanner,
        raw_metadata=vulnerability,
        author_id=agent.created_by_user_id,
    )
    return identity.uuid


async def resolve_scan(conn: Conn, agent: AgentContextRow, uuids: list[str]) -> None:
    """StarboardVulnerabilityResolveService: resolve this agent's findings a full scan no longer reports."""
    _require_vulnerability_admin(agent)
    await modules_db.resolve_missing_findings(conn, agent.agent_id, agent.project_id, normalised_uuids(uuids))


async def project_policies(conn: Conn, project_id: int) -> list[PolicyRow]:
    return await modules_db.scan_execution_policies(conn, project_id)
