"""agent_info, project_info, verify_project_access, agent_configuration and agent_events, as kas sees them."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from urllib.parse import quote

import pytest

from tests.factories import make_group, make_project, make_user
from tests.helpers import kas_headers
from tests.kas_factories import agent_headers, make_agent, make_agent_token

K8S = "/api/v4/internal/kubernetes"


def _hashed(project_id: int) -> str:
    digest = hashlib.sha256(str(project_id).encode()).hexdigest()
    return f"@hashed/{digest[:2]}/{digest[2:4]}/{digest}.git"


@pytest.fixture
async def agent_and_token(db):
    agent = await make_agent(db, name="my-agent")
    token, _ = await make_agent_token(db, agent)
    return agent, token


@pytest.mark.parametrize("path", [f"{K8S}/agent_info", "/api/v4/internal/agents/agentk/agent_info"])
async def test_agent_info(client, db, agent_and_token, path):
    agent, token = agent_and_token
    project = await db.fetchrow(
        "SELECT p.id, r.path FROM projects p JOIN routes r ON r.source_type = 'Project' AND r.source_id = p.id"
        " WHERE p.id = $1",
        agent["project_id"],
    )
    resp = await client.get(path, headers=agent_headers(token))
    assert resp.status == 200
    assert resp.content_type == "application/json"
    assert await resp.json() == {
        "project_id": project["id"],
        "agent_id": agent["id"],
        "agent_name": "my-agent",
        "gitaly_info": {"address": "unix:/tmp/gitaly-test.socket", "token": "", "features": {}},
        "gitaly_repository": {
            "storage_name": "default",
            "relative_path": _hashed(project["id"]),
            "git_object_directory": "",
            "git_alternate_object_directories": [],
            "gl_repository": f"project-{project['id']}",
            "gl_project_path": project["path"],
        },
        "default_branch": "main",
    }


async def test_agent_info_default_branch_falls_back_to_the_instance_default(client, db):
    user = await make_user(db)
    project = await make_project(db, owner=user, default_branch=None)
    await db.execute("UPDATE application_settings SET default_branch_name = 'trunk'")
    agent = await make_agent(db, project, creator=user)
    token, _ = await make_agent_token(db, agent)
    body = await (await client.get(f"{K8S}/agent_info", headers=agent_headers(token))).json()
    assert body["default_branch"] == "trunk"


# --- project_info / verify_project_access ----------------------------------------------------------


async def _project_info(client, token, ref):
    return await client.get(f"{K8S}/project_info", params={"id": str(ref)}, headers=agent_headers(token))


async def test_project_info_public_project_by_id_and_by_path(client, db, agent_and_token):
    _, token = agent_and_token
    owner = await make_user(db)
    group = await make_group(db, "infra")
    public = await make_project(db, group, owner=owner, path="manifests", visibility_level=20)
    for ref in (public["id"], "infra/manifests", "INFRA/Manifests"):
        resp = await _project_info(client, token, ref)
        assert resp.status == 200, ref
        body = await resp.json()
        assert body == {
            "project_id": public["id"],
            "gitaly_info": {"address": "unix:/tmp/gitaly-test.socket", "token": "", "features": {}},
            "gitaly_repository": {
                "storage_name": "default",
                "relative_path": _hashed(public["id"]),
                "git_object_directory": "",
                "git_alternate_object_directories": [],
                "gl_repository": f"project-{public['id']}",
                "gl_project_path": "infra/manifests",
            },
            "default_branch": "main",
        }


async def test_project_info_url_encoded_path(client, db, agent_and_token):
    _, token = agent_and_token
    group = await make_group(db, "platform")
    await make_project(db, group, path="gitops", visibility_level=20)
    resp = await client.get(
        f"{K8S}/project_info?id={quote('platform/gitops', safe='')}", headers=agent_headers(token)
    )
    assert resp.status == 200
    assert (await resp.json())["gitaly_repository"]["gl_project_path"] == "platform/gitops"


async def test_project_info_own_private_configuration_project(client, db, agent_and_token):
    agent, token = agent_and_token
    resp = await _project_info(client, token, agent["project_id"])
    assert resp.status == 200
    assert (await resp.json())["project_id"] == agent["project_id"]


@pytest.mark.parametrize(
    "visibility, repository_access_level",
    [(0, 20), (10, 20), (20, 10), (20, 0)],
    ids=["private", "internal", "public, members-only repository", "public, repository disabled"],
)
async def test_project_info_refuses_what_anonymous_users_cannot_download(
    client, db, agent_and_token, visibility, repository_access_level
):
    _, token = agent_and_token
    owner = await make_user(db)
    project = await make_project(
        db, owner=owner, visibility_level=visibility, repository_access_level=repository_access_level
    )
    resp = await _project_info(client, token, project["id"])
    assert resp.status == 404
    assert await resp.json() == {"message": "404 Not Found"}
    resp = await client.get(
        f"{K8S}/verify_project_access", params={"id": str(project["id"])}, headers=agent_headers(token)
    )
    assert resp.status == 404


@pytest.mark.parametrize(
    "ref", ["999999", "nobody/nothing", "no-slash", "0", "-1", "99999999999999999999999"]
)
async def test_project_info_unknown_projects(client, db, agent_and_token, ref):
    _, token = agent_and_token
    resp = await _project_info(client, token, ref)
    assert resp.status == 404
    assert await resp.json() == {"message": "404 Not Found"}


async def test_project_info_hides_pending_delete_and_hidden_projects(client, db, agent_and_token):
    _, token = agent_and_token
    owner = await make_user(db)
    deleting = await make_project(db, owner=owner, visibility_level=20, pending_delete=True)
    hidden = await make_project(db, owner=owner, visibility_level=20, hidden=True)
    for project in (deleting, hidden):
        assert (await _project_info(client, token, project["id"])).status == 404


async def test_project_info_requires_id(client, db, agent_and_token):
    _, token = agent_and_token
    resp = await client.get(f"{K8S}/project_info", headers=agent_headers(token))
    assert resp.status == 400
    assert await resp.json() == {"error": "id is missing"}


async def test_verify_project_access(client, db, agent_and_token):
    agent, token = agent_and_token
    owner = await make_user(db)
    public = await make_project(db, owner=owner, visibility_level=20)
    for ref in (public["id"], agent["project_id"]):
        resp = await client.get(
            f"{K8S}/verify_project_access", params={"id": str(ref)}, headers=agent_headers(token)
        )
        assert resp.status == 204
        assert await resp.read() == b""


# --- agent_configuration -----------------------------------------------------------------------------


@pytest.fixture
async def configured(db):
    """An agent in group acme/platform/agents, with neighbours inside and outside its root group."""
    user = await make_user(db)
    acme = await make_group(db, "acme")
    platform = await make_group(db, "platform", parent=acme)
    config_project = await make_project(db, platform, owner=user, path="agents")
    app_project = await make_project(db, acme, owner=user, path="app")
    other_root = await make_group(db, "other")
    outside = await make_project(db, other_root, owner=user, path="app")
    agent = await make_agent(db, config_project, creator=user)
    return {
        "agent": agent,
        "acme": acme,
        "platform": platform,
        "app": app_project,
        "outside": outside,
        "other_root": other_root,
    }


async def _authorizations(db, access: str, entity: str) -> dict[int, dict]:
    """The stored authorizations of one kind: {project or group id: config}."""
    import orjson

    if entity == "projects":
        query = "SELECT project_id AS id, config FROM agent_project_authorizations WHERE access = $1 ORDER BY id"
    else:
        query = "SELECT group_id AS id, config FROM agent_group_authorizations WHERE access = $1 ORDER BY id"
    rows = await db.fetch(query, access)
    return {r["id"]: orjson.loads(r["config"]) for r in rows}


async def test_agent_configuration_stores_ci_and_user_access(client, db, configured):
    agent = configured["agent"]
    config = {
        "ci_access": {
            "projects": [
                {"id": "ACME/app", "default_namespace": "prod", "access_as": {"ci_job": {}}},
                {"id": "other/app"},  # another root namespace: ignored
                {"id": "acme/missing"},
            ],
            "groups": [{"id": "acme/platform", "environments": ["staging"]}, {"id": "other"}],
        },
        "user_access": {
            "access_as": {"agent": {}},
            "projects": [{"id": "acme/app"}],
            "groups": [{"id": "acme"}],
        },
        "gitops": {"manifest_projects": []},
    }
    resp = await client.post(
        f"{K8S}/agent_configuration",
        json={"agent_id": agent["id"], "agent_config": config},
        headers=kas_headers(),
    )
    assert resp.status == 204
    assert await _authorizations(db, "ci_access", "projects") == {
        configured["app"]["id"]: {"default_namespace": "prod", "access_as": {"ci_job": {}}}
    }
    assert await _authorizations(db, "ci_access", "groups") == {
        configured["platform"]["id"]: {"environments": ["staging"]}
    }
    assert await _authorizations(db, "user_access", "projects") == {
        configured["app"]["id"]: {"access_as": {"agent": {}}}
    }
    assert await _authorizations(db, "user_access", "groups") == {
        configured["acme"]["id"]: {"access_as": {"agent": {}}}
    }

    # The next configuration replaces the previous one as a whole.
    config = {"ci_access": {"groups": [{"id": "acme"}]}}
    resp = await client.post(
        f"{K8S}/agent_configuration",
        json={"agent_id": str(agent["id"]), "agent_config": config},
        headers=kas_headers(),
    )
    assert resp.status == 204
    assert await _authorizations(db, "ci_access", "projects") == {}
    assert await _authorizations(db, "ci_access", "groups") == {
        configured["acme"]["id"]: {}
    }
    assert await _authorizations(db, "user_access", "projects") == {}
    assert await _authorizations(db, "user_access", "groups") == {}


async def test_agent_configuration_accepts_config_as_a_json_string(client, db, configured):
    agent = configured["agent"]
    resp = await client.post(
        f"{K8S}/agent_configuration",
        json={"agent_id": agent["id"], "agent_config": '{"ci_access": {"projects": [{"id": "acme/app"}]}}'},
        headers=kas_headers(),
    )
    assert resp.status == 204
    assert list(await _authorizations(db, "ci_access", "projects")) == [
        configured["app"]["id"]
    ]


async def test_agent_configuration_stores_150_projects(client, db, configured):
    # GitLab's limit is 500 per list; 150 real projects are all authorized.
    agent = configured["agent"]
    projects = [await make_project(db, configured["acme"], path=f"p{n}") for n in range(150)]
    config = {"ci_access": {"projects": [{"id": f"acme/p{n}"} for n in range(150)]}}
    resp = await client.post(
        f"{K8S}/agent_configuration",
        json={"agent_id": agent["id"], "agent_config": config},
        headers=kas_headers(),
    )
    assert resp.status == 204
    assert sorted(await _authorizations(db, "ci_access", "projects")) == sorted(p["id"] for p in projects)


@pytest.mark.parametrize("kind", ["ci_access", "user_access"])
@pytest.mark.parametrize("before, stored", [(499, True), (500, False)])
async def test_agent_configuration_limits_each_list_to_500_entries(client, db, configured, kind, before, stored):
    """RefreshService#extract_config_entries: `.first(AUTHORIZED_ENTITY_LIMIT)` of each list."""
    agent = configured["agent"]
    projects = [{"id": f"acme/none-{n}"} for n in range(before)] + [{"id": "acme/app"}]
    groups = [{"id": f"acme/none-{n}"} for n in range(before)] + [{"id": "acme/platform"}]
    resp = await client.post(
        f"{K8S}/agent_configuration",
        json={"agent_id": agent["id"], "agent_config": {kind: {"projects": projects, "groups": groups}}},
        headers=kas_headers(),
    )
    assert resp.status == 204
    assert list(await _authorizations(db, kind, "projects")) == ([configured["app"]["id"]] if stored else [])
    assert list(await _authorizations(db, kind, "groups")) == ([configured["platform"]["id"]] if stored else [])


