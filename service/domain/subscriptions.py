"""GitLab.com subscriptions (GitLab: ee/app/models/gitlab_subscription.rb, ee/lib/ee/api/namespaces.rb).

The rules are plain functions over rows (`plan_create`, `plan_update`, `render`); the async
functions around them read and write inside one transaction, so a subscription, its history row
and its seat reset are stored together or not at all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from service.db import billing as db
from service.db.billing import NamespaceRow as NamespaceRow  # re-exported for the routes
from service.db.billing import PlanRow, SubscriptionRow, SubscriptionValues, TermRow
from service.db.rows import Conn
from service.domain.errors import Denied, Invalid, Missing
from service.domain.ids import as_id

FREE = "free"
PREMIUM = "premium"
# Plan::ULTIMATE_TRIAL_PAID_CUSTOMER: the Ultimate trial offered to paying Premium customers
TRIAL_PAID_CUSTOMER = "ultimate_trial_paid_customer"
# Plan::PAID_HOSTED_PLANS, Plan::TOP_PLANS (ee/app/models/ee/plan.rb)
PAID_HOSTED_PLANS = frozenset(
    {
        "bronze",
        "silver",
        "premium",
        "gold",
        "ultimate",
        "ultimate_trial",
        "ultimate_trial_paid_customer",
        "premium_trial",
        "opensource",
    }
)
TOP_PLANS = frozenset({"gold", "ultimate", "opensource"})
# EE::Group#exclude_guests?: these plans do not bill Guest members
EXCLUDE_GUESTS_PLANS = frozenset({"gold", "ultimate", "ultimate_trial"})

# GitlabSubscriptionHistory.change_type enum
CHANGE_TYPE_UPDATED = 1
# GitlabSubscriptionHistory::TRACKED_ATTRIBUTES that a request can change
TRACKED_ATTRIBUTES = (
    "start_date",
    "end_date",
    "trial_ends_on",
    "hosted_plan_id",
    "max_seats_used",
    "seats",
    "trial",
    "trial_starts_on",
    "auto_renew",
    "trial_extension_type",
)

# Columns a request sets directly (plan_code goes through the plans table)
WRITABLE_COLUMNS = (
    "start_date",
    "end_date",
    "trial_starts_on",
    "trial_ends_on",
    "trial",
    "auto_renew",
    "seats",
    "max_seats_used",
    "trial_extension_type",
)

CANT_BE_BLANK = "can't be blank"
TAKEN = "has already been taken"
# ActiveModel's ComparisonValidator: the :greater_than message (count: the other date, Date#to_s),
# and Comparable's ArgumentError when that other date is nil
GREATER_THAN = "must be greater than {}"
COMPARED_WITH_NIL = "comparison of Date with nil failed"

# GET of a namespace without subscription: GitLab presents `{}` with the entity, so every field is nil.
EMPTY_ENTITY: dict[str, dict[str, Any]] = {
    "plan": dict.fromkeys(("code", "name", "trial", "auto_renew", "upgradable", "exclude_guests")),
    "usage": dict.fromkeys(("seats_in_subscription", "seats_in_use", "max_seats_used", "seats_owed")),
    "billing": dict.fromkeys(("subscription_start_date", "subscription_end_date", "trial_ends_on")),
}


class SubscriptionInvalid(Invalid):
    """ActiveRecord validation errors: rendered as 400 {"message": {"seats": ["can't be blank"]}}."""


class SubscriptionNotFound(Missing):
    """PUT on a namespace without subscription: 404 "404 GitlabSubscription Not Found"."""

    def __init__(self) -> None:
        super().__init__("GitlabSubscription")


@dataclass(frozen=True)
class PlannedUpdate:
    values: SubscriptionValues
    tracked_changed: bool
    reset_seats: bool


# --- pure rules ---------------------------------------------------------------------------------


def has_a_paid_hosted_plan(plan_name: str | None, trial: bool | None, seats: int) -> bool:
    return not trial and seats > 0 and plan_name in PAID_HOSTED_PLANS


def is_upgradable(plan_name: str | None, trial: bool | None, seats: int, end_date: date | None, today: date) -> bool:
    if plan_name in TOP_PLANS:
        return False
    expired = end_date is not None and end_date < today
    return has_a_paid_hosted_plan(plan_name, trial, seats) and not expired


def excludes_guests(namespace: NamespaceRow, plan_name: str | None) -> bool:
    # Only groups override exclude_guests?; a personal namespace always bills its one user.
    return namespace.type == "Group" and plan_name in EXCLUDE_GUESTS_PLANS


def seats_owed(plan_name: str | None, trial: bool | None, seats: int, max_seats_used: int) -> int:
    """GitlabSubscription#calculate_seats_owed."""
    if not has_a_paid_hosted_plan(plan_name, trial, seats):
        return 0
    return max(0, max_seats_used - seats)


