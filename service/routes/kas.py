"""Routes of this module; see ROUTE_TABLES."""

from __future__ import annotations

from aiohttp import web

from service import auth

routes = web.RouteTableDef()

ROUTE_TABLES: list[tuple[web.RouteTableDef, auth.Consumer]] = [(routes, auth.SHELL)]
