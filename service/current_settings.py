"""The instance settings as the web layer reads them: the per-process cache over the pool.

The domain never sees the application: handlers and the auth middleware call this and pass the
AppSettings (or the cache and the pool) down as arguments.
"""

from __future__ import annotations

from aiohttp import web

from service import app_keys
from service.domain.app_settings import AppSettings


async def current_settings(app: web.Application) -> AppSettings:
    return await app[app_keys.APP_SETTINGS].get(app[app_keys.DB_POOL])
