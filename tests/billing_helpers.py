"""Rows and credentials for the CustomersDot tests."""

from __future__ import annotations

from datetime import date
from typing import Any

import asyncpg

from tests.factories import make_personal_access_token, make_user, user_namespace_id


async def admin_token(db: asyncpg.Connection) -> str:
    """A personal access token of an administrator, as CustomersDot holds one."""
    admin = await make_user(db, admin=True)
    return await make_personal_access_token(db, admin)


def admin_headers(token: str, header: str = "PRIVATE-TOKEN") -> dict[str, str]:
    return {header: token}


async def personal_namespace(db: asyncpg.Connection, user: asyncpg.Record) -> int:
    return await user_namespace_id(db, user["id"])


async def namespace_with_id(db: asyncpg.Connection, namespace_id: int, path: str) -> None:
    """A top-level group with a chosen id (the seed docs' examples use 127, 129, 22...)."""
    await db.execute(
        "INSERT INTO namespaces (id, name, path, type, traversal_ids) VALUES ($1, $2, $2, 'Group', ARRAY[$1::bigint])",
        namespace_id,
        path,
    )
    await db.execute(
        "INSERT INTO routes (source_type, source_id, path, name) VALUES ('Namespace', $1, $2, $2)",
        namespace_id,
        path,
    )


async def make_subscription(
    db: asyncpg.Connection, namespace_id: int, plan: str | None = "premium", **columns: Any
) -> int:
    values: dict[str, Any] = {"start_date": date(2020, 7, 15), "seats": 10, **columns}
    names = ["namespace_id", "hosted_plan_id", *values]
    placeholders = ", ".join(f"${i}" for i in range(1, len(names) + 1))
    plan_id = await db.fetchval("SELECT id FROM plans WHERE name = $1", plan) if plan else None
    return await db.fetchval(
        f"INSERT INTO gitlab_subscriptions ({', '.join(names)}) VALUES ({placeholders}) RETURNING id",
        namespace_id,
        plan_id,
        *values.values(),
    )


async def subscription_row(db: asyncpg.Connection, namespace_id: int) -> asyncpg.Record:
    return await db.fetchrow(
        "SELECT s.*, p.name AS plan_name FROM gitlab_subscriptions s LEFT JOIN plans p ON p.id = s.hosted_plan_id"
        " WHERE s.namespace_id = $1",
        namespace_id,
    )


async def histories(db: asyncpg.Connection, subscription_id: int) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT * FROM gitlab_subscription_histories WHERE gitlab_subscription_id = $1 ORDER BY id",
        subscription_id,
    )


async def packs(db: asyncpg.Connection) -> list[dict[str, Any]]:
    """Every pack as (namespace_id, purchase_xid, number_of_minutes, expires_at), in purchase order."""
    records = await db.fetch(
        "SELECT namespace_id, purchase_xid, number_of_minutes, expires_at FROM ci_minutes_additional_packs"
        " ORDER BY purchase_xid"
    )
    return [dict(record) for record in records]


async def make_pack(
    db: asyncpg.Connection, namespace_id: int, purchase_xid: str, minutes: int = 1000
) -> None:
    await db.execute(
        "INSERT INTO ci_minutes_additional_packs (namespace_id, purchase_xid, expires_at, number_of_minutes)"
        " VALUES ($1, $2, $3, $4)",
        namespace_id,
        purchase_xid,
        date(2030, 1, 1),
        minutes,
    )


async def reconciliations(db: asyncpg.Connection) -> list[dict[str, Any]]:
    records = await db.fetch(
        "SELECT namespace_id, next_reconciliation_date, display_alert_from FROM upcoming_reconciliations"
        " ORDER BY namespace_id"
    )
    return [dict(record) for record in records]
