"""Queries behind /internal/allowed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import NamedTuple

from service.db.queries import many, one, statement
from service.db.rows import Conn, row, rows

_CONTEXTS = many("git_access_contexts")
_NAMESPACE_FOR_CREATION = one("namespace_for_project_creation")
_PROTECTED_REFS = many("protected_refs_for_project")
_TOUCH_ACTIVITY = statement("touch_user_activity")


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
    project_creation_level: int
    personal_projects: int
    projects_limit: int | None


@dataclass(frozen=True)
class ProtectedRefRule:
    ref_kind: str  # 'branch' or 'tag'
    name: str
    allow_force_push: bool
    kind: str | None  # 'push', 'merge', 'unprotect', 'create'
    access_level: int | None
    user_id: int | None
    deploy_key_id: int | None


class ContextLookup(NamedTuple):
    """One request's actor and repository parameters (at most one actor field is set)."""

    key_id: int | None = None
    user_id: int | None = None
    username: str | None = None
    owner_of_key_id: int | None = None
    project_id: int | None = None
    project_path: str | None = None


async def git_access_contexts(conn: Conn, lookups: Sequence[ContextLookup]) -> list[AccessContextRow]:
    """One context row per lookup, in order, from one query (batched, see service/db/batch.py)."""
    columns = [[getattr(lookup, name) for lookup in lookups] for name in _LOOKUP_FIELDS]
    return rows(AccessContextRow, await conn.fetch(_CONTEXTS, *columns))


_LOOKUP_FIELDS = ("key_id", "user_id", "username", "owner_of_key_id", "project_id", "project_path")


async def namespace_for_creation(conn: Conn, full_path: str, user_id: int) -> NamespaceForCreation | None:
    return row(NamespaceForCreation, await conn.fetchrow(_NAMESPACE_FOR_CREATION, full_path, user_id))


async def protected_ref_rules(conn: Conn, project_id: int) -> list[ProtectedRefRule]:
    return rows(ProtectedRefRule, await conn.fetch(_PROTECTED_REFS, project_id))


async def touch_user_activity(conn: Conn, user_id: int) -> None:
    await conn.execute(_TOUCH_ACTIVITY, user_id)
