"""Bad input answers 4xx and stores nothing; bodies are bounded and read only after authentication.

Each probe of issue 9 as a test: multipart and invalid UTF-8 bodies, blank and negative integers,
over-long names and refs, over-large and unauthenticated bodies.
"""

from __future__ import annotations

import asyncio
import gc
import time
import tracemalloc
import gzip
import io
from urllib.parse import urlencode
import socket
from typing import Any

import aiohttp
import orjson
import pytest

from service import auth
from service.app import create_app
from tests.admin_helpers import make_admin
from tests.billing_helpers import make_subscription, namespace_with_id, subscription_row
from tests.factories import make_group, make_key, make_project, make_user
from tests.helpers import kas_jwt, shell_headers, shell_jwt
from tests.test_metrics import sample
from tests.test_serve import _wait_ready, serve  # noqa: F401  (serve is a fixture)

BAD_REQUEST_PREFIX = "400 Bad request"


def _big_json(body: Any) -> io.BytesIO:
    """A large JSON body as a stream (aiohttp warns about large bytes bodies)."""
    return io.BytesIO(orjson.dumps(body))


JSON_TYPE = {"Content-Type": "application/json"}


def _form(fields: dict[str, str], multipart: bool = True) -> aiohttp.FormData:
    form = aiohttp.FormData(default_to_multipart=multipart)
    for name, value in fields.items():
        form.add_field(name, value)
    return form


# --- content types -------------------------------------------------------------------------------


async def test_multipart_pre_receive_works(client, redis):
    resp = await client.post(
        "/api/v4/internal/pre_receive",
        data=_form({"gl_repository": "project-2"}),
        headers={"Gitlab-Shell-Api-Request": shell_jwt()},
    )
    assert resp.status == 200, await resp.text()
    assert await resp.json() == {"reference_counter_increased": True}
    assert await redis.get("git-receive-pack-reference-counter:{project-2}") == "1"


async def test_multipart_without_credentials_is_401(client):
    resp = await client.post("/api/v4/users", data=_form({"x": "1"}))
    assert resp.status == 401
    assert await resp.json() == {"message": "401 Unauthorized"}


async def test_multipart_admin_call_creates_the_user(client, db):
    _, token = await make_admin(db)
    fields = {"username": "multi", "email": "multi@example.com", "name": "Multi", "password": "s3cret-pass"}
    resp = await client.post("/api/v4/users", data=_form(fields), headers={"PRIVATE-TOKEN": token})
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["username"] == "multi"


async def test_multipart_file_fields_are_not_parameters(client, db):
    _, token = await make_admin(db)
    form = _form({"username": "withfile", "email": "f@example.com", "name": "F", "password": "s3cret-pass"})
    form.add_field("avatar", b"\x89PNG\r\n\x1a\n" + b"\xff" * 100, filename="a.png", content_type="image/png")
    resp = await client.post("/api/v4/users", data=form, headers={"PRIVATE-TOKEN": token})
    assert resp.status == 201, await resp.text()


@pytest.mark.parametrize(
    "content_type, body",
    [
        pytest.param("multipart/form-data; boundary=xyz", b"no boundary here", id="multipart-no-boundary"),
        pytest.param("multipart/form-data", b"--x\r\n\r\nvalue\r\n--x--\r\n", id="multipart-no-boundary-param"),
        pytest.param(
            "multipart/form-data; boundary=b",
            b'--b\r\nContent-Disposition: form-data; name="gl_repository"\r\n\r\nproject-1',
            id="multipart-truncated",
        ),
        pytest.param(
            "multipart/form-data; boundary=b",
            b'--b\r\nContent-Disposition: form-data; name="gl_repository"\r\n\r\n\xff\xfe\r\n--b--\r\n',
            id="multipart-invalid-utf8",
        ),
        pytest.param(
            "multipart/form-data; boundary=b",
            b"--b\r\nnot a header line\r\n\r\nproject-1\r\n--b--\r\n",
            id="multipart-part-header-without-colon",
        ),
        pytest.param("application/x-www-form-urlencoded", b"gl_repository=%ff%fe", id="form-invalid-utf8-escape"),
        pytest.param("application/x-www-form-urlencoded", b"gl_repository=\xff\xfe", id="form-invalid-utf8-raw"),
        pytest.param("application/json", b'{"gl_repository": ', id="json-truncated"),
        pytest.param("application/json", b'["a"]', id="json-array"),
        pytest.param("application/json", b'{"a": "\\ud800"}', id="json-lone-surrogate"),
        pytest.param("application/json", b"\xff\xfe{}", id="json-invalid-utf8"),
    ],
)
async def test_malformed_bodies_are_400(client, redis, content_type, body):
    resp = await client.post(
        "/api/v4/internal/pre_receive",
        data=body,
        headers={"Gitlab-Shell-Api-Request": shell_jwt(), "Content-Type": content_type},
    )
    assert resp.status == 400, await resp.text()
    assert (await resp.json())["message"].startswith(BAD_REQUEST_PREFIX)
    assert await redis.keys("git-receive-pack-reference-counter:*") == []


