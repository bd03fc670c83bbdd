"""The one middleware every request goes through: its correlation id and metrics, the errors it
raises rendered in GitLab's shapes, and its route's consumer checked before the handler runs.

Three concerns, one coroutine: aiohttp runs each middleware as a coroutine of its own per request,
plus one of its own (_fix_request_current_app) whenever there is any, and on the hot paths those
frames were a measurable share of a request (bench/run.py's "framework floor" table). The
concerns stay apart as plain functions in their modules: auth.identify_from_headers, errors.error_response,
metrics.record_request. The route and the application are read here once and handed to them:
each `request.app` or `request.match_info.route` is a chain of Python property calls, and a
request's cost is counted in the Python calls it makes (bench/instructions.py).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from aiohttp import web

from service import app_keys
from service.auth import identify_from_headers
from service.errors import error_response, internal_error, rendered
from service.logs import CORRELATION_ID, REQUEST_ID_HEADER
from service.metrics import accepted_correlation_id, new_correlation_id, record_request
from service.params import release_large_body

log = logging.getLogger("gitlab_internal_api")


@web.middleware
async def request_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    correlation_id = accepted_correlation_id(request.headers.get(REQUEST_ID_HEADER)) or new_correlation_id()
    token = CORRELATION_ID.set(correlation_id)
    started = time.perf_counter()
    match_info = request.match_info
    route = match_info.route
    try:
        try:
            undecided = identify_from_headers(request, match_info.current_app, route)
            if undecided is not None:  # the headers did not decide: the consumer's full check
                request[app_keys.IDENTITY] = await undecided.check(request)
            response: web.StreamResponse = await handler(request)
        except Exception as exc:  # noqa: BLE001 (error_response renders it or raises it again)
            try:
                response = await error_response(request, exc)
            except web.HTTPException:
                raise
            except Exception:
                # A failure while rendering the failure: still GitLab's JSON 500, counted and logged.
                log.exception("could not render the error of %s %s", request.method, request.path)
                response = rendered(internal_error())
        finally:
            if request.body_exists:
                release_large_body(request)  # the connection keeps the request until its next one
    except web.HTTPException as exc:  # one error_response left to aiohttp (not an error status)
        exc.headers[REQUEST_ID_HEADER] = correlation_id
        record_request(route, request.method, exc.status, time.perf_counter() - started)
        raise
    finally:
        CORRELATION_ID.reset(token)
    if not response.prepared:
        response.headers[REQUEST_ID_HEADER] = correlation_id
    record_request(route, request.method, response.status, time.perf_counter() - started)
    return response
