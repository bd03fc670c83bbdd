"""GET /-/metrics: Prometheus metrics of every worker (service/metrics.py)."""

from __future__ import annotations

from aiohttp import web

from service.metrics import exposition

routes = web.RouteTableDef()  # auth.MONITORING

METRICS_PATH = "/-/metrics"


@routes.get(METRICS_PATH)
async def metrics(request: web.Request) -> web.Response:
    """GET /-/metrics (GitLab's MetricsController#index): the Prometheus text format."""
    body, content_type = exposition()
    response = web.Response(body=body)
    response.headers["Content-Type"] = content_type  # with its version parameter, as Prometheus wants it
    return response
