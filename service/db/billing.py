"""Namespaces as CustomersDot sees them, plans, subscriptions, minutes packs and reconciliations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from service.db.queries import many, one, returning, statement, value
from service.db.rows import Conn, row

_NAMESPACE_BY_ID = one("find_billing_namespace_by_id")
_NAMESPACE_BY_PATH = one("find_billing_namespace_by_full_path")
_ACCESS = one("namespace_access_for_user")
_BILLABLE = value("count_billable_users")
_PLAN = one("find_plan_by_name")
_SUBSCRIPTION = one("find_subscription_by_namespace")
_LOCK_SUBSCRIPTION = one("lock_subscription_by_namespace")
_INSERT_SUBSCRIPTION = returning("insert_subscription")
_UPDATE_SUBSCRIPTION = statement("update_subscription")
_INSERT_HISTORY = statement("insert_subscription_history")
_LAST_TERM_ON_PLAN = one("find_last_subscription_term_on_plan")
_RAISE_MAX_SEATS = statement("raise_max_seats_used")
_INSERT_PACK = returning("insert_additional_pack")
_PACK_BY_XID = one("find_additional_pack_by_purchase_xid")
_SHARE_OWNER = value("namespaces_share_an_owner")
_MOVE_PACKS = value("move_additional_packs")
_EXISTING_NAMESPACES = many("existing_namespace_ids")
_UPSERT_RECONCILIATIONS = statement("upsert_upcoming_reconciliations")
_DELETE_RECONCILIATION = returning("delete_upcoming_reconciliation")


@dataclass(frozen=True)
class NamespaceRow:
    id: int
    type: str  # 'User' or 'Group'
    parent_id: int | None
    owner_id: int | None
    traversal_ids: list[int]
    full_path: str | None


@dataclass(frozen=True)
class NamespaceAccess:
    is_owner: bool
    can_read: bool


@dataclass(frozen=True)
class PlanRow:
    id: int
    name: str
    title: str


@dataclass(frozen=True)
class SubscriptionRow:
    id: int
    namespace_id: int
    hosted_plan_id: int | None
    plan_name: str | None
    plan_title: str | None
    start_date: date
    end_date: date | None
    trial_starts_on: date | None
    trial_ends_on: date | None
    trial: bool | None
    auto_renew: bool | None
    seats: int
    max_seats_used: int
    max_seats_used_changed_at: datetime | None
    trial_extension_type: int | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class SubscriptionValues:
    """The writable columns of a subscription, as they are to be stored."""

    hosted_plan_id: int | None
    start_date: date
    end_date: date | None
    trial_starts_on: date | None
    trial_ends_on: date | None
    trial: bool | None
    auto_renew: bool | None
    seats: int
    max_seats_used: int
    max_seats_used_changed_at: datetime | None
    trial_extension_type: int | None


@dataclass(frozen=True)
class TermRow:
    """A subscription term as a history row recorded it."""

    start_date: date | None
    end_date: date | None


@dataclass(frozen=True)
class PackRow:
    namespace_id: int
    expires_at: date
    number_of_minutes: int
    purchase_xid: str


# --- namespaces ---------------------------------------------------------------------------------


async def find_namespace_by_id(conn: Conn, namespace_id: int) -> NamespaceRow | None:
    return row(NamespaceRow, await conn.fetchrow(_NAMESPACE_BY_ID, namespace_id))


async def find_namespace_by_full_path(conn: Conn, full_path: str) -> NamespaceRow | None:
    return row(NamespaceRow, await conn.fetchrow(_NAMESPACE_BY_PATH, full_path))


async def namespace_access(conn: Conn, namespace_id: int, user_id: int) -> NamespaceAccess:
    found = row(NamespaceAccess, await conn.fetchrow(_ACCESS, namespace_id, user_id))
    return found or NamespaceAccess(is_owner=False, can_read=False)


async def count_billable_users(conn: Conn, group_id: int, exclude_guests: bool) -> int:
    count: int = await conn.fetchval(_BILLABLE, group_id, exclude_guests)
    return count


async def namespaces_share_an_owner(conn: Conn, namespace_id: int, other_id: int) -> bool:
    shared: bool = await conn.fetchval(_SHARE_OWNER, namespace_id, other_id)
    return shared


async def existing_namespace_ids(conn: Conn, namespace_ids: list[int]) -> set[int]:
    return {record["id"] for record in await conn.fetch(_EXISTING_NAMESPACES, namespace_ids)}


# --- plans and subscriptions --------------------------------------------------------------------


async def find_plan_by_name(conn: Conn, name: str) -> PlanRow | None:
    return row(PlanRow, await conn.fetchrow(_PLAN, name))


async def find_subscription(conn: Conn, namespace_id: int) -> SubscriptionRow | None:
    return row(SubscriptionRow, await conn.fetchrow(_SUBSCRIPTION, namespace_id))


async def lock_subscription(conn: Conn, namespace_id: int) -> SubscriptionRow | None:
    """The subscription, locked FOR UPDATE; call inside a transaction."""
    return row(SubscriptionRow, await conn.fetchrow(_LOCK_SUBSCRIPTION, namespace_id))


async def insert_subscription(conn: Conn, namespace_id: int, values: SubscriptionValues) -> int | None:
    """The new subscription's id, or None when the namespace already has one."""
    new_id: int | None = await conn.fetchval(
        _INSERT_SUBSCRIPTION,
        namespace_id,
        values.hosted_plan_id,
        values.start_date,
        values.end_date,
        values.trial_starts_on,
        values.trial_ends_on,
        values.trial,
        values.auto_renew,
        values.seats,
        values.max_seats_used,
        values.trial_extension_type,
    )
    return new_id


