"""Users, their SSH keys and the key lookup (GitLab lib/api/users.rb, lib/api/keys.rb)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from schemas.admin import KeyCreateIn, KeyLookupIn, PageIn, UserCreateIn, UserDeleteIn, UserListIn, UserUpdateIn
from service.domain.admin import entities, validation
from service.domain.admin import users as users_domain
from service.domain.admin.users import AdminUser, KeyRow, NewUser
from service.errors import json_response, no_content
from service.routes.admin.common import (
    actor_id,
    app_settings,
    created,
    identity,
    int_param,
    load_params,
    page,
    paginated,
    pool,
    require_one_of,
    urls,
)

admin_routes = web.RouteTableDef()  # auth.ADMIN
user_routes = web.RouteTableDef()  # auth.USER: any user with an api-scoped token


def _admin_body(request: web.Request, found: AdminUser) -> dict[str, object]:
    return entities.user_with_admin(found, urls(request))


def _user_body(request: web.Request, found: AdminUser, others: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    """users.rb: UserWithAdmin for an administrator, the route's own entity (`others`) for anybody else."""
    return (entities.user_with_admin if identity(request).is_admin else others)(found, urls(request))


@user_routes.get("/api/v4/users")
async def list_users(request: web.Request) -> web.Response:
    """GET /users?username=&search=&active=&blocked=&admins=&external=&exclude_external= (users.rb)."""
    values = await load_params(request, UserListIn())
    current = page(values)
    async with pool(request).acquire() as conn:
        result = await users_domain.list_users(
            conn,
            current,
            username=values.get("username"),
            search=values.get("search"),
            active=bool(values.get("active")),
            blocked=bool(values.get("blocked")),
            admins=values["admins"],
            external=values["external"],
            non_external=values["exclude_external"],
            caller_is_admin=identity(request).is_admin,
        )
    return paginated(request, current, result, lambda u: _user_body(request, u, entities.user_basic))


@admin_routes.post("/api/v4/users")
async def create_user(request: web.Request) -> web.Response:
    """POST /users (users.rb, admin): the user, its namespace and route in one transaction."""
    values = await load_params(request, UserCreateIn())
    require_one_of(values, "password", "reset_password", "force_random_password")
    settings = await app_settings(request)
    password = values.get("password")
    if not password:
        password = validation.random_password()
    new = NewUser(
        username=values["username"],
        email=values["email"],
        name=values["name"],
        password=password,
        admin=values["admin"],
        can_create_group=values.get("can_create_group", True),
        external=values["external"],
        projects_limit=values.get("projects_limit", 100000),
        # With e-mail confirmation off, GitLab confirms new users at once.
        confirmed=values["skip_confirmation"] or settings.email_confirmation_setting == "off",
    )
    async with pool(request).acquire() as conn:
        user_id = await users_domain.create_user(conn, new)
        found = await users_domain.find_user(conn, user_id)
    return created(_admin_body(request, found))


@user_routes.get("/api/v4/users/{id}")
async def get_user(request: web.Request) -> web.Response:
    """GET /users/:id (users.rb)."""
    user_id = int_param(request, "id")
    async with pool(request).acquire() as conn:
        found = await users_domain.find_user(conn, user_id)
    # Entities::User for everybody but administrators, themselves too
    return json_response(_user_body(request, found, entities.user))


@admin_routes.put("/api/v4/users/{id}")
async def update_user(request: web.Request) -> web.Response:
    """PUT /users/:id (users.rb, admin); a new username moves the user's namespace and projects."""
    user_id = int_param(request, "id")
    values = await load_params(request, UserUpdateIn())
    async with pool(request).acquire() as conn:
        await users_domain.update_user(conn, user_id, values)
        found = await users_domain.find_user(conn, user_id)
    return json_response(_admin_body(request, found))


@admin_routes.delete("/api/v4/users/{id}")
async def delete_user(request: web.Request) -> web.Response:
    """DELETE /users/:id?hard_delete= (users.rb, admin): 204; keys, tokens and personal projects go
    too, and with hard_delete the groups the user alone owns."""
    user_id = int_param(request, "id")
    values = await load_params(request, UserDeleteIn())
    async with pool(request).acquire() as conn:
        await users_domain.delete_user(conn, user_id, hard_delete=values["hard_delete"])
    return no_content()


async def _state_change(request: web.Request, action: str) -> web.Response:
    user_id = int_param(request, "id")
    async with pool(request).acquire() as conn:
        if action == "block":
            body: object = await users_domain.block(conn, user_id, actor_id(request))
        elif action == "unblock":
            body = await users_domain.unblock(conn, user_id)
        elif action == "deactivate":
            body = await users_domain.deactivate(conn, user_id)
        elif action == "activate":
            body = await users_domain.activate(conn, user_id)
        else:
            body = await users_domain.approve(conn, user_id)
    return created(body)


@admin_routes.post("/api/v4/users/{id}/block")
async def block_user(request: web.Request) -> web.Response:
    """POST /users/:id/block: 201 true (null when already blocked)."""
    return await _state_change(request, "block")


@admin_routes.post("/api/v4/users/{id}/unblock")
async def unblock_user(request: web.Request) -> web.Response:
    """POST /users/:id/unblock: 201 true."""
    return await _state_change(request, "unblock")


@admin_routes.post("/api/v4/users/{id}/deactivate")
async def deactivate_user(request: web.Request) -> web.Response:
    """POST /users/:id/deactivate: 201 true (null when already deactivated)."""
    return await _state_change(request, "deactivate")


