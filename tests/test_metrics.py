"""GET /-/metrics and the correlation id: what an operator scrapes and follows through the logs."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import re
import signal
import subprocess

import aiohttp
import orjson
import pytest
from aiohttp import web

from service import app_keys, auth, metrics
from service.app import create_app
from service.logs import json_handler
from tests.helpers import shell_headers
from tests.test_serve import _wait_ready, serve  # noqa: F401  (serve is a fixture)

INTERNAL = "/api/v4/internal"


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in the Prometheus text format (0 when it is not there yet)."""
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            head, _, value = line.rpartition(" ")
            found = dict(re.findall(r'(\w+)="([^"]*)"', head))
            if head.split("{")[0] == name and all(found.get(k) == v for k, v in labels.items()):
                return float(value)
    return 0.0


async def scrape(client) -> str:
    async with client.get("/-/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain; version=")
        return await resp.text()


def test_a_request_count_that_cannot_be_written_loses_itself_only(monkeypatch):
    """A count prometheus-client could not take (its files on a full disk) is lost, as it was when
    each request counted itself; the requests observed after it are still counted."""
    route = type("Route", (), {"resource": None})()  # unmatched: counted under "unmatched"
    metrics.publish()
    real = metrics._new_recorder

    def full_disk(resource, method, status):  # type: ignore[no-untyped-def]
        if status == 599:
            raise OSError(28, "No space left on device")
        return real(resource, method, status)

    monkeypatch.setattr(metrics, "_new_recorder", full_disk)
    for status in (200, 599, 201, 202):
        metrics._observed.append((route, "GET", status, 0.001))
    with pytest.raises(OSError):
        metrics.publish()
    assert [observation[2] for observation in metrics._observed] == [201, 202]
    metrics.publish()
    assert not metrics._observed


async def test_requests_are_counted_by_route_template_never_by_raw_path(client):
    before = await scrape(client)
    for _ in range(3):
        async with client.post(f"{INTERNAL}/allowed", json={"action": "git-upload-pack"}, headers={}) as resp:
            assert resp.status == 401
    async with client.get("/api/v4/users/12345", headers={"PRIVATE-TOKEN": "glpat-secret-looking"}) as resp:
        assert resp.status == 401
    after = await scrape(client)

    labels = {"method": "POST", "route": f"{INTERNAL}/allowed", "status": "401"}
    assert sample(after, "http_requests_total", **labels) - sample(before, "http_requests_total", **labels) == 3
    assert sample(after, "http_request_duration_seconds_count", **labels) - sample(
        before, "http_request_duration_seconds_count", **labels
    ) == 3
    assert sample(after, "gitlab_internal_api_allowed_total", status="401") - sample(
        before, "gitlab_internal_api_allowed_total", status="401"
    ) == 3
    assert sample(after, "http_requests_total", method="GET", route="/api/v4/users/{id}", status="401") >= 1
    assert "users/12345" not in after and "glpat-secret" not in after


async def test_requests_counted_in_batches_and_at_each_scrape_are_each_counted_once(client, monkeypatch):
    """Requests are counted many at a time (past OBSERVED_BATCH, and at every publish): 12 requests
    with a batch of 5 are two batches and a remainder that the scrape counts."""
    monkeypatch.setattr(metrics, "OBSERVED_BATCH", 5)
    labels = {"method": "GET", "route": "/-/liveness", "status": "200"}
    before = await scrape(client)
    for _ in range(12):
        async with client.get("/-/liveness") as resp:
            assert resp.status == 200
    # the first scrape's own request and the 12: counted at 5 and 10, three still waiting
    assert len(metrics._observed) == 3
    after = await scrape(client)
    for name in ("http_requests_total", "http_request_duration_seconds_count"):
        assert sample(after, name, **labels) - sample(before, name, **labels) == 12
    assert sample(after, "http_request_duration_seconds_bucket", le="+Inf", **labels) - sample(
        before, "http_request_duration_seconds_bucket", le="+Inf", **labels
    ) == 12


async def test_reference_counter_operations_are_counted(client):
    before = await scrape(client)
    async with client.post(f"{INTERNAL}/pre_receive", json={"gl_repository": "project-9"}, headers=shell_headers()) as r:
        assert await r.json() == {"reference_counter_increased": True}
    after = await scrape(client)
    name = "gitlab_internal_api_reference_counter_operations_total"
    delta = sample(after, name, operation="increase", outcome="ok") - sample(before, name, operation="increase", outcome="ok")
    assert delta == 1


async def test_redis_failures_are_counted(client, app):
    before = await scrape(client)
    app[app_keys.REDIS].record_failure(ConnectionError("Connection refused"))
    after = await scrape(client)
    name = "gitlab_internal_api_redis_errors_total"
    assert sample(after, name, error="ConnectionError") - sample(before, name, error="ConnectionError") == 1


async def test_pool_gauges_are_published(client):
    await asyncio.sleep(0.1)  # the sampler's first pass runs at start-up
    text = await scrape(client)
    assert sample(text, "gitlab_internal_api_db_pool_connections") >= 1
    assert "gitlab_internal_api_db_pool_waiting" in text