def with_trial_start_default(params: Mapping[str, Any]) -> dict[str, Any]:
    """`subscription_params[:trial_starts_on] ||= subscription_params[:start_date] if subscription_params[:trial]`.

    Ruby's `||=` assigns even when start_date was not sent, so a trial PUT without either date
    stores trial_starts_on = nil. Kept: CustomersDot's data must end up as GitLab would store it.
    """
    result = dict(params)
    if result.get("trial") and not result.get("trial_starts_on"):
        result["trial_starts_on"] = result.get("start_date")
    return result


def _validation_errors(
    values: SubscriptionValues | Mapping[str, Any], namespace_taken: bool = False
) -> dict[str, list[str]]:
    """GitlabSubscription's validations, in their declaration order (the order of the error keys)."""
    get = values.get if isinstance(values, Mapping) else lambda name: getattr(values, name)
    errors: dict[str, list[str]] = {}
    # validates :seats, :start_date, presence: true (in that order). max_seats_used is NOT NULL
    # here; GitLab would raise on nil in calculate_seats_owed, so it is refused the same way.
    for name in ("seats", "start_date", "max_seats_used"):
        if get(name) is None:
            errors[name] = [CANT_BE_BLANK]
    # validates :namespace_id, uniqueness: true
    if namespace_taken:
        errors["namespace_id"] = [TAKEN]
    if get("trial"):
        _add_trial_errors(errors, get("trial_starts_on"), get("trial_ends_on"))
    return errors


def _add_trial_errors(errors: dict[str, list[str]], starts_on: date | None, ends_on: date | None) -> None:
    """`validates :trial_ends_on, :trial_starts_on, presence: true, if: :trial?`, then
    `validates_comparison_of :trial_ends_on, greater_than: :trial_starts_on, if: :trial?`."""
    for name, value in (("trial_ends_on", ends_on), ("trial_starts_on", starts_on)):
        if value is None:
            errors.setdefault(name, []).append(CANT_BE_BLANK)
    # ComparisonValidator reports a blank value as blank once more (Rails keeps both messages), and
    # comparing with a nil trial_starts_on raises an ArgumentError whose message becomes the error.
    if ends_on is None:
        message = CANT_BE_BLANK
    elif starts_on is None:
        message = COMPARED_WITH_NIL
    elif ends_on <= starts_on:
        message = GREATER_THAN.format(starts_on.isoformat())
    else:
        return
    errors.setdefault("trial_ends_on", []).append(message)


def _plan_id(params: Mapping[str, Any], plan: PlanRow | None, current: int | None) -> int | None:
    # plan_code= does Plan.find_by(name: code || 'free'): an unknown code silently clears the plan.
    if "plan_code" not in params:
        return current
    return plan.id if plan is not None else None


def _create_candidate(params: Mapping[str, Any], plan: PlanRow | None) -> dict[str, Any]:
    return {
        "hosted_plan_id": _plan_id(params, plan, None),
        "start_date": params.get("start_date"),
        "end_date": params.get("end_date"),
        "trial_starts_on": params.get("trial_starts_on"),
        "trial_ends_on": params.get("trial_ends_on"),
        "trial": params.get("trial", False),  # column default
        "auto_renew": params.get("auto_renew"),
        "seats": params.get("seats", 0),  # column default
        "max_seats_used": params.get("max_seats_used", 0),  # column default
        "max_seats_used_changed_at": None,
        "trial_extension_type": params.get("trial_extension_type"),
    }


def create_errors(params: Mapping[str, Any], namespace_taken: bool) -> dict[str, list[str]]:
    """The model's validation errors for a new subscription."""
    return _validation_errors(_create_candidate(params, None), namespace_taken)


def plan_create(params: Mapping[str, Any], plan: PlanRow | None) -> SubscriptionValues:
    """The new row from declared params that passed create_errors."""
    return SubscriptionValues(**_create_candidate(params, plan))