@admin_routes.post("/api/v4/users/{id}/activate")
async def activate_user(request: web.Request) -> web.Response:
    """POST /users/:id/activate: 201 true."""
    return await _state_change(request, "activate")


@admin_routes.post("/api/v4/users/{id}/approve")
async def approve_user(request: web.Request) -> web.Response:
    """POST /users/:id/approve: 201 {"message": "Success"}."""
    return await _state_change(request, "approve")


@user_routes.get("/api/v4/user")
async def current_user(request: web.Request) -> web.Response:
    """GET /user: the token's owner (users.rb); administrators see the admin fields."""
    async with pool(request).acquire() as conn:
        found = await users_domain.find_user(conn, actor_id(request))
    return json_response(_user_body(request, found, entities.user_public))


# --- SSH keys ----------------------------------------------------------------------------------


async def _list_keys(request: web.Request, user_id: int) -> web.Response:
    values = await load_params(request, PageIn())
    current = page(values)
    async with pool(request).acquire() as conn:
        result = await users_domain.user_keys(conn, user_id, current)
    return paginated(request, current, result, entities.ssh_key)


async def _add_key(request: web.Request, user_id: int) -> web.Response:
    values = await load_params(request, KeyCreateIn())
    settings = await app_settings(request)
    async with pool(request).acquire() as conn:
        key = await users_domain.add_key(
            conn,
            user_id,
            title=values["title"],
            text=values["key"],
            expires_at=values.get("expires_at"),
            usage_type=values["usage_type"],
            app=settings,
        )
    return created(entities.ssh_key(key))


async def _user_key(request: web.Request, user_id: int, key_id: int) -> KeyRow:
    async with pool(request).acquire() as conn:
        return await users_domain.user_key(conn, user_id, key_id)


async def _delete_key(request: web.Request, user_id: int, key_id: int) -> web.Response:
    async with pool(request).acquire() as conn:
        await users_domain.delete_user_key(conn, user_id, key_id)
    return no_content()


@user_routes.get("/api/v4/users/{id}/keys")
async def list_user_keys(request: web.Request) -> web.Response:
    """GET /users/:id/keys (users.rb)."""
    return await _list_keys(request, int_param(request, "id"))


@admin_routes.post("/api/v4/users/{id}/keys")
async def add_user_key(request: web.Request) -> web.Response:
    """POST /users/:id/keys (users.rb, admin): title, key, expires_at, usage_type."""
    return await _add_key(request, int_param(request, "id"))


@user_routes.get("/api/v4/users/{id}/keys/{key_id}")
async def get_user_key(request: web.Request) -> web.Response:
    """GET /users/:id/keys/:key_id (users.rb)."""
    key = await _user_key(request, int_param(request, "id"), int_param(request, "key_id"))
    return json_response(entities.ssh_key(key))


@admin_routes.delete("/api/v4/users/{id}/keys/{key_id}")
async def delete_user_key(request: web.Request) -> web.Response:
    """DELETE /users/:id/keys/:key_id (users.rb, admin): 204."""
    return await _delete_key(request, int_param(request, "id"), int_param(request, "key_id"))


@user_routes.get("/api/v4/user/keys")
async def list_own_keys(request: web.Request) -> web.Response:
    """GET /user/keys (users.rb)."""
    return await _list_keys(request, actor_id(request))


@user_routes.post("/api/v4/user/keys")
async def add_own_key(request: web.Request) -> web.Response:
    """POST /user/keys (users.rb)."""
    return await _add_key(request, actor_id(request))


@user_routes.get("/api/v4/user/keys/{key_id}")
async def get_own_key(request: web.Request) -> web.Response:
    """GET /user/keys/:key_id (users.rb)."""
    key = await _user_key(request, actor_id(request), int_param(request, "key_id"))
    return json_response(entities.ssh_key(key))


@user_routes.delete("/api/v4/user/keys/{key_id}")
async def delete_own_key(request: web.Request) -> web.Response:
    """DELETE /user/keys/:key_id (users.rb): 204."""
    return await _delete_key(request, actor_id(request), int_param(request, "key_id"))


async def _key_with_user(request: web.Request, key: KeyRow) -> dict[str, object]:
    owner = None
    if key.user_id is not None:
        async with pool(request).acquire() as conn:
            found = await users_domain.find_user_or_none(conn, key.user_id)
        owner = _admin_body(request, found) if found else None
    body = entities.deploy_key(key) if key.type == "DeployKey" else entities.ssh_key(key)
    body["user"] = owner
    return body


@admin_routes.get("/api/v4/keys/{id}")
async def get_key(request: web.Request) -> web.Response:
    """GET /keys/:id (keys.rb, admin): the key with its user."""
    key_id = int_param(request, "id")
    async with pool(request).acquire() as conn:
        key = await users_domain.key_by_id(conn, key_id)
    return json_response(await _key_with_user(request, key))


@admin_routes.get("/api/v4/keys")
async def find_key_by_fingerprint(request: web.Request) -> web.Response:
    """GET /keys?fingerprint= (keys.rb, admin): SHA256:<base64> or the MD5 colon form."""
    values = await load_params(request, KeyLookupIn())
    async with pool(request).acquire() as conn:
        key = await users_domain.key_by_fingerprint(conn, values["fingerprint"])
    return json_response(await _key_with_user(request, key))
