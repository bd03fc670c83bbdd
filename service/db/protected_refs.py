"""protected_branches, protected_tags and their access levels (sql/protected_refs.sql).

/internal/allowed reads the rules through access.py (protected_ref_rules).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from service.db.queries import many, returning, statement, value
from service.db.rows import Conn

_LIST_BRANCHES = many("list_protected_branches")
_INSERT_BRANCH = returning("insert_protected_branch")
_INSERT_BRANCH_LEVEL = statement("insert_branch_access_level")
_UPDATE_BRANCH = returning("update_protected_branch")
_DELETE_BRANCH = returning("delete_protected_branch")
_LIST_TAGS = many("list_protected_tags")
_INSERT_TAG = returning("insert_protected_tag")
_DELETE_TAG = returning("delete_protected_tag")
_DEFAULT_BRANCH_PROTECTION = value("default_branch_protection_for_project")


@dataclass(frozen=True)
class ProtectedBranchRow:
    id: int
    name: str
    allow_force_push: bool
    push_access_levels: list[dict[str, Any]]
    merge_access_levels: list[dict[str, Any]]
    unprotect_access_levels: list[dict[str, Any]]


@dataclass(frozen=True)
class ProtectedTagRow:
    id: int
    name: str
    create_access_levels: list[dict[str, Any]]


def _decode_json_columns(record: Any, columns: tuple[str, ...]) -> dict[str, Any]:
    # json_agg arrives as text: asyncpg leaves json decoding to the caller
    values = dict(record.items())
    for column in columns:
        values[column] = orjson.loads(values[column])
    return values


_BRANCH_JSON = ("push_access_levels", "merge_access_levels", "unprotect_access_levels")


async def list_protected_branches(conn: Conn, project_id: int, name: str | None = None) -> list[ProtectedBranchRow]:
    records = await conn.fetch(_LIST_BRANCHES, project_id, name)
    return [ProtectedBranchRow(**_decode_json_columns(r, _BRANCH_JSON)) for r in records]


async def insert_protected_branch(
    conn: Conn, project_id: int, name: str, *, allow_force_push: bool, levels: list[tuple[str, int]]
) -> bool:
    """False when the branch is already protected; call inside a transaction."""
    branch_id = await conn.fetchval(_INSERT_BRANCH, project_id, name, allow_force_push)
    if branch_id is None:
        return False
    for kind, level in levels:
        await conn.execute(_INSERT_BRANCH_LEVEL, branch_id, kind, level)
    return True


async def update_protected_branch(conn: Conn, project_id: int, name: str, *, allow_force_push: bool | None) -> bool:
    return await conn.fetchval(_UPDATE_BRANCH, project_id, name, allow_force_push) is not None


async def delete_protected_branch(conn: Conn, project_id: int, name: str) -> bool:
    return await conn.fetchval(_DELETE_BRANCH, project_id, name) is not None


async def list_protected_tags(conn: Conn, project_id: int, name: str | None = None) -> list[ProtectedTagRow]:
    records = await conn.fetch(_LIST_TAGS, project_id, name)
    return [ProtectedTagRow(**_decode_json_columns(r, ("create_access_levels",))) for r in records]


async def insert_protected_tag(conn: Conn, project_id: int, name: str, create_access_level: int) -> bool:
    return await conn.fetchval(_INSERT_TAG, project_id, name, create_access_level) is not None


async def delete_protected_tag(conn: Conn, project_id: int, name: str) -> bool:
    return await conn.fetchval(_DELETE_TAG, project_id, name) is not None


async def default_branch_protection(conn: Conn, project_id: int) -> dict[str, Any] | None:
    """The default branch protection setting that applies to the project; None when it is gone."""
    settings = await conn.fetchval(_DEFAULT_BRANCH_PROTECTION, project_id)
    return None if settings is None else orjson.loads(settings)
