"""The one middleware every request goes through: its correlation id and metrics, the errors it
raises rendered in GitLab's shapes, and its route's consumer checked before the handler runs.

Three concerns, one coroutine: aiohttp runs each middleware as a coroutine of its own per request,
plus one of its own (_fix_request_current_app) whenever there is any, and on the hot paths those
frames were a measurable share of a request (bench/run.py's "framework floor" table). The
concerns stay apart as plain functions in their modules: auth.authenticated, errors.error_response,
metrics.record_request.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from aiohttp import web

from service.auth import authenticated
from service.errors import error_response, internal_error, rendered
from service.logs import CORRELATION_ID, REQUEST_ID_HEADER
from service.metrics import accepted_correlation_id, new_correlation_id, record_request

log = logging.getLogger("gitlab_internal_api")


@web.middleware
async def request_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    correlation_id = accepted_correlation_id(request.headers.get(REQUEST_ID_HEADER)) or new_correlation_id()
    token = CORRELATION_ID.set(correlation_id)
    started = time.perf_counter()
    try:
        try:
            response = await authenticated(request, handler)
        except Exception as exc:  # noqa: BLE001 (error_response renders it or raises it again)
            try:
                response = await error_response(request, exc)
            except web.HTTPException:
                raise
            except Exception:
                # A failure while rendering the failure: still GitLab's JSON 500, counted and logged.
                log.exception("could not render the error of %s %s", request.method, request.path)
                response = rendered(internal_error())
    except web.HTTPException as exc:  # one error_response left to aiohttp (not an error status)
        exc.headers[REQUEST_ID_HEADER] = correlation_id
        record_request(request, exc.status, time.perf_counter() - started)
        raise
    finally:
        CORRELATION_ID.reset(token)
    if not response.prepared:
        response.headers[REQUEST_ID_HEADER] = correlation_id
    record_request(request, response.status, time.perf_counter() - started)
    return response
