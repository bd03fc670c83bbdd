"""Queries behind /internal/allowed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from service.db.queries import sql
from service.db.rows import Conn, row, rows

_CONTEXT = sql("git_access_context")
_NAMESPACE_FOR_CREATION = sql("namespace_for_project_creation")
_PROTECTED_REFS = sql("protected_refs_for_project")
_TOUCH_ACTIVITY = sql("touch_user_activity")


@dataclass(frozen=True)
class AccessContextRow:
    key_id: int | None
    key_class: str | None
    key_expires_at: datetime | None
    key_type: str | None
    key_bits: int | None
    key_fingerprint_sha256: str | None
    user_id: int | None
    username: str | None
    user_name: str | None
    user_state: str | None
    user_type: str | None
    user_admin: bool | None
    user_external: bool | None
    user_confirmed: bool | None
    user_password_expires_at: datetime | None
    user_terms_accepted: bool | None
    user_encrypted_password: str | None
    user_last_activity_on: date | None
    project_id: int | None
    project_name: str | None
    project_full_path: str | None
    root_namespace_id: int | None
    visibility_level: int | None
    archived: bool | None
    repository_read_only: bool | None
    repository_storage: str | None
    legacy_disk_path: str | None
    repository_exists: bool | None
    lfs_enabled: bool | None
    default_branch: str | None
    repository_access_level: int | None
    wiki_access_level: int | None
    redirected_from: str | None
    access_level: int | None
    deploy_key_can_push: bool | None


@dataclass(frozen=True)
class NamespaceForCreation:
    id: int
    type: str
    owner_id: int | None
    full_path: str
    traversal_ids: list[int]
    access_level: int | None
    projects_created: int


@dataclass(frozen=True)
class ProtectedRefRule:
    ref_kind: str  # 'branch' or 'tag'
    name: str
    allow_force_push: bool
    kind: str | None  # 'push', 'merge', 'unprotect', 'create'
    access_level: int | None
    user_id: int | None
    deploy_key_id: int | None


async def git_access_context(
    conn: Conn,
    *,
    key_id: int | None,
    user_id: int | None,
    username: str | None,
    owner_of_key_id: int | None,
    project_id: int | None,
    project_path: str | None,
) -> AccessContextRow:
    record = await conn.fetchrow(_CONTEXT, key_id, user_id, username, owner_of_key_id, project_id, project_path)
    found = row(AccessContextRow, record)
    assert found is not None  # the query always returns its one row
    return found


async def namespace_for_creation(conn: Conn, full_path: str, user_id: int) -> NamespaceForCreation | None:
    return row(NamespaceForCreation, await conn.fetchrow(_NAMESPACE_FOR_CREATION, full_path, user_id))


async def protected_ref_rules(conn: Conn, project_id: int) -> list[ProtectedRefRule]:
    return rows(ProtectedRefRule, await conn.fetch(_PROTECTED_REFS, project_id))


async def touch_user_activity(conn: Conn, user_id: int) -> None:
    await conn.execute(_TOUCH_ACTIVITY, user_id)
