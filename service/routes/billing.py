"""CustomersDot endpoints (GitLab EE, GitLab.com).

Subscriptions: ee/lib/ee/api/namespaces.rb (later ee/lib/api/gitlab_subscriptions/subscriptions.rb);
compute minutes: ee/lib/api/ci/minutes.rb; upcoming reconciliations:
ee/lib/api/internal/upcoming_reconciliations.rb. Handlers parse, resolve the namespace and pick
GitLab's envelope; the rules and transactions live in service/domain/{subscriptions,minutes,reconciliations}.py.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import asyncpg
from aiohttp import web

from schemas.billing import (
    FlatPackIn,
    PackOut,
    PacksIn,
    ReconciliationDeleteIn,
    ReconciliationsIn,
    SubscriptionCreateIn,
    SubscriptionIn,
    SubscriptionOut,
)
from service import auth, app_keys
from service.domain import minutes, reconciliations, subscriptions
from service.errors import (
    accepted,
    json_response,
    no_content,
    not_found,
)
from service.params import load, params

# authenticated_as_admin!
routes = web.RouteTableDef()
# any user; the handler allows admins and the namespace's owners (authorize! :admin_namespace)
owner_routes = web.RouteTableDef()
# forbidden!('This API is gitlab.com only!') before authenticated_as_admin!
gitlab_com_routes = web.RouteTableDef()

ROUTE_TABLES: list[tuple[web.RouteTableDef, auth.Consumer]] = [
    (routes, auth.ADMIN),
    (owner_routes, auth.USER),
    (gitlab_com_routes, auth.ADMIN_GITLAB_COM),
]

SUBSCRIPTION_PATH = "/api/v4/namespaces/{id}/gitlab_subscription"
_FLAT_PACK_KEYS = ("number_of_minutes", "expires_at", "purchase_xid")


def _now() -> datetime:
    return datetime.now(UTC)


def _today() -> date:
    # GitLab.com runs in UTC: Date.current there is the UTC date.
    return _now().date()


async def _namespace(
    conn: asyncpg.pool.PoolConnectionProxy, request: web.Request, key: str = "id", resource: str = "Namespace"
) -> subscriptions.NamespaceRow:
    return await subscriptions.find_namespace(conn, request.match_info[key], resource)


# --- subscriptions ------------------------------------------------------------------------------


@routes.post(SUBSCRIPTION_PATH)
async def create_subscription(request: web.Request) -> web.Response:
    """POST /namespaces/:id/gitlab_subscription: 201 with the entity (Grape's POST default)."""
    declared = load(SubscriptionCreateIn(), await params(request))
    async with request.app[app_keys.DB_POOL].acquire() as conn:
        namespace = await _namespace(conn, request)
        view = await subscriptions.create(conn, namespace, declared, _today())
    return json_response(SubscriptionOut().dump(view), 201)


@routes.put(SUBSCRIPTION_PATH)
async def update_subscription(request: web.Request) -> web.Response:
    """PUT /namespaces/:id/gitlab_subscription."""
    declared = load(SubscriptionIn(), await params(request))
    async with request.app[app_keys.DB_POOL].acquire() as conn:
        namespace = await _namespace(conn, request)
        view = await subscriptions.update(conn, namespace, declared, _now())
    return json_response(SubscriptionOut().dump(view))


@owner_routes.get(SUBSCRIPTION_PATH)
async def show_subscription(request: web.Request) -> web.Response:
    """GET /namespaces/:id/gitlab_subscription: admins and the namespace's owners."""
    identity = request[app_keys.IDENTITY]
    async with request.app[app_keys.DB_POOL].acquire() as conn:
        namespace = await _namespace(conn, request)
        if not identity.is_admin:
            assert identity.user_id is not None
            await subscriptions.authorize_owner(conn, namespace, identity.user_id)
        view = await subscriptions.show(conn, namespace, _today(), record_peak=True)
    return json_response(SubscriptionOut().dump(view))


# --- compute minutes ----------------------------------------------------------------------------


@routes.post("/api/v4/namespaces/{id}/minutes")
async def create_minutes_packs(request: web.Request) -> web.Response:
    """POST /namespaces/:id/minutes: `packs` -> an array; the first API's single flat pack -> one object."""
    raw = await params(request)
    single = "packs" not in raw and any(key in raw for key in _FLAT_PACK_KEYS)
    if single:
        packs = [minutes.PackRequest(**load(FlatPackIn(), raw))]
        message = minutes.UNABLE_TO_SAVE_PACK
    else:
        packs = [minutes.PackRequest(**pack) for pack in load(PacksIn(), raw)["packs"]]
        message = minutes.UNABLE_TO_SAVE_PACKS
    async with request.app[app_keys.DB_POOL].acquire() as conn:
        namespace = await _namespace(conn, request)
        saved = await minutes.create_packs(conn, namespace, packs, message)
    body = PackOut().dump(saved[0]) if single else PackOut(many=True).dump(saved)
    return json_response(body, 201)


@routes.patch("/api/v4/namespaces/{id}/minutes/move/{target_id}")
async def move_minutes_packs(request: web.Request) -> web.Response:
    """PATCH /namespaces/:id/minutes/move/:target_id: 202 {"message": "202 Accepted"} (accepted!)."""
    async with request.app[app_keys.DB_POOL].acquire() as conn:
        namespace = await _namespace(conn, request)
        target = await _namespace(conn, request, "target_id", "Target namespace")
        await minutes.move_packs(conn, namespace, target)
    return accepted()


# --- upcoming reconciliations -------------------------------------------------------------------


@gitlab_com_routes.put("/api/v4/internal/upcoming_reconciliations")
async def update_upcoming_reconciliations(request: web.Request) -> web.Response:
    """PUT /internal/upcoming_reconciliations: upsert by namespace_id."""
    declared = load(ReconciliationsIn(), await params(request))
    items = [reconciliations.ReconciliationRequest(**item) for item in declared["upcoming_reconciliations"]]
    async with request.app[app_keys.DB_POOL].acquire() as conn:
        await reconciliations.upsert(conn, items)
    # The Grape block ends with `status 200`, whose value becomes the body: the JSON `200`.
    return json_response(200)


@gitlab_com_routes.delete("/api/v4/internal/upcoming_reconciliations")
async def delete_upcoming_reconciliation(request: web.Request) -> web.Response:
    """DELETE /internal/upcoming_reconciliations?namespace_id=: 204, or 404 "404 Not Found"."""
    declared = load(ReconciliationDeleteIn(), await params(request))
    async with request.app[app_keys.DB_POOL].acquire() as conn:
        if not await reconciliations.delete(conn, declared["namespace_id"]):
            raise not_found()
    return no_content()