async def test_agent_configuration_limit_counts_each_list_apart(client, db, configured):
    # 600 project entries do not use up the groups' 500.
    agent = configured["agent"]
    config = {
        "ci_access": {
            "projects": [{"id": f"acme/none-{n}"} for n in range(600)],
            "groups": [{"id": f"acme/none-{n}"} for n in range(400)] + [{"id": "acme/platform"}],
        }
    }
    resp = await client.post(
        f"{K8S}/agent_configuration",
        json={"agent_id": agent["id"], "agent_config": config},
        headers=kas_headers(),
    )
    assert resp.status == 204
    assert list(await _authorizations(db, "ci_access", "groups")) == [configured["platform"]["id"]]


@pytest.mark.parametrize(
    "body, error",
    [
        ({}, "agent_id is missing, agent_config is missing"),
        ({"agent_config": {}}, "agent_id is missing"),
        ({"agent_id": 1}, "agent_config is missing"),
        ({"agent_id": "one", "agent_config": {}}, "agent_id is invalid"),
        ({"agent_id": 1, "agent_config": "{not json"}, "agent_config is invalid"),
        ({"agent_id": 1, "agent_config": 5}, "agent_config is invalid"),
    ],
)
async def test_agent_configuration_parameter_errors(client, db, body, error):
    resp = await client.post(f"{K8S}/agent_configuration", json=body, headers=kas_headers())
    assert resp.status == 400
    assert await resp.json() == {"error": error}


