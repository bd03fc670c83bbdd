"""create_app(settings): all the wiring, nothing else (aio-libs style)."""

from __future__ import annotations

import orjson
from aiohttp import web

from service import app_keys
from service.auth import MAX_BODY, KAS_JWT_AUDIENCE, KAS_JWT_ISSUER, SHELL_JWT_ISSUER, SHELL_JWT_LEEWAY, VerifiedTokens
from service.config import Settings
from service.db import access as access_db
from service.db import agents as agents_db
from service.db import ssh_keys as ssh_keys_db
from service.db import post_receive as post_receive_db
from service.db import push_jobs as push_jobs_db
from service.db.batch import BatchLoader
from service.domain.app_settings import SettingsCache
from service.domain.git_access import AccessDeps, settled_project
from service.domain.repository import RepositoryInspector
from service.domain.ssh_keys import authorized_key_answer
from service.domain.urls import InstanceUrls
from service.metrics import (
    MeteredLimiter,
    MeteredReferenceCounter,
    MetricsAccess,
    count_redis_errors,
    metrics_publisher_ctx,
)
from service.domain.token_box import TokenBox
from service.domain.webhooks import DeliveryConfig
from service.jobs import jobs_ctx
from service.middleware import request_middleware
from service.rendered import RenderedBodies
from service.resources import pg_pool_ctx, redis_ctx, webhook_client_ctx
from service.routes import setup_routes
from service.secrets import Secrets, load_secrets
from service.unavailable import OutageLog

async def wire_services(app: web.Application) -> None:
    """Objects over the pool and the Redis connection, built once at start-up rather than per request."""
    redis = app[app_keys.REDIS]
    count_redis_errors(redis)
    pool, remember_seconds = app[app_keys.DB_POOL], app[app_keys.SETTINGS].lookup_cache_seconds
    # metered subclasses: the metrics of these outcomes are recorded here, not in the handlers
    app[app_keys.REFERENCE_COUNTER] = MeteredReferenceCounter(redis)
    app[app_keys.ACCESS_DEPS] = AccessDeps(
        pool=pool,
        redis=redis,
        limiter=MeteredLimiter(redis),
        inspector=app[app_keys.REPOSITORIES],
        settings=app[app_keys.SETTINGS],
        urls=app[app_keys.URLS],
        # Not a missing project (the push being checked may create it) nor one without a default
        # branch (its first push sets one, and the branch rules compare against it).
        contexts=BatchLoader(
            pool, access_db.git_access_contexts, remember_seconds=remember_seconds, remember=settled_project
        ),
    )
    # Unknown keys are remembered too: sshd asks about every key a client offers.
    app[app_keys.AUTHORIZED_KEYS] = BatchLoader(
        pool, ssh_keys_db.find_auth_keys_by_fingerprints, remember_seconds=remember_seconds
    )
    host = app[app_keys.URLS].host
    app[app_keys.AUTHORIZED_KEY_BODIES] = RenderedBodies(lambda found: orjson.dumps(authorized_key_answer(found, host)))
    app[app_keys.PUSH_CONTEXTS] = BatchLoader(
        pool, post_receive_db.post_receive_contexts, remember_seconds=remember_seconds, remember=settled_project
    )
    app[app_keys.POST_RECEIVE_JOBS] = BatchLoader(pool, push_jobs_db.enqueue_post_receive_jobs, one_at_a_time=True)
    # kas: every agent's requests carry its token, and most ask about the agent itself
    app[app_keys.AGENT_TOKENS] = BatchLoader(pool, agents_db.find_active_tokens, remember_seconds=remember_seconds)
    app[app_keys.AGENT_CONTEXTS] = BatchLoader(pool, agents_db.find_agent_contexts, remember_seconds=remember_seconds)


def create_app(settings: Settings, secrets: Secrets | None = None) -> web.Application:
    app = web.Application(
        middlewares=[request_middleware],
        # aiohttp's own cap; each route's consumer has a lower or equal one (auth.py, params.py)
        client_max_size=MAX_BODY,
    )
    app[app_keys.SETTINGS] = settings
    app[app_keys.OUTAGES] = OutageLog()
    app[app_keys.SECRETS] = secrets or load_secrets(
        settings.shell_secret_file, settings.kas_secret_file, settings.db_key_base_file
    )
    secrets = app[app_keys.SECRETS]
    app[app_keys.TOKEN_BOX] = TokenBox(secrets.db_key_base)
    app[app_keys.DELIVERY_CONFIG] = DeliveryConfig.from_settings(settings, app[app_keys.TOKEN_BOX])
    app[app_keys.SHELL_TOKENS] = VerifiedTokens(secrets.shell, SHELL_JWT_ISSUER, SHELL_JWT_LEEWAY)
    # kas always sends aud (and exp); Gitlab::Kas checks exp without leeway
    app[app_keys.KAS_TOKENS] = VerifiedTokens(
        secrets.kas, KAS_JWT_ISSUER, 0, required=("iss", "exp", "aud"), audience=KAS_JWT_AUDIENCE
    )
    app[app_keys.APP_SETTINGS] = SettingsCache(settings.settings_cache_seconds)
    app[app_keys.REPOSITORIES] = RepositoryInspector(settings.storages, settings.git_timeout)
    app[app_keys.METRICS_ACCESS] = MetricsAccess.from_settings(
        settings.monitoring_ip_whitelist, settings.monitoring_token_file
    )
    app[app_keys.URLS] = InstanceUrls(settings.gitlab_url, settings.ssh_user, settings.ssh_host, settings.ssh_port)
    app.cleanup_ctx.append(pg_pool_ctx)
    app.cleanup_ctx.append(redis_ctx)
    app.cleanup_ctx.append(webhook_client_ctx)
    app.cleanup_ctx.append(metrics_publisher_ctx)
    app.cleanup_ctx.append(jobs_ctx)  # after the pool: the in-process job worker uses it
    app.on_startup.append(wire_services)
    setup_routes(app)
    return app
