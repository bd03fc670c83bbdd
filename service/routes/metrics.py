"""GET /-/metrics: Prometheus metrics of every worker (service/metrics.py)."""

from __future__ import annotations

from aiohttp import web

from service import app_keys
from service.errors import not_found
from service.metrics import exposition

# auth.PUBLIC: like GitLab's MetricsController, the allow-list of addresses (monitoring.ip_whitelist)
# or the monitoring token decides, and anyone else is told the page does not exist.
routes = web.RouteTableDef()

METRICS_PATH = "/-/metrics"


@routes.get(METRICS_PATH)
async def metrics(request: web.Request) -> web.Response:
    """GET /-/metrics (GitLab's MetricsController#index): the Prometheus text format."""
    if not request.app[app_keys.METRICS_ACCESS].allows(request.remote, request.headers):
        raise not_found()
    body, content_type = exposition()
    response = web.Response(body=body)
    response.headers["Content-Type"] = content_type  # with its version parameter, as Prometheus wants it
    return response