async def update_subscription(conn: Conn, subscription_id: int, values: SubscriptionValues) -> None:
    await conn.execute(
        _UPDATE_SUBSCRIPTION,
        subscription_id,
        values.hosted_plan_id,
        values.start_date,
        values.end_date,
        values.trial_starts_on,
        values.trial_ends_on,
        values.trial,
        values.auto_renew,
        values.seats,
        values.max_seats_used,
        values.max_seats_used_changed_at,
        values.trial_extension_type,
    )


async def raise_max_seats_used(conn: Conn, subscription_id: int, seats: int) -> None:
    await conn.execute(_RAISE_MAX_SEATS, subscription_id, seats)


async def insert_subscription_history(conn: Conn, previous: SubscriptionRow, change_type: int) -> None:
    await conn.execute(
        _INSERT_HISTORY,
        previous.id,
        previous.created_at,
        previous.updated_at,
        change_type,
        previous.namespace_id,
        previous.hosted_plan_id,
        previous.start_date,
        previous.end_date,
        previous.trial_starts_on,
        previous.trial_ends_on,
        previous.trial,
        previous.auto_renew,
        previous.seats,
        previous.max_seats_used,
        previous.trial_extension_type,
    )


async def find_last_term_on_plan(conn: Conn, subscription_id: int, plan_name: str) -> TermRow | None:
    """The term of the subscription's latest history row on this plan; None when it never had it."""
    return row(TermRow, await conn.fetchrow(_LAST_TERM_ON_PLAN, subscription_id, plan_name))


# --- compute minutes packs ----------------------------------------------------------------------


async def insert_additional_pack(
    conn: Conn, namespace_id: int, purchase_xid: str, expires_at: date, number_of_minutes: int
) -> PackRow | None:
    """The new pack, or None when a pack with this purchase_xid already exists (anywhere)."""
    return row(PackRow, await conn.fetchrow(_INSERT_PACK, namespace_id, purchase_xid, expires_at, number_of_minutes))


async def find_additional_pack(conn: Conn, purchase_xid: str) -> PackRow | None:
    return row(PackRow, await conn.fetchrow(_PACK_BY_XID, purchase_xid))


async def move_additional_packs(conn: Conn, namespace_id: int, target_id: int) -> int:
    moved: int = await conn.fetchval(_MOVE_PACKS, namespace_id, target_id)
    return moved


# --- upcoming reconciliations -------------------------------------------------------------------


async def upsert_upcoming_reconciliations(
    conn: Conn, namespace_ids: list[int], next_dates: list[date], alert_dates: list[date]
) -> None:
    await conn.execute(_UPSERT_RECONCILIATIONS, namespace_ids, next_dates, alert_dates)


async def delete_upcoming_reconciliation(conn: Conn, namespace_id: int) -> bool:
    deleted = await conn.fetchval(_DELETE_RECONCILIATION, namespace_id)
    return deleted is not None


