"""Every typed application and request key, in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from service.redis_store import RedisStore
from service.unavailable import OutageLog

if TYPE_CHECKING:
    from service.auth import Consumer, Identity, VerifiedTokens
    from service.config import Settings
    from service.db.batch import BatchLoader
    from service.db.rows import Pool
    from service.db.ssh_keys import AuthorizedKey
    from service.db.post_receive import PostReceiveContext, PushLookup
    from service.db.push_jobs import JobRequest
    from service.domain.agents import AgentContexts, AgentTokens
    from service.domain.app_settings import SettingsCache
    from service.domain.git_access import AccessDeps
    from service.domain.reference_counter import ReferenceCounter
    from service.domain.urls import InstanceUrls
    from service.domain.repository import RepositoryInspector
    from service.metrics import MetricsAccess
    from service.domain.token_box import TokenBox
    from service.domain.webhooks import DeliveryConfig
    from service.webhook_client import WebhookClient
    from service.rendered import RenderedBodies
    from service.secrets import Secrets

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
SECRETS: web.AppKey[Secrets] = web.AppKey("secrets")
# seals and opens the webhook tokens stored in the database (a key derived from db_key_base)
TOKEN_BOX: web.AppKey[TokenBox] = web.AppKey("token_box")
# how webhook deliveries are sent, and the HTTP client of the admin API's test deliveries
DELIVERY_CONFIG: web.AppKey[DeliveryConfig] = web.AppKey("delivery_config")
WEBHOOK_CLIENT: web.AppKey[WebhookClient] = web.AppKey("webhook_client")
SHELL_TOKENS: web.AppKey[VerifiedTokens] = web.AppKey("shell_tokens")
KAS_TOKENS: web.AppKey[VerifiedTokens] = web.AppKey("kas_tokens")
DB_POOL: web.AppKey[Pool] = web.AppKey("db_pool")
# which backends are down now, so an outage is logged once, not once per request
OUTAGES = web.AppKey("outages", OutageLog)
# the one Redis abstraction (standalone, Sentinel or Cluster): service/redis_store.py
REDIS = web.AppKey("redis", RedisStore)
APP_SETTINGS: web.AppKey[SettingsCache] = web.AppKey("app_settings")
REPOSITORIES: web.AppKey[RepositoryInspector] = web.AppKey("repositories")
URLS: web.AppKey[InstanceUrls] = web.AppKey("urls")
REFERENCE_COUNTER: web.AppKey[ReferenceCounter] = web.AppKey("reference_counter")
ACCESS_DEPS: web.AppKey[AccessDeps] = web.AppKey("access_deps")
# fingerprint -> authorized key, batched across concurrent requests
AUTHORIZED_KEYS: web.AppKey[BatchLoader[str, AuthorizedKey | None]] = web.AppKey("authorized_keys")
# their answers' JSON, rendered once per remembered row (service/rendered.py)
AUTHORIZED_KEY_BODIES: web.AppKey[RenderedBodies[AuthorizedKey]] = web.AppKey("authorized_key_bodies")
# post-receive lookups, batched across concurrent pushes
PUSH_CONTEXTS: web.AppKey[BatchLoader[PushLookup, PostReceiveContext]] = web.AppKey("push_contexts")
# PostReceive jobs queued by post_receive, one INSERT for concurrent pushes (service/jobs.py)
POST_RECEIVE_JOBS: web.AppKey[BatchLoader[JobRequest, bool]] = web.AppKey("post_receive_jobs")
AGENT_TOKENS: web.AppKey[AgentTokens] = web.AppKey("agent_tokens")
AGENT_CONTEXTS: web.AppKey[AgentContexts] = web.AppKey("agent_contexts")
# route -> the consumer whose credentials it needs; filled by setup_routes, read by the middleware
ROUTE_CONSUMERS: web.AppKey[dict[Any, Consumer]] = web.AppKey("route_consumers")
# who may read /-/metrics (the monitoring allow-list and token)
METRICS_ACCESS: web.AppKey[MetricsAccess] = web.AppKey("metrics_access")

IDENTITY: web.RequestKey[Identity] = web.RequestKey("identity")
# the route's consumer (service/auth.py), kept for its body limit (service/params.py)
CONSUMER: web.RequestKey[Consumer] = web.RequestKey("consumer")
