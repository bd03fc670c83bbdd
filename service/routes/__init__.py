"""Route registration: every route is added together with the consumer whose credentials it needs."""

from __future__ import annotations

from aiohttp import hdrs, web

from service import auth, app_keys
from service.routes import admin, billing, docs, health, kas, metrics, shell

# (route table, consumer): the only way a route gets into the application.
ROUTE_TABLES: list[tuple[web.RouteTableDef, auth.Consumer]] = [
    (health.routes, auth.PUBLIC),
    (metrics.routes, auth.MONITORING),
    (shell.routes, auth.SHELL),
    (shell.error_tracking_routes, auth.ERROR_TRACKING),
    *kas.ROUTE_TABLES,
    *admin.ROUTE_TABLES,
    *billing.ROUTE_TABLES,
    (docs.routes, auth.ADMIN),
]


def setup_routes(app: web.Application) -> None:
    consumers: dict[object, auth.Consumer] = {}
    for table, consumer in ROUTE_TABLES:
        for definition in table:
            assert isinstance(definition, web.RouteDef)
            route = app.router.add_route(definition.method, definition.path, definition.handler)
            consumers[route] = consumer
            if definition.kwargs.get("allow_head"):
                # A GET route that says so answers HEAD too (a load balancer's health check may
                # send it): aiohttp sends the GET's headers without its body. Not every GET route,
                # as Grape does: this service's GET two_factor_recovery_codes makes new codes.
                assert definition.method == hdrs.METH_GET
                head = app.router.add_route(hdrs.METH_HEAD, definition.path, definition.handler)
                consumers[head] = consumer
    app[app_keys.ROUTE_CONSUMERS] = consumers
