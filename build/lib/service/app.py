"""create_app(settings): all the wiring, nothing else (aio-libs style)."""

from __future__ import annotations

from aiohttp import web

from service import keys
from service.auth import KAS_JWT_ISSUER, SHELL_JWT_ISSUER, SHELL_JWT_LEEWAY, VerifiedTokens, auth_middleware
from service.config import Settings
from service.db import access as access_db
from service.db import keys as keys_db
from service.db import post_receive as post_receive_db
from service.db.batch import BatchLoader
from service.domain.app_settings import SettingsCache
from service.domain.git_access import AccessDeps
from service.domain.rate_limit import ShellOperationLimiter
from service.domain.reference_counter import ReferenceCounter
from service.domain.repository import RepositoryInspector
from service.domain.urls import InstanceUrls
from service.errors import error_middleware
from service.resources import pg_pool_ctx, redis_ctx, redis_pipe_ctx
from service.routes import setup_routes
from service.secrets import Secrets, load_secrets

# GitLab Shell sends small JSON bodies; CustomersDot and kas bodies are larger but bounded.
MAX_BODY_BYTES = 10 * 1024 * 1024


async def wire_services(app: web.Application) -> None:
    """Objects over the pool and the Redis connection, built once at start-up rather than per request."""
    pipe = app[keys.REDIS_PIPE]
    app[keys.REFERENCE_COUNTER] = ReferenceCounter(pipe)
    app[keys.ACCESS_DEPS] = AccessDeps(
        pool=app[keys.DB_POOL],
        redis=pipe,
        limiter=ShellOperationLimiter(pipe),
        inspector=app[keys.REPOSITORIES],
        settings=app[keys.SETTINGS],
        urls=app[keys.URLS],
        contexts=BatchLoader(app[keys.DB_POOL], access_db.git_access_contexts),
    )
    app[keys.AUTHORIZED_KEYS] = BatchLoader(app[keys.DB_POOL], keys_db.find_auth_keys_by_fingerprints)
    app[keys.PUSH_CONTEXTS] = BatchLoader(app[keys.DB_POOL], post_receive_db.post_receive_contexts)


def create_app(settings: Settings, secrets: Secrets | None = None) -> web.Application:
    app = web.Application(
        middlewares=[error_middleware, auth_middleware],
        client_max_size=MAX_BODY_BYTES,
    )
    app[keys.SETTINGS] = settings
    app[keys.SECRETS] = secrets or load_secrets(
        settings.shell_secret_file, settings.kas_secret_file, settings.db_key_base_file
    )
    secrets = app[keys.SECRETS]
    app[keys.SHELL_TOKENS] = VerifiedTokens(secrets.shell, SHELL_JWT_ISSUER, SHELL_JWT_LEEWAY)
    app[keys.KAS_TOKENS] = VerifiedTokens(secrets.kas, KAS_JWT_ISSUER, 0)
    app[keys.APP_SETTINGS] = SettingsCache(settings.settings_cache_seconds)
    app[keys.REPOSITORIES] = RepositoryInspector(settings.storages)
    app[keys.URLS] = InstanceUrls(settings.gitlab_url, settings.ssh_user, settings.ssh_host, settings.ssh_port)
    app.cleanup_ctx.append(pg_pool_ctx)
    app.cleanup_ctx.append(redis_ctx)
    app.cleanup_ctx.append(redis_pipe_ctx)
    app.on_startup.append(wire_services)
    setup_routes(app)
    return app