def plan_update(
    current: SubscriptionRow,
    params: Mapping[str, Any],
    plan: PlanRow | None,
    plan_name: str | None,
    now: datetime,
    premium_term: TermRow | None = None,
) -> PlannedUpdate:
    """GitlabSubscription#update with its before_update callbacks, minus the seat count itself.

    `plan_name` is the name of the plan the row will have. `reset_seats` means max_seats_used must
    become the live seat count (reset_seat_statistics), which the caller reads in the same transaction.
    `premium_term` is the term of the subscription's latest history row on Premium, read by the
    caller when returns_to_premium(current.plan_name, plan_name).
    """
    merged = {name: params[name] for name in WRITABLE_COLUMNS if name in params}
    values = replace(
        _values_of(current),
        hosted_plan_id=_plan_id(params, plan, current.hosted_plan_id),
        **merged,
    )
    errors = _validation_errors(values)
    if errors:
        raise SubscriptionInvalid(errors)
    assert values.start_date is not None

    changed = {name for name in TRACKED_ATTRIBUTES if getattr(values, name) != getattr(current, name)}
    # new_term?: a renewal moves both dates, and the new term starts when (or after) the old one ended.
    new_term = (
        "start_date" in changed
        and "end_date" in changed
        and (current.end_date is None or values.start_date >= current.end_date)
    )
    # set_max_seats_used_changed_at runs first ...
    changed_at = current.max_seats_used_changed_at
    if not new_term and "max_seats_used" in changed:
        changed_at = now
    values = replace(values, max_seats_used_changed_at=changed_at)
    # ... then reset_seat_statistics?
    if TRIAL_PAID_CUSTOMER in (current.plan_name, plan_name):
        reset = _trial_paid_customer_reset(current, values, plan_name, premium_term)
    else:
        reset = has_a_paid_hosted_plan(plan_name, values.trial, values.seats) and (
            new_term
            or ("trial" in changed and not values.trial)
            or (changed_at is not None and changed_at.date() < values.start_date)
        )
    return PlannedUpdate(values=values, tracked_changed=bool(changed), reset_seats=reset)


def returns_to_premium(current_plan: str | None, plan_name: str | None) -> bool:
    """A Premium customer's ultimate_trial_paid_customer trial ends and the subscription goes back to Premium."""
    return current_plan == TRIAL_PAID_CUSTOMER and plan_name == PREMIUM


def _trial_paid_customer_reset(
    current: SubscriptionRow, values: SubscriptionValues, plan_name: str | None, premium_term: TermRow | None
) -> bool:
    """reset_involves_ultimate_trial_paid_customer_plan?, which decides alone (paid plan or not,
    new term or not) when the plan was or becomes ultimate_trial_paid_customer: the trial neither
    starts nor ends a seat period, so the overage of the Premium term it interrupted stays billable."""
    if values.hosted_plan_id == current.hosted_plan_id:
        return False
    if plan_name == TRIAL_PAID_CUSTOMER:
        return False
    # premium_plan_not_renewed?: back to Premium with the dates of the last Premium history row
    if returns_to_premium(current.plan_name, plan_name) and premium_term is not None:
        if (premium_term.start_date, premium_term.end_date) == (values.start_date, values.end_date):
            return False
    # a renewed Premium term, or any other plan (Ultimate, Free...)
    return True


def _values_of(row: SubscriptionRow) -> SubscriptionValues:
    return SubscriptionValues(
        hosted_plan_id=row.hosted_plan_id,
        start_date=row.start_date,
        end_date=row.end_date,
        trial_starts_on=row.trial_starts_on,
        trial_ends_on=row.trial_ends_on,
        trial=row.trial,
        auto_renew=row.auto_renew,
        seats=row.seats,
        max_seats_used=row.max_seats_used,
        max_seats_used_changed_at=row.max_seats_used_changed_at,
        trial_extension_type=row.trial_extension_type,
    )


def render(
    namespace: NamespaceRow, subscription: SubscriptionRow | None, seats_in_use: int, today: date
) -> dict[str, Any]:
    """API::Entities::GitlabSubscription.

    seats_in_use is always the live count: GitLab shows a column refreshed every few hours by a
    worker for paid plans; here it is counted when read (and max_seats_used follows it, see
    _record_peak_usage).
    """
    if subscription is None:
        return {section: dict(fields) for section, fields in EMPTY_ENTITY.items()}
    plan = subscription.plan_name
    return {
        "plan": {
            "code": plan,
            "name": subscription.plan_title,
            "trial": subscription.trial,
            "auto_renew": subscription.auto_renew,
            "upgradable": is_upgradable(plan, subscription.trial, subscription.seats, subscription.end_date, today),
            "exclude_guests": excludes_guests(namespace, plan),
        },
        "usage": {
            "seats_in_subscription": subscription.seats,
            "seats_in_use": seats_in_use,
            "max_seats_used": subscription.max_seats_used,
            "seats_owed": seats_owed(plan, subscription.trial, subscription.seats, subscription.max_seats_used),
        },
        "billing": {
            "subscription_start_date": subscription.start_date,
            "subscription_end_date": subscription.end_date,
            "trial_ends_on": subscription.trial_ends_on,
        },
    }


# --- reads and writes ---------------------------------------------------------------------------


async def seats_in_use(conn: Conn, namespace: NamespaceRow, plan_name: str | None) -> int:
    """billed_user_ids.count: the owner alone for a personal namespace."""
    if namespace.type != "Group":
        return 1
    return await db.count_billable_users(conn, namespace.id, excludes_guests(namespace, plan_name))


