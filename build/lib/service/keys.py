"""Every typed application and request key, in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import asyncpg
from aiohttp import web
from redis.asyncio import Redis

from service.redis_pipe import PipelinedRedis

if TYPE_CHECKING:
    from service.auth import Consumer, Identity, VerifiedTokens
    from service.config import Settings
    from service.db.batch import BatchLoader
    from service.db.keys import AuthorizedKey
    from service.db.post_receive import PostReceiveContext, PushLookup
    from service.domain.app_settings import SettingsCache
    from service.domain.git_access import AccessDeps
    from service.domain.reference_counter import ReferenceCounter
    from service.domain.urls import InstanceUrls
    from service.domain.repository import RepositoryInspector
    from service.secrets import Secrets

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
SECRETS: web.AppKey[Secrets] = web.AppKey("secrets")
SHELL_TOKENS: web.AppKey[VerifiedTokens] = web.AppKey("shell_tokens")
KAS_TOKENS: web.AppKey[VerifiedTokens] = web.AppKey("kas_tokens")
DB_POOL = web.AppKey("db_pool", asyncpg.Pool)
REDIS = web.AppKey("redis", Redis)
# the auto-pipelining connection of the hot paths; REDIS (redis-py) serves everything else
REDIS_PIPE = web.AppKey("redis_pipe", PipelinedRedis)
APP_SETTINGS: web.AppKey[SettingsCache] = web.AppKey("app_settings")
REPOSITORIES: web.AppKey[RepositoryInspector] = web.AppKey("repositories")
URLS: web.AppKey[InstanceUrls] = web.AppKey("urls")
REFERENCE_COUNTER: web.AppKey[ReferenceCounter] = web.AppKey("reference_counter")
ACCESS_DEPS: web.AppKey[AccessDeps] = web.AppKey("access_deps")
# fingerprint -> authorized key, batched across concurrent requests
AUTHORIZED_KEYS: web.AppKey[BatchLoader[str, AuthorizedKey | None]] = web.AppKey("authorized_keys")
# post-receive lookups, batched across concurrent pushes
PUSH_CONTEXTS: web.AppKey[BatchLoader[PushLookup, PostReceiveContext]] = web.AppKey("push_contexts")
# route -> the consumer whose credentials it needs; filled by setup_routes, read by the middleware
ROUTE_CONSUMERS: web.AppKey[dict[Any, Consumer]] = web.AppKey("route_consumers")

IDENTITY: web.RequestKey[Identity] = web.RequestKey("identity")