@pytest.mark.parametrize("broken", [True, False], ids=["broken", "parsed"])
async def test_what_a_compressed_body_inflated_to_is_not_kept_after_its_answer(client, db, broken):
    """aiohttp keeps a connection's last request until its next one arrives: what a body inflated to
    must not stay with it, neither as parameters (a 1 kB gzip of 900 KiB: its Content-Length is no
    guide) nor inside the frames of a failed parse, which the error a request keeps would hold."""
    _, token = await make_admin(db)
    inflated = b'{"name": "' + b"x" * (900 * 1024) + (b'"' if broken else b'"}')
    headers = {"PRIVATE-TOKEN": token, "Content-Type": "application/json", "Content-Encoding": "gzip"}
    packed = gzip.compress(inflated)
    assert len(packed) < 8 * 1024
    tracemalloc.start()
    try:
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        # concurrent: ten connections, each kept alive with its last request
        answers = await asyncio.gather(
            *(client.post("/api/v4/groups", data=packed, headers=headers) for _ in range(10))
        )
        assert {answer.status for answer in answers} == {400}  # broken JSON, or a name far too long
        for answer in answers:
            await answer.read()
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held < 3 * 1024**2, f"{held / 1024**2:.1f} MiB held by ten answered requests"


async def test_invalid_utf8_form_without_credentials_is_401(client):
    resp = await client.post(
        "/api/v4/users", data=b"name=%ff", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert resp.status == 401


# --- schema limits -------------------------------------------------------------------------------


async def test_blank_seats_are_nil_not_a_crash(client, db):
    _, token = await make_admin(db)
    await namespace_with_id(db, 127, "blank-seats")
    await make_subscription(db, 127, seats=10)
    resp = await client.put(
        "/api/v4/namespaces/127/gitlab_subscription", json={"seats": ""}, headers={"PRIVATE-TOKEN": token}
    )
    assert resp.status == 400
    assert await resp.json() == {"message": {"seats": ["can't be blank"]}}
    resp = await client.post(
        "/api/v4/namespaces/127/gitlab_subscription",
        json={"seats": "", "start_date": "2024-01-01"},
        headers={"PRIVATE-TOKEN": token},
    )
    # both of the model's errors, as GitLab's render_validation_error! lists them
    assert (resp.status, await resp.json()) == (
        400, {"message": {"seats": ["can't be blank"], "namespace_id": ["has already been taken"]}}
    )
    assert (await subscription_row(db, 127))["seats"] == 10


@pytest.mark.parametrize("field", ["seats", "max_seats_used"])
async def test_negative_seats_are_refused(client, db, field):
    _, token = await make_admin(db)
    await namespace_with_id(db, 129, "negative-seats")
    await make_subscription(db, 129, seats=10, max_seats_used=3)
    resp = await client.put(
        "/api/v4/namespaces/129/gitlab_subscription", json={field: -1}, headers={"PRIVATE-TOKEN": token}
    )
    assert resp.status == 400
    assert await resp.json() == {"error": f"{field} is invalid"}
    row = await subscription_row(db, 129)
    assert (row["seats"], row["max_seats_used"]) == (10, 3)


async def test_negative_minutes_are_refused(client, db):
    _, token = await make_admin(db)
    await namespace_with_id(db, 131, "negative-minutes")
    pack = {"number_of_minutes": -5, "expires_at": "2030-01-01", "purchase_xid": "abc"}
    resp = await client.post("/api/v4/namespaces/131/minutes", json={"packs": [pack]}, headers={"PRIVATE-TOKEN": token})
    assert resp.status == 400
    assert await resp.json() == {"error": "packs[number_of_minutes] is invalid"}
    assert await db.fetchval("SELECT count(*) FROM ci_minutes_additional_packs") == 0


LONG = "n" * 256


@pytest.mark.parametrize(
    "path, body, error",
    [
        ("/api/v4/users", {"username": LONG, "email": "a@b.c", "name": "x", "password": "password1"}, "username"),
        ("/api/v4/users", {"username": "u", "email": "a@b.c", "name": LONG, "password": "password1"}, "name"),
        (
            "/api/v4/users",
            {"username": "u", "email": "e" * 100_000 + "@example.com", "name": "x", "password": "password1"},
            "email",
        ),
        ("/api/v4/groups", {"name": LONG, "path": "g"}, "name"),
        ("/api/v4/groups", {"name": "g", "path": LONG}, "path"),
        ("/api/v4/projects", {"name": LONG}, "name"),
        ("/api/v4/projects", {"name": "p", "path": LONG}, "path"),
    ],
)
async def test_over_long_names_are_refused(client, db, path, body, error):
    _, token = await make_admin(db)
    users_before = await db.fetchval("SELECT count(*) FROM users")
    resp = await client.post(path, json=body, headers={"PRIVATE-TOKEN": token})
    assert resp.status == 400, await resp.text()
    assert (await resp.json())["error"].startswith(f"{error} is expected to have length less than or equal to 255")
    assert await db.fetchval("SELECT count(*) FROM users") == users_before
    assert await db.fetchval("SELECT count(*) FROM projects") == 0


@pytest.mark.parametrize("resource", ["protected_branches", "protected_tags"])
async def test_over_long_protected_ref_names_are_refused(client, db, resource):
    _, token = await make_admin(db)
    owner = await make_user(db)
    project = await make_project(db, owner=owner)
    path = f"/api/v4/projects/{project['id']}/{resource}"
    resp = await client.post(path, json={"name": "b" * 256}, headers={"PRIVATE-TOKEN": token})
    assert resp.status == 400
    assert await resp.json() == {"error": "name is expected to have length less than or equal to 255"}
    resp = await client.post(
        path, data=_big_json({"name": "b" * (5 * 1024**2)}), headers={"PRIVATE-TOKEN": token, **JSON_TYPE}
    )
    assert resp.status == 413  # beyond an admin call's body limit
    assert await db.fetchval(f"SELECT count(*) FROM {resource}") == 0


async def test_a_branch_longer_than_git_allows_is_refused_on_allowed(client, db):
    owner = await make_user(db)
    project = await make_project(db, owner=owner)
    resp = await client.post(
        "/api/v4/internal/allowed",
        json={
            "action": "git-receive-pack",
            "gl_repository": f"project-{project['id']}",
            "changes": f"{'0' * 40} {'b' * 40} refs/heads/{'x' * 12_000}",
            "protocol": "ssh",
            "user_id": str(owner["id"]),
        },
        headers=shell_headers(),
    )
    assert resp.status == 400
    assert await resp.json() == {"message": "400 Bad request - changes is invalid"}


# --- body limits and authentication before the body ----------------------------------------------


async def test_an_admin_body_over_its_limit_is_413(client, db):
    _, token = await make_admin(db)
    body = {"username": "big", "email": "big@example.com", "name": "x", "bio": "x" * (auth.ADMIN_MAX_BODY + 1)}
    resp = await client.post("/api/v4/users", data=_big_json(body), headers={"PRIVATE-TOKEN": token, **JSON_TYPE})
    assert resp.status == 413
    assert await resp.json() == {"message": "413 Request Entity Too Large"}


async def test_a_large_push_change_list_is_accepted(client, db, redis):
    owner = await make_user(db)
    project = await make_project(db, owner=owner)
    line = f"{'a' * 40} {'b' * 40} refs/heads/"
    changes = "\n".join(f"{line}branch-{n:07d}" for n in range(60_000))  # ~6 MB, over the admin limit
    assert len(changes) > 5 * 1024**2
    await redis.set(f"git-receive-pack-reference-counter:project-{project['id']}", 1)
    resp = await client.post(
        "/api/v4/internal/post_receive",
        data=_big_json(
            {"gl_repository": f"project-{project['id']}", "identifier": f"user-{owner['id']}", "changes": changes}
        ),
        headers=shell_headers(),
    )
    assert resp.status == 200, (await resp.text())[:300]


async def test_chunked_body_over_the_limit_is_413(client, db):
    _, token = await make_admin(db)

    async def chunks() -> Any:
        yield b'{"name": "'
        for _ in range(20):
            yield b"x" * 100_000
        yield b'"}'

    resp = await client.post(
        "/api/v4/groups", data=chunks(), headers={"PRIVATE-TOKEN": token, "Content-Type": "application/json"}
    )
    assert resp.status == 413


async def test_compressed_body_is_limited_after_inflating(client, db):
    _, token = await make_admin(db)
    inflated = b'{"name": "' + b"x" * (4 * 1024**2) + b'"}'
    packed = gzip.compress(inflated)
    assert len(packed) < auth.ADMIN_MAX_BODY
    resp = await client.post(
        "/api/v4/groups",
        data=io.BytesIO(packed),
        headers={"PRIVATE-TOKEN": token, "Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert resp.status == 413


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
@pytest.mark.parametrize("credentials", [False, True])
async def test_a_body_that_does_not_inflate_is_400_and_closes_its_connection(client, redis, encoding, credentials, caplog):
    """Not a 500 with a traceback per request, which any anonymous client could provoke; and the
    connection, whose stream is past use, is closed with the answer rather than reused."""
    headers = {"Content-Type": "application/json", "Content-Encoding": encoding, **(shell_headers() if credentials else {})}
    for _ in range(2):  # the second on a new connection: the first was closed
        resp = await client.post("/api/v4/internal/pre_receive", data=b"not compressed", headers=headers)
        assert (resp.status, await resp.json()) == (400, {"message": "400 Bad request - the body could not be decoded"})
        assert resp.headers["Connection"] == "close"
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def _headers_only_exchange(port: int, request_head: bytes) -> bytes:
    """Send a request's head (announcing a body that never comes) and read the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request_head)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


@pytest.mark.parametrize(
    "head",
    [
        pytest.param(
            "POST /api/v4/users HTTP/1.1\r\nHost: x\r\nPRIVATE-TOKEN: glpat-wrong\r\n"
            "Content-Type: application/json\r\nContent-Length: 500000\r\n\r\n",
            id="bad token, small body",
        ),
        pytest.param(
            "POST /api/v4/internal/allowed HTTP/1.1\r\nHost: x\r\nGitlab-Shell-Api-Request: not-a-jwt\r\n"
            "Content-Type: application/json\r\nContent-Length: 30000000\r\n\r\n",
            id="bad shell jwt",
        ),
        pytest.param(
            "POST /api/v4/internal/kubernetes/usage_metrics HTTP/1.1\r\nHost: x\r\n"
            "Content-Type: application/json\r\nContent-Length: 5000000\r\n\r\n",
            id="no kas jwt",
        ),
        pytest.param(
            "POST /api/v4/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: 9500000\r\n\r\n",
            id="no token, body over the limit",
        ),
        pytest.param(
            "POST /api/v4/internal/allowed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: 1000000\r\n\r\n",
            id="no shell credentials, body under the shell limit",
        ),
        pytest.param(
            "POST /api/v4/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: 500000\r\n\r\n",
            id="no token, body under the admin limit",
        ),
    ],
)
async def test_refused_before_the_body_is_read(client, head):
    """The answer comes while the client has sent only the headers: the body was never awaited."""
    answer = await asyncio.to_thread(_headers_only_exchange, client.port, head.encode())
    status = int(answer.split(b" ", 2)[1])
    assert status == 401, answer[:200]  # the credentials are checked first, whatever the body's size


def _raw_exchange(port: int, request: bytes) -> tuple[int, bytes]:
    """One whole request sent as bytes (a header value need not be UTF-8); its status and body."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


NOT_UTF8 = b"\xff\xfe"


@pytest.mark.parametrize(
    "method, path, credentials",
    [
        ("GET", "/api/v4/internal/check", b"Gitlab-Shell-Api-Request: " + NOT_UTF8),
        ("GET", "/api/v4/internal/check", b"Gitlab-Shared-Secret: " + NOT_UTF8),
        ("POST", "/api/v4/internal/kubernetes/usage_metrics", b"Gitlab-Kas-Api-Request: " + NOT_UTF8),
        ("GET", "/api/v4/internal/kubernetes/agent_info", b"Gitlab-Kas-Api-Request: KAS\r\nAuthorization: Bearer glagent-" + NOT_UTF8),
        ("GET", "/api/v4/namespaces/1/gitlab_subscription", b"PRIVATE-TOKEN: glpat-" + NOT_UTF8),
        ("GET", "/api/v4/namespaces/1/gitlab_subscription", b"Authorization: Bearer " + NOT_UTF8),
    ],
)
async def test_a_credential_that_is_not_utf8_is_401_not_a_500(client, db, redis, method, path, credentials, caplog):
    """aiohttp hands such bytes on as lone surrogates, which no str.encode() takes: refused as any
    wrong credential is, by anyone, without an error line per request."""
    credentials = credentials.replace(b"KAS", kas_jwt().encode())
    request = (
        f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n".encode()
        + credentials
        + b"\r\nContent-Length: 2\r\n\r\n{}"
    )
    status, body = await asyncio.to_thread(_raw_exchange, client.port, request)
    assert status == 401, body
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


# --- no credential in any log line ---------------------------------------------------------------


async def test_an_over_long_request_line_does_not_log_its_token(serve, tmp_path):  # noqa: F811
    """aiohttp logs a request line over 8,190 bytes with its start; the service's log filter
    removes the token from it (and from a too-long Authorization header's quoted value)."""
    log_file = tmp_path / "service.log"
    secret = "glpat-" + "S3cr3tT0k3n" * 2
    jwt_like = shell_jwt()
    with open(log_file, "wb") as out:
        served = serve(stdout=out, LOG_LEVEL="INFO")
    port = served.port
    try:
        await _wait_ready(f"http://127.0.0.1:{port}/-/readiness")
        heads = [
            f"GET /api/v4/users?private_token={secret}&x={'a' * 9000} HTTP/1.1\r\nHost: x\r\n\r\n",
            f"GET /api/v4/internal/check?secret_token={secret}&x={'a' * 9000} HTTP/1.1\r\nHost: x\r\n\r\n",
            f"GET /api/v4/users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {secret}{'b' * 9000}\r\n\r\n",
            f"GET /api/v4/internal/check HTTP/1.1\r\nHost: x\r\nGitlab-Shell-Api-Request: {jwt_like}{'c' * 9000}\r\n\r\n",
        ]
        for head in heads:
            answer = await asyncio.to_thread(_headers_only_exchange, port, head.encode())
            assert answer.startswith(b"HTTP/1.") and b" 400 " in answer.split(b"\r\n")[0]
        deadline = asyncio.get_running_loop().time() + 10
        while log_file.read_text().count("Error handling request") < len(heads):
            assert asyncio.get_running_loop().time() < deadline, log_file.read_text()[-2000:]
            await asyncio.sleep(0.1)
    finally:
        await served.stop()
    logged = log_file.read_text()
    assert "private_token=[FILTERED]" in logged  # the line is there, without its value
    # the client's fault, which anyone can send: one INFO line each, no ERROR, no traceback
    lines = [orjson.loads(line) for line in logged.splitlines() if "Error handling request" in line]
    assert len(lines) == len(heads)
    assert {(line["severity"], "exception" in line) for line in lines} == {("INFO", False)}
    assert all("LineTooLong" in line["message"] for line in lines)
    for fragment in (secret, "S3cr3tT0k3n", jwt_like.split(".")[1]):
        assert fragment not in logged


async def test_tokens_a_client_puts_in_its_headers_path_or_push_options_are_not_logged(serve, tmp_path):  # noqa: F811
    """The access log's request fields, the echoed correlation id and procrastinate's job lines
    (which carry a push's arguments, CI variables given with `git push -o` among them)."""
    log_file = tmp_path / "service.log"
    token = "glpat-" + "L34kedT0ken" * 2
    jwt_like = shell_jwt()
    ci_secret = "hunter2-" + "Pa55" * 4
    with open(log_file, "wb") as out:
        served = serve(stdout=out, LOG_LEVEL="INFO")
    port = served.port
    try:
        await _wait_ready(f"http://127.0.0.1:{port}/-/readiness")
        base = f"http://127.0.0.1:{port}/api/v4/internal"
        async with aiohttp.ClientSession() as session:
            headers = {**shell_headers(), "User-Agent": f"Bearer {jwt_like}", "X-Gitlab-Client-Name": token}
            async with session.get(f"{base}/check", headers={**headers, "X-Request-Id": token}) as resp:
                assert resp.status == 200
                assert resp.headers["X-Request-Id"] != token  # replaced, so neither echoed nor logged
            async with session.get(f"{base}/{token}", headers=shell_headers()) as resp:
                assert resp.status == 404
            push = {"gl_repository": "project-1", "identifier": "user-1", "changes": f"{'0' * 40} {'a' * 40} refs/heads/x"}
            async with session.post(f"{base}/pre_receive", json=push, headers=shell_headers()) as resp:
                assert resp.status == 200
            push["push_options"] = [f"ci.variable=DEPLOY_CREDS={ci_secret}"]
            async with session.post(f"{base}/post_receive", json=push, headers=shell_headers()) as resp:
                assert resp.status == 200
        deadline = asyncio.get_running_loop().time() + 15
        while "ended with status" not in log_file.read_text():  # the job ran, in this worker
            assert asyncio.get_running_loop().time() < deadline, log_file.read_text()[-3000:]
            await asyncio.sleep(0.1)
    finally:
        await served.stop()
    logged = log_file.read_text()
    assert "Starting job post_receive[" in logged and "/api/v4/internal/[FILTERED]" in logged
    for fragment in (token, "L34kedT0ken", jwt_like.split(".")[1], ci_secret, "Pa55Pa55"):
        assert fragment not in logged, fragment


@pytest.mark.parametrize(
    "line, logged",
    [
        ("Starting job post_receive[2](push_options=['ci.variable=K=v)'])", "Starting job post_receive[2]"),
        (
            "Job post_receive[2](changes='a) b') ended with status: Success, lasted 0.01 s",
            "Job post_receive[2] ended with status: Success, lasted 0.01 s",
        ),
        (
            "Waiting for job to finish: worker: post_receive[5](push_options=['x']) (started 0.010 s ago)",
            "Waiting for job to finish: worker: post_receive[5] (started 0.010 s ago)",
        ),
        ("Stopped worker on queues post_receive, web_hooks", "Stopped worker on queues post_receive, web_hooks"),
    ],
)
def test_procrastinate_lines_keep_a_jobs_name_and_id_not_its_arguments(line, logged):
    from service.logs import without_job_arguments

    assert without_job_arguments(line) == logged


def test_redaction_takes_linear_time_on_hostile_input():
    """The filter sees what unauthenticated clients send (aiohttp quotes bad request lines): a
    backtracking pattern took 3.4 s for 8 KB and 49 s for 32 KB, with the worker's loop blocked."""
    import time

    from service.logs import MAX_LOGGED_CHARS, redact

    for hostile in ("a" * 64_000, "token" * 13_000, "token=" * 11_000, "x://" * 16_000, "-" * 64_000 + "://u:p"):
        started = time.perf_counter()
        result = redact(hostile)
        assert time.perf_counter() - started < 1.0  # measured: < 10 ms; the old pattern: minutes
        assert len(result) < MAX_LOGGED_CHARS + 100


def test_redaction_covers_url_passwords_and_keeps_the_rest():
    from service.logs import redact

    assert redact("postgresql://gitlab:s3cretpw@db:5432/x and redis://:hunter2@redis:6379/0") == (
        "postgresql://gitlab:[FILTERED]@db:5432/x and redis://:[FILTERED]@redis:6379/0"
    )
    assert redact("GET /api/v4/users?private_token=glpat-abc&page=2") == "GET /api/v4/users?private_token=[FILTERED]&page=2"
    assert redact("plain text about tokens and secrets") == "plain text about tokens and secrets"


# --- one request's bad value among concurrent ones (service/db/batch.py) ------------------------

CHANGE_TO_MAIN = "0" * 40 + " " + "1" * 40 + " refs/heads/main\n"


async def test_a_project_id_past_bigint_fails_its_own_allowed_call_only(client, db):
    """Concurrent /allowed calls share one lookup statement: one out-of-range id in it used to turn
    every call of the batch into a 400."""
    user = await make_user(db, username="batched")
    key, _ = await make_key(db, user)
    group = await make_group(db, "batched-group")
    await make_project(db, group, path="p", visibility_level=20)
    good = {"action": "git-upload-pack", "changes": "_any", "protocol": "ssh", "project": "batched-group/p.git",
            "key_id": str(key["id"])}
    bad = {**good, "gl_repository": f"project-{2**63}"}

    async def status(body: dict[str, Any]) -> int:
        async with client.post("/api/v4/internal/allowed", json=body, headers=shell_headers()) as response:
            return response.status

    statuses = await asyncio.gather(*(status(good) for _ in range(8)), status(bad))
    assert statuses == [200] * 8 + [400]


async def test_a_value_jsonb_refuses_fails_its_own_post_receive_only_and_the_others_are_queued(client, db, redis):
    user = await make_user(db, username="batched-pusher")
    project = await make_project(db, owner=user, path="batched-push", visibility_level=20)
    repository = f"project-{project['id']}"

    async def push(identifier: str) -> int:
        async with client.post(
            "/api/v4/internal/post_receive",
            json={"gl_repository": repository, "identifier": identifier, "changes": CHANGE_TO_MAIN},
            headers=shell_headers(),
        ) as response:
            return response.status

    statuses = await asyncio.gather(*(push(f"user-{user['id']}") for _ in range(8)), push("user-1\u0000"))
    assert statuses == [200] * 8 + [400]
    queued = await db.fetchval(
        "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'post_receive' AND args->>'gl_repository' = $1",
        repository,
    )
    assert queued == 8


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.mark.parametrize(
    "body, message",
    [
        (b"k=v&" * 5000, "400 Bad request - total number of query parameters (5001) exceeds limit (4096)"),
        (b"a[][b][c]=1&" * 5000, "400 Bad request - total number of query parameters (5001) exceeds limit (4096)"),
        (b"k" * 70_000 + b"=v", "400 Bad request - exceeded available parameter key space"),
    ],
)
async def test_forms_of_thousands_of_names_are_refused_before_they_are_parsed(client, body, message):
    """Rack's limits (params_limit, key_space_limit): parsing millions of names held the worker for
    seconds (a 30 MB form on /allowed, 11-19 s)."""
    resp = await client.post("/api/v4/internal/allowed", data=body, headers={**shell_headers(), **FORM})
    assert (resp.status, await resp.json()) == (400, {"message": message})


async def test_a_long_value_in_a_form_is_no_parameter_too_many(client, db, redis):
    """An old GitLab Shell's form-encoded push: one change list of megabytes, a few names."""
    owner = await make_user(db)
    project = await make_project(db, owner=owner)
    line = f"{'a' * 40} {'b' * 40} refs/heads/"
    changes = "\n".join(f"{line}branch-{n:06d}" for n in range(30_000))  # ~3 MB
    body = urlencode(
        {"action": "git-receive-pack", "gl_repository": f"project-{project['id']}", "changes": changes, "protocol": "ssh", "user_id": str(owner["id"])}
    ).encode()
    resp = await client.post("/api/v4/internal/allowed", data=io.BytesIO(body), headers={**shell_headers(), **FORM})
    assert resp.status == 200, (await resp.text())[:300]


# --- clients that leave, and HEAD ----------------------------------------------------------------


def _send_part_and_leave(port: int, request_part: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request_part)
        time.sleep(0.3)  # the handler is waiting for the rest of the body when the client goes


async def test_a_client_that_leaves_mid_body_is_a_499_not_a_500_with_a_traceback(serve, tmp_path):  # noqa: F811
    """Anyone may open a request and go (a killed gitlab-shell, a client's timeout): that is not the
    service's error, and must not page anyone with 5xx counts or fill the log with tracebacks.
    (A served process: aiohttp's test server cancels the handler of a client that left instead.)"""
    log_file = tmp_path / "service.log"
    with open(log_file, "wb") as out:
        served = serve(stdout=out, LOG_LEVEL="INFO")
    credentials = "".join(f"{k}: {v}\r\n" for k, v in shell_headers().items() if k != "Content-Type")
    heads = [  # read for its secret_token before anyone is authenticated, and by the handler
        "POST /api/v4/internal/allowed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"{extra}Content-Length: 100\r\n\r\n{{"
        for extra in ("", credentials)
    ]
    labels = {"method": "POST", "route": "/api/v4/internal/allowed"}
    try:
        await _wait_ready(f"{served.url}/-/readiness")
        for head in heads:
            await asyncio.to_thread(_send_part_and_leave, served.port, head.encode())
        deadline = time.monotonic() + 10
        async with aiohttp.ClientSession() as session:
            while True:
                async with session.get(f"{served.url}/-/metrics") as resp:
                    text = await resp.text()
                if sample(text, "http_requests_total", status="499", **labels) == 2 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
    finally:
        await served.stop()
    assert sample(text, "http_requests_total", status="499", **labels) == 2
    assert sample(text, "http_requests_total", status="500", **labels) == 0
    logged = [orjson.loads(line) for line in log_file.read_text().splitlines() if line.startswith("{")]
    assert [line["status"] for line in logged if line.get("path") == "/api/v4/internal/allowed"] == [499, 499]
    assert [line for line in logged if line.get("severity") == "ERROR" or "exception" in line] == []


async def test_the_probes_answer_head_and_no_route_with_effects_does(client, db, redis):
    """A load balancer's health check may send HEAD. Not every GET route answers it, as Grape's
    would: GET two_factor_recovery_codes makes new codes, which HEAD would throw away unseen."""
    for probe in ("/-/readiness", "/-/liveness"):
        async with client.head(probe) as resp:
            assert resp.status == 200
            assert int(resp.headers["Content-Length"]) > 0  # the GET's length, no body sent
            assert await resp.read() == b""
    for path in ("/api/v4/internal/two_factor_recovery_codes", "/api/v4/internal/check"):
        async with client.head(path, params={"key_id": "1"}, headers=shell_headers()) as resp:
            assert resp.status == 405


@pytest.mark.parametrize(
    "head, credentials, answer",
    [
        pytest.param("Content-Length: 100\r\n\r\n{", False, 408, id="length, read for its secret_token"),
        pytest.param("Content-Length: 100\r\n\r\n{", True, 408, id="length, authenticated"),
        pytest.param("Transfer-Encoding: chunked\r\n\r\n10\r\n{", True, 408, id="chunked, authenticated"),
        # no length: not read for credentials at all (query_or_body_param), refused at once
        pytest.param("Transfer-Encoding: chunked\r\n\r\n10\r\n{", False, 401, id="chunked, anonymous"),
        pytest.param(
            "Content-Type: multipart/form-data; boundary=XX\r\nContent-Length: 1000\r\n\r\n"
            '--XX\r\nContent-Disposition: form-data; name="action"\r\n\r\ngit-upload-pack\r\n',
            True,
            408,
            id="multipart, authenticated",
        ),
    ],
)
async def test_a_body_that_stalls_is_408_and_closes_its_connection(
    aiohttp_client, settings, secrets, db, redis, head, credentials, answer
):
    """A client that sends its headers and then too little of its body does not hold the handler,
    nor its connection, past the deadline."""
    client = await aiohttp_client(create_app(settings.with_overrides(body_read_timeout=0.5), secrets))
    extra = "".join(f"{k}: {v}\r\n" for k, v in shell_headers().items() if k != "Content-Type") if credentials else ""
    content_type = "" if "Content-Type" in head else "Content-Type: application/json\r\n"
    request = f"POST /api/v4/internal/allowed HTTP/1.1\r\nHost: x\r\n{content_type}{extra}{head}"
    began = time.monotonic()
    answered = await asyncio.to_thread(_headers_only_exchange, client.port, request.encode())
    assert int(answered.split(b" ", 2)[1]) == answer, answered[:300]
    assert time.monotonic() - began < 5
    if answer == 408:
        assert b"\r\nConnection: close\r\n" in answered


def _send_slowly(port: int, head: bytes, body: bytes, pieces: int, pause: float) -> bytes:
    """The head, then the body in `pieces` parts `pause` seconds apart; the answer's head."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(head)
        step = -(-len(body) // pieces)
        for start in range(0, len(body), step):
            time.sleep(pause)
            sock.sendall(body[start : start + step])
        answer = b""
        while b"\r\n\r\n" not in answer and (chunk := sock.recv(65536)):
            answer += chunk
        return answer


async def test_a_body_that_keeps_arriving_is_read_to_its_end_whatever_it_takes(aiohttp_client, settings, secrets, db, redis):
    """The deadline is on the client's silence, not on the whole upload: a large change list on a
    slow link (here 2 s in ten parts against a deadline of 0.5 s) is read and answered."""
    client = await aiohttp_client(create_app(settings.with_overrides(body_read_timeout=0.5), secrets))
    change = f"{'0' * 40} {'1' * 40} refs/heads/main\n"
    body = orjson.dumps({"action": "git-receive-pack", "changes": change * 400, "key_id": "999999", "project": "nope/nope"})
    extra = "".join(f"{k}: {v}\r\n" for k, v in shell_headers().items())
    head = f"POST /api/v4/internal/allowed HTTP/1.1\r\nHost: x\r\n{extra}Content-Length: {len(body)}\r\n\r\n"
    answered = await asyncio.to_thread(_send_slowly, client.port, head.encode(), body, 10, 0.2)
    assert int(answered.split(b" ", 2)[1]) == 404, answered[:300]  # the key is unknown: read, then answered
