"""The agent modules: cilium_alert, starboard_vulnerability (+ scan_result) and the scan policies."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from tests.factories import add_member, make_project, make_user
from tests.kas_factories import agent_headers, make_agent, make_agent_token

K8S = "/api/v4/internal/kubernetes"
CILIUM = f"{K8S}/modules/cilium_alert"
STARBOARD = f"{K8S}/modules/starboard_vulnerability"


@pytest.fixture
async def agent_and_token(db):
    agent = await make_agent(db, name="prod-cluster")
    token, _ = await make_agent_token(db, agent)
    return agent, token


# --- cilium_alert -----------------------------------------------------------------------------------


def cilium_payload(policy: str = "deny-egress", time: str = "2026-11-22T10:00:00Z") -> dict:
    return {
        "alert": {
            "flow": {
                "time": time,
                "verdict": "DROPPED",
                "dropReasonDesc": "POLICY_DENIED",
                "source": {"namespace": "default", "pod_name": "web"},
                "destination": {"port": 443},
            },
            "ciliumNetworkPolicy": {"kind": "CiliumNetworkPolicy", "metadata": {"name": policy}},
        }
    }


async def test_cilium_alert_creates_an_alert(client, db, agent_and_token):
    agent, token = agent_and_token
    resp = await client.post(CILIUM, json=cilium_payload(), headers=agent_headers(token))
    assert resp.status == 200
    assert await resp.text() == "200"  # Grape renders `status 200` as the body
    alert = await db.fetchrow("SELECT * FROM alert_management_alerts")
    assert alert["project_id"] == agent["project_id"]
    assert alert["iid"] == 1
    assert alert["title"] == "deny-egress"
    assert alert["description"] == "POLICY_DENIED"
    assert alert["monitoring_tool"] == "Cilium"
    assert alert["status"] == "triggered"
    assert alert["events"] == 1
    assert len(alert["fingerprint"]) == 40


async def test_cilium_alert_repeated_fingerprint_counts_events(client, db, agent_and_token):
    _, token = agent_and_token
    for minute in range(3):  # the same flow seen at three different times
        payload = cilium_payload(time=f"2026-11-22T10:0{minute}:00Z")
        assert (await client.post(CILIUM, json=payload, headers=agent_headers(token))).status == 200
    assert (
        await client.post(CILIUM, json=cilium_payload("other-policy"), headers=agent_headers(token))
    ).status == 200
    rows = await db.fetch("SELECT iid, title, events FROM alert_management_alerts ORDER BY iid")
    assert [tuple(r) for r in rows] == [(1, "deny-egress", 3), (2, "other-policy", 1)]


async def test_cilium_alert_explicit_fingerprint_and_resolved_alerts(client, db, agent_and_token):
    _, token = agent_and_token
    payload = {
        "alert": {
            "title": "minimal",
            "message": "network problem",
            "fingerprint": "abc",
            "evalMatches": [{"value": 1, "metric": "Count", "tags": {}}],
        }
    }
    assert (await client.post(CILIUM, json=payload, headers=agent_headers(token))).status == 200
    alert = await db.fetchrow("SELECT * FROM alert_management_alerts")
    assert alert["fingerprint"] == hashlib.sha1(b"abc").hexdigest()
    assert (alert["title"], alert["description"]) == ("minimal", "network problem")
    # A resolved alert does not absorb new events: the next one opens alert #2.
    await db.execute("UPDATE alert_management_alerts SET status = 'resolved'")
    assert (await client.post(CILIUM, json=payload, headers=agent_headers(token))).status == 200
    rows = await db.fetch("SELECT iid, status, events FROM alert_management_alerts ORDER BY iid")
    assert [tuple(r) for r in rows] == [(1, "resolved", 1), (2, "triggered", 1)]


async def test_cilium_alert_concurrent_alerts_get_distinct_iids(client, db, agent_and_token):
    import asyncio

    _, token = agent_and_token
    statuses = await asyncio.gather(
        *(
            client.post(CILIUM, json=cilium_payload(f"policy-{n}"), headers=agent_headers(token))
            for n in range(10)
        ),
        *(client.post(CILIUM, json=cilium_payload("same"), headers=agent_headers(token)) for _ in range(10)),
    )
    assert [r.status for r in statuses] == [200] * 20
    assert await db.fetchval("SELECT array_agg(iid ORDER BY iid) FROM alert_management_alerts") == list(
        range(1, 12)
    )
    assert await db.fetchval("SELECT events FROM alert_management_alerts WHERE title = 'same'") == 10


@pytest.mark.parametrize(
    "body, error",
    [({}, "alert is missing"), ({"alert": "boom"}, "alert is invalid"), ({"alert": None}, "alert is empty")],
)
async def test_cilium_alert_parameter_errors(client, db, agent_and_token, body, error):
    _, token = agent_and_token
    resp = await client.post(CILIUM, json=body, headers=agent_headers(token))
    assert resp.status == 400
    assert await resp.json() == {"error": error}


async def test_cilium_alert_too_deep_is_a_bad_request(client, db, agent_and_token):
    _, token = agent_and_token
    deep: dict = {}
    node = deep
    for _ in range(150):
        node["x"] = {}
        node = node["x"]
    resp = await client.post(CILIUM, json={"alert": deep}, headers=agent_headers(token))
    assert resp.status == 400
    assert await resp.text() == "400"
    assert await db.fetchval("SELECT count(*) FROM alert_management_alerts") == 0


# --- starboard_vulnerability ---------------------------------------------------------------------------


def current_payload(cve: str = "CVE-2026-0001", package: str = "libc", container: str = "nginx") -> dict:
    """The payload of GitLab 15+ kas (location.image, dependency, container_name, vendor object)."""
    return {
        "vulnerability": {
            "name": f"{cve} in {package}",
            "severity": "High",
            "confidence": "Unknown",
            "location": {
                "image": "nginx:1.25",
                "dependency": {"package": {"name": package}, "version": "2.31"},
                "kubernetes_resource": {
                    "namespace": "production",
                    "kind": "Deployment",
                    "name": "web",
                    "container_name": container,
                    "agent_id": "999",
                },
                "operating_system": "debian 12",
            },
            "identifiers": [{"type": "cve", "name": cve, "value": cve, "url": f"https://cve.example/{cve}"}],
            "description": "bad",
            "solution": "upgrade",
            "links": [{"url": "https://example.com"}],
        },
        "scanner": {
            "id": "starboard_trivy",
            "name": "Trivy (via Starboard Operator)",
            "vendor": {"name": "GitLab"},
        },
    }


SEED_PAYLOAD = {  # the 2021/2022 documentation's example, verbatim
    "vulnerability": {
        "name": "CVE-123-4567 in libc",
        "severity": "high",
        "confidence": "unknown",
        "location": {
            "kubernetes_resource": {
                "namespace": "production",
                "kind": "deployment",
                "name": "nginx",
                "container": "nginx",
            }
        },
        "identifiers": [{"type": "cve", "name": "CVE-123-4567", "value": "CVE-123-4567"}],
    },
    "scanner": {"id": "starboard_trivy", "name": "Trivy (via Starboard Operator)", "vendor": "GitLab"},
}


async def _put(client, token, payload):
    return await client.put(STARBOARD, json=payload, headers=agent_headers(token))


async def test_starboard_vulnerability_creates_a_finding(client, db, agent_and_token):
    agent, token = agent_and_token
    resp = await _put(client, token, current_payload())
    assert resp.status == 200
    body = await resp.json()
    # GitLab joins kubernetes_resource[:container], which kas does not send: the container is blank.
    location_fp = hashlib.sha1(f"{agent['id']}:production:Deployment:web::libc".encode()).hexdigest()
    identifier_fp = hashlib.sha1(b"cve:CVE-2026-0001").hexdigest()
    expected = uuid.uuid5(
        uuid.UUID("58dc0f06-936c-43b3-93bb-71693f1b6570"),
        f"cluster_image_scanning-{identifier_fp}-{location_fp}-{agent['project_id']}",
    )
    assert body == {"uuid": str(expected)}
    finding = await db.fetchrow("SELECT * FROM vulnerability_findings")
    assert str(finding["uuid"]) == body["uuid"]
    assert finding["location_fingerprint"] == location_fp
    assert (finding["severity"], finding["confidence"], finding["agent_id"]) == (
        "high",
        "unknown",
        agent["id"],
    )
    # The agent is the token's, whatever the payload claims.
    assert orjson.loads(finding["location"])["kubernetes_resource"]["agent_id"] == str(agent["id"])
    vulnerability = await db.fetchrow("SELECT * FROM vulnerabilities")
    assert vulnerability["finding_id"] == finding["id"]
    assert (vulnerability["state"], vulnerability["title"]) == ("detected", "CVE-2026-0001 in libc")
    assert vulnerability["author_id"] == agent["created_by_user_id"]


async def test_starboard_vulnerability_is_idempotent(client, db, agent_and_token):
    _, token = agent_and_token
    first = await (await _put(client, token, current_payload())).json()
    second = await (await _put(client, token, current_payload())).json()
    assert first == second
    assert await db.fetchval("SELECT count(*) FROM vulnerability_findings") == 1
    assert await db.fetchval("SELECT count(*) FROM vulnerabilities") == 1
    other = await (await _put(client, token, current_payload(package="openssl"))).json()
    assert other != first
    assert await db.fetchval("SELECT count(*) FROM vulnerabilities") == 2


async def test_starboard_vulnerability_containers_of_a_workload_share_a_finding(client, db, agent_and_token):
    """StarboardVulnerabilityCreateService#location_fingerprint reads kubernetes_resource[:container]
    while kas sends container_name, so GitLab gives both containers the same uuid."""
    _, token = agent_and_token
    nginx = await (await _put(client, token, current_payload(container="nginx"))).json()
    sidecar = await (await _put(client, token, current_payload(container="sidecar"))).json()
    assert nginx == sidecar
    assert await db.fetchval("SELECT count(*) FROM vulnerability_findings") == 1


async def test_starboard_vulnerability_concurrent_duplicates_make_one_row(client, db, agent_and_token):
    import asyncio

    _, token = agent_and_token
    responses = await asyncio.gather(*(_put(client, token, current_payload()) for _ in range(10)))
    assert {r.status for r in responses} == {200}
    assert len({(await r.json())["uuid"] for r in responses}) == 1
    assert await db.fetchval("SELECT count(*) FROM vulnerability_findings") == 1
    assert await db.fetchval("SELECT count(*) FROM vulnerabilities") == 1


async def test_starboard_vulnerability_accepts_the_documented_2021_payload(client, db, agent_and_token):
    _, token = agent_and_token
    resp = await _put(client, token, SEED_PAYLOAD)
    assert resp.status == 200
    assert uuid.UUID((await resp.json())["uuid"]).version == 5
    assert (await (await _put(client, token, SEED_PAYLOAD)).json()) == await resp.json()
    assert await db.fetchval("SELECT count(*) FROM vulnerabilities") == 1
    scanner = orjson.loads(await db.fetchval("SELECT scanner FROM vulnerability_findings"))
    assert scanner["vendor"] == "GitLab"


@pytest.mark.parametrize(
    "mutate, error",
    [
        (lambda p: p.pop("scanner"), "scanner is missing"),
        (lambda p: p["vulnerability"].pop("name"), "vulnerability[name] is missing"),
        (
            lambda p: p["vulnerability"]["location"].pop("kubernetes_resource"),
            "vulnerability[location][kubernetes_resource] is missing",
        ),
        (
            lambda p: p["vulnerability"]["location"]["kubernetes_resource"].pop("container_name"),
            "vulnerability[location][kubernetes_resource][container_name] is missing",
        ),
        (
            lambda p: p["vulnerability"]["location"]["dependency"]["package"].pop("name"),
            "vulnerability[location][dependency][package][name] is missing",
        ),
        (lambda p: p["vulnerability"].update(identifiers=[]), "vulnerability[identifiers] is empty"),
        (
            lambda p: p["vulnerability"].update(identifiers=[{"name": "x"}]),
            "vulnerability[identifiers][0][type] is missing",
        ),
        (
            lambda p: p["vulnerability"].update(severity="apocalyptic"),
            "vulnerability[severity] does not have a valid value",
        ),
        (lambda p: p["scanner"].update(vendor=["GitLab"]), "scanner[vendor] is invalid"),
        (lambda p: p.update(vulnerability="x"), "vulnerability is invalid"),
    ],
)
async def test_starboard_vulnerability_parameter_errors(client, db, agent_and_token, mutate, error):
    _, token = agent_and_token
    payload = current_payload()
    mutate(payload)
    resp = await _put(client, token, payload)
    assert resp.status == 400
    assert await resp.json() == {"error": error}
    assert await db.fetchval("SELECT count(*) FROM vulnerability_findings") == 0


@pytest.mark.parametrize("access_level, allowed", [(30, False), (40, True), (None, False)])
async def test_starboard_vulnerability_needs_a_maintainer_creator(client, db, access_level, allowed):
    owner = await make_user(db)
    creator = await make_user(db)
    project = await make_project(db, owner=owner)
    if access_level is not None:
        await add_member(db, creator, project, access_level)
    agent = await make_agent(db, project, creator=creator)
    token, _ = await make_agent_token(db, agent)
    resp = await _put(client, token, current_payload())
    if allowed:
        assert resp.status == 200
    else:
        assert resp.status == 403
        assert await resp.json() == {"message": "403 Forbidden"}
        assert await db.fetchval("SELECT count(*) FROM vulnerability_findings") == 0


async def test_starboard_vulnerability_admin_creator_and_no_creator(client, db):
    owner = await make_user(db)
    project = await make_project(db, owner=owner)
    admin_agent = await make_agent(db, project, creator=await make_user(db, admin=True))
    orphan = await make_agent(db, project)
    token, _ = await make_agent_token(db, admin_agent)
    assert (await _put(client, token, current_payload())).status == 200
    token, _ = await make_agent_token(db, orphan)
    assert (await _put(client, token, current_payload())).status == 403


# --- scan_result --------------------------------------------------------------------------------------


async def test_scan_result_resolves_findings_missing_from_the_scan(client, db, agent_and_token):
    agent, token = agent_and_token
    kept = (await (await _put(client, token, current_payload("CVE-1"))).json())["uuid"]
    gone = (await (await _put(client, token, current_payload("CVE-2"))).json())["uuid"]
    confirmed = (await (await _put(client, token, current_payload("CVE-3"))).json())["uuid"]
    dismissed = (await (await _put(client, token, current_payload("CVE-4"))).json())["uuid"]
    await db.execute(
        "UPDATE vulnerabilities v SET state = 'confirmed' FROM vulnerability_findings f"
        " WHERE v.finding_id = f.id AND f.uuid = $1",
        uuid.UUID(confirmed),
    )
    await db.execute(
        "UPDATE vulnerabilities v SET state = 'dismissed' FROM vulnerability_findings f"
        " WHERE v.finding_id = f.id AND f.uuid = $1",
        uuid.UUID(dismissed),
    )
    # Another agent's finding in the same project is not this scan's business.
    other = await make_agent(
        db,
        await db.fetchrow("SELECT * FROM projects WHERE id = $1", agent["project_id"]),
        creator=await db.fetchrow("SELECT * FROM users WHERE id = $1", agent["created_by_user_id"]),
    )
    other_token, _ = await make_agent_token(db, other)
    foreign = (await (await _put(client, other_token, current_payload("CVE-9"))).json())["uuid"]

    resp = await client.post(
        f"{STARBOARD}/scan_result", json={"uuids": [kept.upper(), "not-a-uuid"]}, headers=agent_headers(token)
    )
    assert resp.status == 200
    assert await resp.text() == "200"
    states = {
        str(r["uuid"]): (r["state"], r["resolved_on_default_branch"])
        for r in await db.fetch(
            "SELECT f.uuid, v.state, v.resolved_on_default_branch FROM vulnerabilities v"
            " JOIN vulnerability_findings f ON f.id = v.finding_id"
        )
    }
    assert states == {
        kept: ("detected", False),
        gone: ("resolved", True),
        confirmed: ("resolved", True),
        dismissed: ("dismissed", False),
        foreign: ("detected", False),
    }
    resolved_at = await db.fetchval(
        "SELECT v.resolved_at FROM vulnerabilities v JOIN vulnerability_findings f ON f.id = v.finding_id"
        " WHERE f.uuid = $1",
        uuid.UUID(gone),
    )
    assert datetime.now(UTC) - resolved_at < timedelta(minutes=1)


async def test_scan_result_with_an_empty_list_resolves_everything(client, db, agent_and_token):
    _, token = agent_and_token
    await _put(client, token, current_payload("CVE-1"))
    resp = await client.post(f"{STARBOARD}/scan_result", json={"uuids": []}, headers=agent_headers(token))
    assert resp.status == 200
    assert await db.fetchval("SELECT state FROM vulnerabilities") == "resolved"


@pytest.mark.parametrize(
    "body, error",
    [
        ({}, "uuids is missing"),
        ({"uuids": "abc"}, "uuids is invalid"),
        ({"uuids": [{"a": 1}]}, "uuids[0] is invalid"),
    ],
)
async def test_scan_result_parameter_errors(client, db, agent_and_token, body, error):
    _, token = agent_and_token
    resp = await client.post(f"{STARBOARD}/scan_result", json=body, headers=agent_headers(token))
    assert resp.status == 400
    assert await resp.json() == {"error": error}


# --- policies ---------------------------------------------------------------------------------------


async def _add_policy(
    db, project_id, name, *, agents, enabled=True, scan="container_scanning", updated_at=None
):
    rules = (
        [{"type": "agent", "agents": agents, "cadence": "30 2 * * *"}]
        if agents
        else [{"type": "pipeline", "branches": ["main"]}]
    )
    await db.execute(
        "INSERT INTO security_scan_execution_policies (project_id, name, description, enabled, actions, rules,"
        " updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        project_id,
        name,
        f"{name} description",
        enabled,
        orjson.dumps([{"scan": scan}]).decode(),
        orjson.dumps(rules).decode(),
        updated_at or datetime(2022, 6, 2, 5, 36, 26, tzinfo=UTC),
    )


async def test_scan_execution_policies(client, db, agent_and_token):
    agent, token = agent_and_token
    project_id = agent["project_id"]
    await _add_policy(db, project_id, "Nightly", agents={"prod-cluster": {"namespaces": ["default", "web"]}})
    await _add_policy(db, project_id, "Other agent", agents={"staging": {"namespaces": ["x"]}})
    await _add_policy(db, project_id, "Pipeline only", agents=None)
    await _add_policy(db, project_id, "DAST", agents={"prod-cluster": {}}, scan="dast")
    await _add_policy(db, project_id, "Disabled", agents={"prod-cluster": {"namespaces": []}}, enabled=False)

    resp = await client.get(f"{STARBOARD}/scan_execution_policies", headers=agent_headers(token))
    assert resp.status == 200
    policies = (await resp.json())["policies"]
    assert [p["name"] for p in policies] == ["Nightly", "Disabled"]
    nightly = policies[0]
    assert nightly["description"] == "Nightly description"
    assert nightly["enabled"] is True
    assert nightly["updated_at"] == "2022-06-02T05:36:26+00:00"
    assert nightly["yaml"] == (
        "---\n"
        "name: Nightly\n"
        "description: Nightly description\n"
        "enabled: true\n"
        "actions:\n"
        "- scan: container_scanning\n"
        "rules:\n"
        "- type: agent\n"
        "  agents:\n"
        "    prod-cluster:\n"
        "      namespaces:\n"
        "      - default\n"
        "      - web\n"
        '  cadence: "30 2 * * *"\n'
    )


async def test_policies_configuration(client, db, agent_and_token):
    agent, token = agent_and_token
    await _add_policy(db, agent["project_id"], "Nightly", agents={"prod-cluster": {"namespaces": ["a", "b"]}})
    await _add_policy(
        db, agent["project_id"], "Disabled", agents={"prod-cluster": {"namespaces": ["c"]}}, enabled=False
    )
    resp = await client.get(f"{STARBOARD}/policies_configuration", headers=agent_headers(token))
    assert resp.status == 200
    assert await resp.json() == {
        "configurations": [
            {"cadence": "30 2 * * *", "namespaces": ["a", "b"], "updated_at": "2022-06-02T05:36:26+00:00"}
        ]
    }


async def test_no_policies(client, db, agent_and_token):
    _, token = agent_and_token
    resp = await client.get(f"{STARBOARD}/scan_execution_policies", headers=agent_headers(token))
    assert await resp.json() == {"policies": []}
    resp = await client.get(f"{STARBOARD}/policies_configuration", headers=agent_headers(token))
    assert await resp.json() == {"configurations": []}


async def test_policies_holding_numbers_beyond_64_bits_are_answered(client, db, agent_and_token):
    agent, token = agent_and_token
    huge = "123456789012345678901234567890"
    rules = (
        '[{"type": "agent", "cadence": "30 2 * * *", "limit": 1e400,'
        ' "agents": {"prod-cluster": {"namespaces": ["default", ' + huge + "]}}}]"
    )
    await db.execute(
        "INSERT INTO security_scan_execution_policies (project_id, name, description, enabled, actions, rules,"
        " updated_at) VALUES ($1, 'Big', 'd', true, $2, $3, now())",
        agent["project_id"],
        '[{"scan": "container_scanning", "max": 18446744073709551616, "ratio": 0.5}]',
        rules,
    )
    resp = await client.get(f"{STARBOARD}/scan_execution_policies", headers=agent_headers(token))
    assert resp.status == 200
    yaml = (await resp.json())["policies"][0]["yaml"]
    # every number as PostgreSQL stored it, none rounded (jsonb writes 1e400 out in full)
    assert f"      - {huge}\n" in yaml
    assert " max: 18446744073709551616\n" in yaml and " ratio: 0.5\n" in yaml  # (jsonb orders the keys)
    assert " limit: 1" + "0" * 400 + "\n" in yaml
    resp = await client.get(f"{STARBOARD}/policies_configuration", headers=agent_headers(token))
    assert resp.status == 200
    assert (await resp.json())["configurations"][0]["namespaces"] == ["default", huge]