async def test_metrics_answer_404_outside_the_allow_list_unless_the_token_is_given(
    aiohttp_client, settings, secrets, db, redis, tmp_path
):
    token_file = tmp_path / "monitoring_token"
    token_file.write_text("scrape-me\n")
    app = create_app(
        settings.with_overrides(monitoring_ip_whitelist=("10.0.0.0/8",), monitoring_token_file=token_file), secrets
    )
    client = await aiohttp_client(app)
    async with client.get("/-/metrics") as resp:
        assert resp.status == 404  # 127.0.0.1 is not in 10.0.0.0/8
        assert "http_requests_total" not in await resp.text()
    async with client.get("/-/metrics", headers={"Authorization": "Bearer wrong"}) as resp:
        assert resp.status == 404
    async with client.get("/-/metrics", headers={"Authorization": "Bearer scrape-me"}) as resp:
        assert resp.status == 200
        assert "http_requests_total" in await resp.text()


# --- correlation id ---------------------------------------------------------------------------


async def test_the_clients_request_id_is_echoed_and_one_is_generated_otherwise(client):
    async with client.get("/-/liveness", headers={"X-Request-Id": "01HQ-shell-abc"}) as resp:
        assert resp.headers["X-Request-Id"] == "01HQ-shell-abc"
    ids = set()
    for _ in range(2):
        async with client.get("/-/liveness") as resp:
            ids.add(resp.headers["X-Request-Id"])
    assert len(ids) == 2 and all(re.fullmatch(r"[0-9a-f]{20}", i) for i in ids)
    async with client.post(f"{INTERNAL}/allowed", json={}, headers={"X-Request-Id": "x" * 500}) as resp:
        assert resp.headers["X-Request-Id"] != "x" * 500  # an absurd id is replaced, not logged


async def test_application_and_error_log_lines_carry_the_requests_correlation_id(aiohttp_client, app):
    async def logs_and_fails(request: web.Request) -> web.Response:
        logging.getLogger("gitlab_internal_api.test").warning("working on it")
        raise RuntimeError("boom")

    route = app.router.add_get("/test-correlation", logs_and_fails)
    app[app_keys.ROUTE_CONSUMERS][route] = auth.PUBLIC
    stream = io.StringIO()
    handler = json_handler(stream)
    logging.getLogger().addHandler(handler)
    try:
        client = await aiohttp_client(app)
        async with client.get("/test-correlation", headers={"X-Request-Id": "follow-me-1"}) as resp:
            assert resp.status == 500
            assert resp.headers["X-Request-Id"] == "follow-me-1"
        logging.getLogger("gitlab_internal_api.test").warning("between requests")
    finally:
        logging.getLogger().removeHandler(handler)
    lines = [orjson.loads(line) for line in stream.getvalue().splitlines()]
    by_message = {line["message"]: line for line in lines}
    assert by_message["working on it"]["correlation_id"] == "follow-me-1"
    errors = [line for line in lines if line["severity"] == "ERROR"]
    assert errors and all(line["correlation_id"] == "follow-me-1" for line in errors)
    assert "correlation_id" not in by_message["between requests"]


# --- several workers (prometheus-client's multiprocess mode) ----------------------------------------


async def test_a_scrape_sums_the_requests_of_every_worker_dead_or_alive(serve, tmp_path):  # noqa: F811
    log_file = tmp_path / "serve.log"
    with open(log_file, "wb") as out:
        served = serve("--workers", "2", stdout=out, LOG_LEVEL="INFO")
    await _wait_ready(f"{served.url}/-/readiness")
    first = await served.wait_workers(2)
    route = {"method": "GET", "route": "/-/liveness", "status": "200"}
    ids: set[str] = set()

    async def hit(session: aiohttp.ClientSession, times: int) -> None:
        for _ in range(times):
            async with session.get(f"{served.url}/-/liveness", headers={"Connection": "close"}) as resp:
                assert resp.status == 200
                ids.add(resp.headers["X-Request-Id"])

    async with aiohttp.ClientSession() as session:
        await hit(session, 20)
        await asyncio.sleep(1.5)  # each worker publishes its counts once a second
        for pid in first:  # both workers that answered so far die and are replaced
            os.kill(pid, signal.SIGKILL)
        await served.wait_workers(2, without=first)
        await _wait_ready(f"{served.url}/-/readiness")
        await hit(session, 20)
        await asyncio.sleep(1.5)  # the worker that is not scraped publishes within a second
        async with session.get(f"{served.url}/-/metrics") as resp:
            text = await resp.text()
    assert sample(text, "http_requests_total", **route) == 40  # 20 from dead workers, 20 from new ones
    assert sample(text, "http_request_duration_seconds_count", **route) == 40
    assert sample(text, "gitlab_internal_api_db_pool_connections") >= 1
    assert await served.stop() == 0
    assert len(ids) == 40, "correlation ids are unique across workers"
    lines = [orjson.loads(line) for line in log_file.read_bytes().splitlines() if line.startswith(b"{")]
    assert sum("listening on" in line.get("message", "") for line in lines) == 1


@pytest.mark.parametrize("variable", ["PROMETHEUS_MULTIPROC_DIR"])
def test_an_operators_metrics_directory_is_emptied_at_start(tmp_path, variable):
    from service.cli import prepare_metrics_dir

    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / "counter_4242.db").write_bytes(b"old run")
    environ = {variable: str(directory)}
    code = (
        "import os, sys; from service.cli import prepare_metrics_dir; from pathlib import Path;"
        "d, made = prepare_metrics_dir(os.environ, Path(sys.argv[1])); print(d, made)"
    )
    out = subprocess.run(
        [os.sys.executable, "-c", code, str(tmp_path / "state")],
        env={**os.environ, **environ},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out == [str(directory), "False"]
    assert list(directory.iterdir()) == []
    with pytest.raises(RuntimeError):  # prometheus_client is already imported in this process
        prepare_metrics_dir({}, tmp_path / "state")