@pytest.mark.parametrize("agent_id", [12345, -1, 2**63 - 1])
async def test_agent_configuration_unknown_agent(client, db, agent_id):
    resp = await client.post(
        f"{K8S}/agent_configuration", json={"agent_id": agent_id, "agent_config": {}}, headers=kas_headers()
    )
    assert resp.status == 404
    assert await resp.json() == {"message": "404 Not found"}


async def test_agent_configuration_ignores_malformed_entries(client, db, configured):
    agent = configured["agent"]
    config = {
        "ci_access": {"projects": [{"id": 5}, "acme/app", {"no_id": True}, {"id": "acme/app"}], "groups": "x"}
    }
    resp = await client.post(
        f"{K8S}/agent_configuration",
        json={"agent_id": agent["id"], "agent_config": config},
        headers=kas_headers(),
    )
    assert resp.status == 204
    assert list(await _authorizations(db, "ci_access", "projects")) == [
        configured["app"]["id"]
    ]


# --- agent_events ---------------------------------------------------------------------------------


def _week_key(event: str) -> str:
    return f"{{hll_counters}}_{event}-{datetime.now(UTC).strftime('%G-%V')}"


async def test_agent_events_count_unique_users_of_existing_users_and_projects(client, db, redis):
    user_a, user_b = await make_user(db), await make_user(db)
    project = await make_project(db, owner=user_a)
    agent = await make_agent(db, project, creator=user_a)
    events = {
        "k8s_api_proxy_requests_unique_users_via_ci_access": [
            {"user_id": user_a["id"], "project_id": project["id"]},
            {"user_id": user_a["id"], "project_id": project["id"]},
            {"user_id": 99999, "project_id": project["id"]},  # no such user
        ],
        "k8s_api_proxy_requests_unique_users_via_user_access": [
            {"user_id": user_b["id"], "project_id": project["id"]},
            {"user_id": user_a["id"], "project_id": 99999},  # no such project
        ],
        "k8s_api_proxy_requests_unique_users_via_pat_access": [],
        "register_agent_at_kas": [
            {
                "project_id": project["id"],
                "agent_id": agent["id"],
                "agent_version": "v17.0.0",
                "architecture": "amd64",
                "kubernetes_version": "1.30",
                "extra_telemetry_data": {"installation_method": "helm", "helm_chart_version": "2.0.0"},
            },
        ],
    }
    resp = await client.post(f"{K8S}/agent_events", json={"events": events}, headers=kas_headers())
    assert resp.status == 204
    assert await redis.pfcount(_week_key("k8s_api_proxy_requests_unique_users_via_ci_access")) == 1
    assert await redis.pfcount(_week_key("k8s_api_proxy_requests_unique_users_via_user_access")) == 1
    assert await redis.exists(_week_key("k8s_api_proxy_requests_unique_users_via_pat_access")) == 0
    assert await redis.pfcount(_week_key("agent_users_using_ci_tunnel")) == 2
    assert await redis.pfcount(_week_key("register_agent_at_kas")) == 1


