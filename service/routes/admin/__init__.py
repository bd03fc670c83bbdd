"""The GitLab-v4-compatible admin API, by resource; ROUTE_TABLES pairs each table with its consumer.

ADMIN routes need an administrator's token; USER routes any active user's token (api scope, or
read_api on GET); PUBLIC routes answer without a token, as GitLab's do.
"""

from __future__ import annotations

from aiohttp import web

from service import auth
from service.routes.admin import groups, hooks, instance, project_resources, projects, tokens, users

ROUTE_TABLES: list[tuple[web.RouteTableDef, auth.Consumer]] = [
    (users.user_routes, auth.USER),
    (users.admin_routes, auth.ADMIN),
    (tokens.user_routes, auth.USER),
    (tokens.admin_routes, auth.ADMIN),
    (groups.admin_routes, auth.ADMIN),
    (projects.admin_routes, auth.ADMIN),
    (project_resources.admin_routes, auth.ADMIN),
    (instance.public_routes, auth.PUBLIC),
    (instance.admin_routes, auth.ADMIN),
    (hooks.user_routes, auth.USER),
    (hooks.admin_routes, auth.ADMIN),
]
