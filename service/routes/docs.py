"""This service's own description of itself: the OpenAPI document (service/openapi.py)."""

from __future__ import annotations

from aiohttp import web

from service.errors import json_response
from service.openapi import OPENAPI_PATH, document

# auth.ADMIN: the document names every internal route and its credentials; administrators only.
routes = web.RouteTableDef()


@routes.get(OPENAPI_PATH)
async def openapi_document(request: web.Request) -> web.Response:
    """GET /internal/openapi.json (this service's own): the OpenAPI 3.1 document of every route."""
    return json_response(document(request.app))