@pytest.mark.parametrize("body", [{}, {"events": {}}, {"events": None}])
async def test_agent_events_without_events(client, db, redis, body):
    resp = await client.post(f"{K8S}/agent_events", json=body, headers=kas_headers())
    assert resp.status == 204
    assert await redis.dbsize() == 0


@pytest.mark.parametrize(
    "events, error",
    [
        (
            {"k8s_api_proxy_requests_unique_users_via_ci_access": [{"user_id": "me", "project_id": 1}]},
            "events[k8s_api_proxy_requests_unique_users_via_ci_access][0][user_id] is invalid",
        ),
        (
            {"k8s_api_proxy_requests_unique_users_via_pat_access": [{"user_id": 1, "project_id": 1.5}]},
            "events[k8s_api_proxy_requests_unique_users_via_pat_access][0][project_id] is invalid",
        ),
        (
            {"register_agent_at_kas": [{"agent_id": True}]},
            "events[register_agent_at_kas][0][agent_id] is invalid",
        ),
        (
            {"k8s_api_proxy_requests_unique_users_via_user_access": "all"},
            "events[k8s_api_proxy_requests_unique_users_via_user_access] is invalid",
        ),
    ],
)
async def test_agent_events_invalid_ids(client, db, redis, events, error):
    resp = await client.post(f"{K8S}/agent_events", json={"events": events}, headers=kas_headers())
    assert resp.status == 400
    assert await resp.json() == {"error": error}
    assert await redis.dbsize() == 0



async def test_nul_bytes_from_an_agent_configuration_are_a_400(client, db):
    """kas forwards the user's config file; a value PostgreSQL cannot store is the caller's 400."""
    from tests.helpers import kas_headers
    from tests.kas_factories import make_agent

    agent = await make_agent(db)
    before = await db.fetchval("SELECT count(*) FROM agent_project_authorizations")
    resp = await client.post(
        "/api/v4/internal/kubernetes/agent_configuration",
        json={"agent_id": agent["id"], "agent_config": {"ci_access": {"projects": [{"id": "x\u0000y"}]}}},
        headers=kas_headers(),
    )
    assert 400 <= resp.status < 500
    assert await db.fetchval("SELECT count(*) FROM agent_project_authorizations") == before