async def _plan_for(conn: Conn, params: Mapping[str, Any]) -> PlanRow | None:
    if "plan_code" not in params:
        return None
    # Ruby's `code || 'free'`: only a missing code means Free; "" finds no plan and clears it.
    code = params["plan_code"]
    return await db.find_plan_by_name(conn, FREE if code is None else code)


async def show(conn: Conn, namespace: NamespaceRow, today: date, record_peak: bool = False) -> dict[str, Any]:
    """The entity; with record_peak (GET), a paid plan's max_seats_used first catches up with the
    live count. POST and PUT answer with the stored value, as GitLab does before its worker runs."""
    subscription = await db.find_subscription(conn, namespace.id)
    in_use = await seats_in_use(conn, namespace, subscription.plan_name) if subscription else 0
    if subscription is not None and record_peak:
        subscription = await _record_peak_usage(conn, namespace, subscription, in_use)
    return render(namespace, subscription, in_use, today)


async def _record_peak_usage(
    conn: Conn, namespace: NamespaceRow, subscription: SubscriptionRow, in_use: int
) -> SubscriptionRow:
    """What GitLab's seat refresh worker does, done when the subscription is read: a paid plan's
    max_seats_used rises to the live count (with a history row), so seats_owed shows the overage
    CustomersDot bills."""
    if not has_a_paid_hosted_plan(subscription.plan_name, subscription.trial, subscription.seats):
        return subscription
    if in_use <= subscription.max_seats_used:
        return subscription
    async with conn.transaction():
        current = await db.lock_subscription(conn, namespace.id)
        if current is None or in_use <= current.max_seats_used:
            return current or subscription
        await db.insert_subscription_history(conn, current, CHANGE_TYPE_UPDATED)
        await db.raise_max_seats_used(conn, current.id, in_use)
    return await db.find_subscription(conn, namespace.id) or subscription


async def create(conn: Conn, namespace: NamespaceRow, params: Mapping[str, Any], today: date) -> dict[str, Any]:
    """namespace.create_gitlab_subscription(declared params); raises SubscriptionInvalid."""
    params = with_trial_start_default(params)
    async with conn.transaction():
        errors = create_errors(params, await db.find_subscription(conn, namespace.id) is not None)
        if errors:
            raise SubscriptionInvalid(errors)
        values = plan_create(params, await _plan_for(conn, params))
        # The unique index decides a race between two POSTs; the loser gets the same answer.
        if await db.insert_subscription(conn, namespace.id, values) is None:
            raise SubscriptionInvalid({"namespace_id": [TAKEN]})
        return await show(conn, namespace, today)


async def update(conn: Conn, namespace: NamespaceRow, params: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """subscription.update(declared params): history row, seat reset and the row in one transaction."""
    params = with_trial_start_default(params)
    async with conn.transaction():
        current = await db.lock_subscription(conn, namespace.id)
        if current is None:
            raise SubscriptionNotFound()
        plan = await _plan_for(conn, params)
        plan_name = (plan.name if plan else None) if "plan_code" in params else current.plan_name
        premium_term = None
        if returns_to_premium(current.plan_name, plan_name):
            premium_term = await db.find_last_term_on_plan(conn, current.id, PREMIUM)
        planned = plan_update(current, params, plan, plan_name, now, premium_term)
        values = planned.values
        if planned.reset_seats:
            values = replace(
                values,
                max_seats_used=await seats_in_use(conn, namespace, plan_name),
                max_seats_used_changed_at=now,
            )
        if planned.tracked_changed:
            await db.insert_subscription_history(conn, current, CHANGE_TYPE_UPDATED)
        await db.update_subscription(conn, current.id, values)
        return await show(conn, namespace, now.date())


_ALL_DIGITS = re.compile(r"\A\d+\Z", re.ASCII)  # Ruby's \d


async def find_namespace(conn: Conn, id_or_path: str, resource: str = "Namespace") -> NamespaceRow:
    """API::Helpers#find_namespace!: all digits is an id (past bigint, no namespace), anything else a
    full path; 404 "<resource> Not Found" when there is none."""
    namespace: NamespaceRow | None = None
    if _ALL_DIGITS.match(id_or_path):
        namespace_id = as_id(id_or_path)
        if namespace_id is not None:
            namespace = await db.find_namespace_by_id(conn, namespace_id)
    elif "\x00" not in id_or_path:  # PostgreSQL text cannot hold NUL; no route has one
        namespace = await db.find_namespace_by_full_path(conn, id_or_path)
    if namespace is None:
        raise Missing(resource)
    return namespace


async def authorize_owner(conn: Conn, namespace: NamespaceRow, user_id: int) -> None:
    """authorize! :admin_namespace for a non-admin: find_namespace! hides what the user cannot see
    (404); a visible namespace they do not own is refused (403)."""
    access = await db.namespace_access(conn, namespace.id, user_id)
    if not access.can_read:
        raise Missing("Namespace")
    if not access.is_owner:
        raise Denied()
