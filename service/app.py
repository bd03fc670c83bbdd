"""create_app(settings): all the wiring, nothing else (aio-libs style)."""

from __future__ import annotations

from aiohttp import web

from service import keys
from service.auth import MAX_BODY, KAS_JWT_ISSUER, SHELL_JWT_ISSUER, SHELL_JWT_LEEWAY, VerifiedTokens, auth_middleware
from service.config import Settings
from service.db import access as access_db
from service.db import keys as keys_db
from service.db import post_receive as post_receive_db
from service.db import push_jobs as push_jobs_db
from service.db.batch import BatchLoader
from service.domain.app_settings import SettingsCache
from service.domain.git_access import AccessDeps
from service.domain.repository import RepositoryInspector
from service.domain.urls import InstanceUrls
from service.errors import error_middleware
from service.metrics import (
    MeteredLimiter,
    MeteredReferenceCounter,
    MetricsAccess,
    count_redis_errors,
    observe_middleware,
    sample_pool_ctx,
)
from service.domain.token_box import TokenBox
from service.jobs import jobs_ctx
from service.resources import pg_pool_ctx, redis_ctx
from service.routes import setup_routes
from service.secrets import Secrets, load_secrets
from service.unavailable import OutageLog

# aiohttp's own cap; each route's consumer has a lower or equal one (service/auth.py, service/params.py).
MAX_BODY_BYTES = MAX_BODY


async def wire_services(app: web.Application) -> None:
    """Objects over the pool and the Redis connection, built once at start-up rather than per request."""
    redis = app[keys.REDIS]
    count_redis_errors(redis)
    # metered subclasses: the metrics of these outcomes are recorded here, not in the handlers
    app[keys.REFERENCE_COUNTER] = MeteredReferenceCounter(redis)
    app[keys.ACCESS_DEPS] = AccessDeps(
        pool=app[keys.DB_POOL],
        redis=redis,
        limiter=MeteredLimiter(redis),
        inspector=app[keys.REPOSITORIES],
        settings=app[keys.SETTINGS],
        urls=app[keys.URLS],
        contexts=BatchLoader(app[keys.DB_POOL], access_db.git_access_contexts),
    )
    app[keys.AUTHORIZED_KEYS] = BatchLoader(app[keys.DB_POOL], keys_db.find_auth_keys_by_fingerprints)
    app[keys.PUSH_CONTEXTS] = BatchLoader(app[keys.DB_POOL], post_receive_db.post_receive_contexts)
    app[keys.POST_RECEIVE_JOBS] = BatchLoader(app[keys.DB_POOL], push_jobs_db.enqueue_post_receive_jobs)


def create_app(settings: Settings, secrets: Secrets | None = None) -> web.Application:
    app = web.Application(
        # observe first: the correlation id covers every log line, and the metrics see the final status
        middlewares=[observe_middleware, error_middleware, auth_middleware],
        client_max_size=MAX_BODY_BYTES,
    )
    app[keys.SETTINGS] = settings
    app[keys.OUTAGES] = OutageLog()
    app[keys.SECRETS] = secrets or load_secrets(
        settings.shell_secret_file, settings.kas_secret_file, settings.db_key_base_file
    )
    secrets = app[keys.SECRETS]
    app[keys.TOKEN_BOX] = TokenBox(secrets.db_key_base)
    app[keys.SHELL_TOKENS] = VerifiedTokens(secrets.shell, SHELL_JWT_ISSUER, SHELL_JWT_LEEWAY)
    # kas always sends aud (and exp); Gitlab::Kas checks exp without leeway
    app[keys.KAS_TOKENS] = VerifiedTokens(secrets.kas, KAS_JWT_ISSUER, 0, required=("iss", "exp", "aud"))
    app[keys.APP_SETTINGS] = SettingsCache(settings.settings_cache_seconds)
    app[keys.REPOSITORIES] = RepositoryInspector(settings.storages)
    app[keys.METRICS_ACCESS] = MetricsAccess.from_settings(
        settings.monitoring_ip_whitelist, settings.monitoring_token_file
    )
    app[keys.URLS] = InstanceUrls(settings.gitlab_url, settings.ssh_user, settings.ssh_host, settings.ssh_port)
    app.cleanup_ctx.append(pg_pool_ctx)
    app.cleanup_ctx.append(redis_ctx)
    app.cleanup_ctx.append(sample_pool_ctx)
    app.cleanup_ctx.append(jobs_ctx)  # after the pool: the in-process job worker uses it
    app.on_startup.append(wire_services)
    setup_routes(app)
    return app
