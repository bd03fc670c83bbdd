"""GitLab Shell and Gitaly request (*In) and response (*Out) schemas (lib/api/internal/base.rb).

The hot routes (/allowed, /authorized_keys, /pre_receive, /post_receive) read their parameters
directly (service/routes/shell.py): `bench/schema_load.py` measured AllowedIn().load at 28 µs of CPU
against 5.4 for the hand parse, PreReceiveIn 4.9 against 0.1 (2026-12-07, a machine whose bare
handler served 10 k req/s), when a hot request's whole budget is 25-40 µs; these schemas describe them for the OpenAPI document (service/openapi.py) and match
gitlab-shell's Go client structs field for field. The cheap checks those routes do run are here
too (`changes_within_limits`), so the limits live in one place.
"""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, fields, validate

# A change line is "<old sha> <new sha> <ref>": two SHA-256 object ids at most, and a ref name git
# could have written (each ref is a file: 255 bytes a name, 4096 a path). 1024 characters are at
# most 4096 UTF-8 bytes, and longer than any ref a push creates in practice.
REF_NAME_MAX = 1024
_CHANGE_LINE_MAX = 64 + 1 + 64 + 1 + REF_NAME_MAX


def changes_within_limits(changes: str) -> bool:
    """False when a line of the change list is longer than any ref update git can make.

    Linear in the list's length (a regex scanning for an over-long run re-scanned each line from
    every position: 1.5 s for a normal 29 MB list, on the /allowed path).
    """
    if len(changes) <= _CHANGE_LINE_MAX:
        return True
    start = 0
    while True:
        end = changes.find("\n", start)
        if end < 0:
            return len(changes) - start <= _CHANGE_LINE_MAX
        if end - start > _CHANGE_LINE_MAX:
            return False
        start = end + 1


class _In(Schema):
    class Meta:
        unknown = EXCLUDE  # gitlab-shell and Gitaly send check_ip, namespace_path, krb5principal, env...


def _text(**kwargs: Any) -> fields.String:
    return fields.String(**kwargs)


class ActorIn(_In):
    """Who is acting: a key, a user id or a username (one of them)."""

    key_id = _text(metadata={"description": "SSH key id (gitlab-shell)"})
    user_id = _text(metadata={"description": "user id (Gitaly hooks)"})
    username = _text()
    identifier = _text(metadata={"description": "user-<id> or key-<id> (Gitaly)"})


class AllowedIn(ActorIn):
    """POST /internal/allowed."""

    action = _text(validate=validate.OneOf(("git-upload-pack", "git-receive-pack", "git-upload-archive")))
    protocol = _text(validate=validate.OneOf(("ssh", "http", "web")))
    gl_repository = _text(metadata={"description": "project-<id>, wiki-<id>, snippet-<id>"})
    project = _text(metadata={"description": "the repository path (gitlab-shell)"})
    changes = _text(metadata={"description": "'<old> <new> <ref>' lines; required for git-receive-pack"})
    check_ip = _text()
    relative_path = _text()
    gitaly_client_context_bin = _text(metadata={"description": "base64 JSON object"})
    env = _text(metadata={"description": "JSON object of the hook environment"})


class AuthorizedKeysIn(_In):
    """GET /internal/authorized_keys?key=."""

    key = _text(required=True, metadata={"description": "the base64 key blob"})


class LfsAuthenticateIn(ActorIn):
    operation = _text(validate=validate.OneOf(("upload", "download")))
    project = _text()


class PersonalAccessTokenIn(ActorIn):
    name = _text()
    scopes = fields.List(_text())
    expires_at = _text()


class PreReceiveIn(_In):
    gl_repository = _text()


class PostReceiveIn(_In):
    gl_repository = _text()
    identifier = _text()
    changes = _text()
    push_options = fields.List(_text())
    gitaly_client_context_bin = _text()


class ErrorTrackingAllowedIn(_In):
    project_id = fields.Integer()
    public_key = _text()


# --- responses -----------------------------------------------------------------------------------


class StatusMessageOut(Schema):
    """The /allowed denial: {"status": false, "message": ...}."""

    status = fields.Boolean()
    message = fields.String()


class AllowedOut(Schema):
    status = fields.Boolean(required=True)
    gl_repository = fields.String()
    gl_project_path = fields.String()
    gl_id = fields.String()
    gl_username = fields.String()
    gitaly = fields.Dict()


class KeyOut(Schema):
    id = fields.Integer(required=True)
    title = fields.String()
    key = fields.String(required=True)
    created_at = fields.String(allow_none=True)
    expires_at = fields.String(allow_none=True)
    usage_type = fields.String()


class CheckOut(Schema):
    api_version = fields.String(required=True)
    gitlab_version = fields.String()
    gitlab_rev = fields.String()
    gitlab_revision = fields.String()
    redis = fields.Boolean(required=True)


class SuccessOut(Schema):
    """The always-200 commands: {"success": bool, ...}."""

    success = fields.Boolean(required=True)
    message = fields.String()


class PreReceiveOut(Schema):
    reference_counter_increased = fields.Boolean(required=True)


class PostReceiveOut(Schema):
    messages = fields.List(fields.Dict(), required=True)
    reference_counter_decreased = fields.Boolean(required=True)
