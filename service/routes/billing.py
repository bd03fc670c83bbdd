"""CustomersDot endpoints (GitLab EE, GitLab.com).

Subscriptions: ee/lib/ee/api/namespaces.rb (later ee/lib/api/gitlab_subscriptions/subscriptions.rb);
compute minutes: ee/lib/api/ci/minutes.rb; upcoming reconciliations:
ee/lib/api/internal/upcoming_reconciliations.rb. Handlers parse, resolve the namespace and pick
GitLab's envelope; the rules and transactions live in service/domain/{subscriptions,minutes,reconciliations}.py.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

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
from service import auth, keys
from service.db import billing as billing_db
from service.db.billing import NamespaceRow
from service.db.rows import Conn
from service.domain import minutes, reconciliations, subscriptions
from service.errors import (
    bad_request,
    forbidden,
    json_response,
    not_found,
    render_api_error,
    validation_error,
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
    conn: Conn, request: web.Request, key: str = "id", resource: str = "Namespace"
) -> NamespaceRow:
    namespace = await billing_db.find_namespace(conn, request.match_info[key])
    if namespace is None:
        raise not_found(resource)
    return namespace


# --- subscriptions ------------------------------------------------------------------------------


@routes.post(SUBSCRIPTION_PATH)
async def create_subscription(request: web.Request) -> web.Response:
    """POST /namespaces/:id/gitlab_subscription: 201 with the entity (Grape's POST default)."""
    declared = load(SubscriptionCreateIn(), await params(request))
    async with request.app[keys.DB_POOL].acquire() as conn:
        namespace = await _namespace(conn, request)
        try:
            view = await subscriptions.create(conn, namespace, declared, _today())
        except subscriptions.SubscriptionInvalid as exc:
            raise validation_error(exc.errors) from None
    return json_response(SubscriptionOut().dump(view), 201)


@routes.put(SUBSCRIPTION_PATH)
async def update_subscription(request: web.Request) -> web.Response:
    """PUT /namespaces/:id/gitlab_subscription."""
    declared = load(SubscriptionIn(), await params(request))
    async with request.app[keys.DB_POOL].acquire() as conn:
        namespace = await _namespace(conn, request)
        try:
            view = await subscriptions.update(conn, namespace, declared, _now())
        except subscriptions.SubscriptionNotFound:
            raise not_found("GitlabSubscription") from None
        except subscriptions.SubscriptionInvalid as exc:
            raise validation_error(exc.errors) from None
    return json_response(SubscriptionOut().dump(view))


@owner_routes.get(SUBSCRIPTION_PATH)
async def show_subscription(request: web.Request) -> web.Response:
    """GET /namespaces/:id/gitlab_subscription: admins and the namespace's owners."""
    identity = request[keys.IDENTITY]
    async with request.app[keys.DB_POOL].acquire() as conn:
        namespace = await _namespace(conn, request)
        if not identity.is_admin:
            assert identity.user_id is not None
            access = await billing_db.namespace_access(conn, namespace.id, identity.user_id)
            # find_namespace! hides what the user cannot see (404); authorize! :admin_namespace
            # refuses a visible namespace they do not own (403).
            if not access.can_read:
                raise not_found("Namespace")
            if not access.is_owner:
                raise forbidden()
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
    async with request.app[keys.DB_POOL].acquire() as conn:
        namespace = await _namespace(conn, request)
        try:
            saved = await minutes.create_packs(conn, namespace, packs, message)
        except minutes.PacksInvalid as exc:
            raise bad_request(exc.message) from None
    body = PackOut().dump(saved[0]) if single else PackOut(many=True).dump(saved)
    return json_response(body, 201)


@routes.patch("/api/v4/namespaces/{id}/minutes/move/{target_id}")
async def move_minutes_packs(request: web.Request) -> web.Response:
    """PATCH /namespaces/:id/minutes/move/:target_id: 202 {"message": "202 Accepted"} (accepted!)."""
    async with request.app[keys.DB_POOL].acquire() as conn:
        namespace = await _namespace(conn, request)
        target = await _namespace(conn, request, "target_id", "Target namespace")
        try:
            await minutes.move_packs(conn, namespace, target)
        except minutes.MoveRejected as exc:
            raise bad_request(exc.message) from None
    return json_response({"message": "202 Accepted"}, 202)


# --- upcoming reconciliations -------------------------------------------------------------------


@gitlab_com_routes.put("/api/v4/internal/upcoming_reconciliations")
async def update_upcoming_reconciliations(request: web.Request) -> web.Response:
    """PUT /internal/upcoming_reconciliations: upsert by namespace_id."""
    declared = load(ReconciliationsIn(), await params(request))
    items = [reconciliations.ReconciliationRequest(**item) for item in declared["upcoming_reconciliations"]]
    async with request.app[keys.DB_POOL].acquire() as conn:
        try:
            await reconciliations.upsert(conn, items)
        except reconciliations.ReconciliationsInvalid as exc:
            raise render_api_error({"error": exc.message}, 400) from None
    # The Grape block ends with `status 200`, whose value becomes the body: the JSON `200`.
    return json_response(200)


@gitlab_com_routes.delete("/api/v4/internal/upcoming_reconciliations")
async def delete_upcoming_reconciliation(request: web.Request) -> web.Response:
    """DELETE /internal/upcoming_reconciliations?namespace_id=: 204, or 404 "404 Not Found"."""
    declared = load(ReconciliationDeleteIn(), await params(request))
    async with request.app[keys.DB_POOL].acquire() as conn:
        if not await reconciliations.delete(conn, declared["namespace_id"]):
            raise not_found()
    return web.Response(status=204)
