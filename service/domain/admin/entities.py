"""GitLab's API entities (lib/api/entities/*.rb), reduced to the fields clients read.

Timestamps are ISO 8601 in UTC with milliseconds, as Grape renders them; dates are YYYY-MM-DD.
"""

from __future__ import annotations

from service.domain.iso_time import iso as iso  # entities.iso: the routes render with it too

from datetime import date, datetime
from typing import Any

import orjson

from service.db.agents import AgentRow, AgentTokenDetails
from service.db.broadcast_messages import BroadcastRow
from service.db.deploy_keys import ProjectDeployKey
from service.db.members import MemberRow
from service.db.namespaces import NamespaceRow
from service.db.projects import AdminProject, ClientKeyRow
from service.db.protected_refs import ProtectedBranchRow, ProtectedTagRow
from service.db.ssh_keys import KeyRow
from service.db.users import AdminUser, PersonalAccessTokenRow
from service.domain import branch_protection
from service.domain.admin.validation import PROJECT_CREATION_NAMES, VISIBILITY_NAMES
from service.domain.urls import InstanceUrls

# ProtectedRefAccess#humanize
ACCESS_LEVEL_DESCRIPTIONS = {0: "No one", 30: "Developers + Maintainers", 40: "Maintainers", 60: "Admins"}


def user_basic(user: AdminUser | MemberRow, urls: InstanceUrls) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "name": user.name,
        "state": user.state,
        "locked": False,
        "avatar_url": None,
        "web_url": f"{urls.base}/{user.username}",
    }


def user(found: AdminUser, urls: InstanceUrls) -> dict[str, Any]:
    """Entities::User: what any signed-in user sees of another (GET /users/:id)."""
    return {
        **user_basic(found, urls),
        "created_at": iso(found.created_at),
        "bio": "",
        "public_email": None,
        "bot": found.user_type != "human",
    }


def user_public(found: AdminUser, urls: InstanceUrls) -> dict[str, Any]:
    """Entities::UserPublic: a user's own account as GET /user shows it (with the e-mail address)."""
    return {
        **user(found, urls),
        "confirmed_at": iso(found.confirmed_at),
        "last_activity_on": iso(found.last_activity_on),
        "email": found.email,
        "projects_limit": found.projects_limit,
        "identities": [],
        "can_create_group": found.can_create_group,
        "two_factor_enabled": found.otp_required_for_login,
        "external": found.external,
    }


def user_with_admin(found: AdminUser, urls: InstanceUrls) -> dict[str, Any]:
    """Entities::UserWithAdmin: what an administrator sees of any user."""
    return {**user_public(found, urls), "is_admin": found.admin, "note": None, "namespace_id": found.namespace_id}


def ssh_key(key: KeyRow, owner: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": key.id,
        "title": key.title,
        "created_at": iso(key.created_at),
        "expires_at": iso(key.expires_at),
        "key": key.key,
        "usage_type": key.usage_type,
        "last_used_at": iso(key.last_used_at),
    }
    if owner is not None:
        body["user"] = owner
    return body


def deploy_key(key: KeyRow | ProjectDeployKey, *, can_push: bool | None = None) -> dict[str, Any]:
    """Entities::DeployKey; with can_push it is Entities::DeployKeysProject."""
    body: dict[str, Any] = {
        "id": key.id,
        "title": key.title,
        "created_at": iso(key.created_at),
        "expires_at": iso(key.expires_at),
        "key": key.key,
        "fingerprint": key.fingerprint,
        "fingerprint_sha256": "SHA256:" + key.fingerprint_sha256,
        "usage_type": key.usage_type,
        "last_used_at": iso(key.last_used_at),
    }
    if can_push is not None:
        body["can_push"] = can_push
    return body


def _namespace_url(urls: InstanceUrls, kind: str, full_path: str) -> str:
    return f"{urls.base}/groups/{full_path}" if kind == "Group" else f"{urls.base}/{full_path}"


def group(ns: NamespaceRow, urls: InstanceUrls) -> dict[str, Any]:
    return {
        "id": ns.id,
        "name": ns.name,
        "path": ns.path,
        "description": ns.description,
        "visibility": VISIBILITY_NAMES[ns.visibility_level],
        "full_name": ns.full_name,
        "full_path": ns.full_path,
        "parent_id": ns.parent_id,
        "web_url": f"{urls.base}/groups/{ns.full_path}",
        "avatar_url": None,
        "created_at": iso(ns.created_at),
        "lfs_enabled": True,
        "request_access_enabled": True,
        "project_creation_level": PROJECT_CREATION_NAMES[ns.project_creation_level],
        **branch_protection.shown_settings(orjson.loads(ns.default_branch_protection)),
    }


def project(p: AdminProject, urls: InstanceUrls) -> dict[str, Any]:
    return {
        "id": p.id,
        "description": p.description,
        "name": p.name,
        "name_with_namespace": p.full_name,
        "path": p.path,
        "path_with_namespace": p.full_path,
        "created_at": iso(p.created_at),
        "last_activity_at": iso(p.last_activity_at),
        "default_branch": p.default_branch,
        "visibility": VISIBILITY_NAMES[p.visibility_level],
        "archived": p.archived,
        "lfs_enabled": p.lfs_enabled,
        "creator_id": p.creator_id,
        "ssh_url_to_repo": urls.ssh_url_to_repo(p.full_path),
        "http_url_to_repo": urls.http_url_to_repo(p.full_path),
        "web_url": urls.project_url(p.full_path),
        "namespace": {
            "id": p.namespace_id,
            "name": p.namespace_name,
            "path": p.namespace_path,
            "kind": p.namespace_kind.lower(),
            "full_path": p.namespace_full_path,
            "parent_id": p.namespace_parent_id,
            "web_url": _namespace_url(urls, p.namespace_kind, p.namespace_full_path),
        },
    }


def member(m: MemberRow, urls: InstanceUrls) -> dict[str, Any]:
    return {
        **user_basic(m, urls),
        "access_level": m.access_level,
        "created_at": iso(m.created_at),
        "expires_at": iso(m.expires_at),
        "created_by_id": m.created_by_id,
        "membership_state": m.membership_state,
    }


def _access_levels(levels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "id": level["id"],
            "access_level": level["access_level"],
            "access_level_description": (
                ACCESS_LEVEL_DESCRIPTIONS.get(level["access_level"], "")
                if level["access_level"] is not None
                else ("Deploy key" if level["deploy_key_id"] else "User")
            ),
            "deploy_key_id": level["deploy_key_id"],
            "user_id": level["user_id"],
            "group_id": None,
        }
        for level in levels
    ]


def protected_branch(branch: ProtectedBranchRow) -> dict[str, Any]:
    return {
        "id": branch.id,
        "name": branch.name,
        "push_access_levels": _access_levels(branch.push_access_levels),
        "merge_access_levels": _access_levels(branch.merge_access_levels),
        "unprotect_access_levels": _access_levels(branch.unprotect_access_levels),
        "allow_force_push": branch.allow_force_push,
        "code_owner_approval_required": False,
    }


def protected_tag(tag: ProtectedTagRow) -> dict[str, Any]:
    return {"name": tag.name, "create_access_levels": _access_levels(tag.create_access_levels)}


def personal_access_token(token: PersonalAccessTokenRow, *, today: date) -> dict[str, Any]:
    return {
        "id": token.id,
        "name": token.name,
        "revoked": token.revoked,
        "created_at": iso(token.created_at),
        "description": None,
        "scopes": list(token.scopes),
        "user_id": token.user_id,
        "last_used_at": iso(token.last_used_at),
        "active": not token.revoked and (token.expires_at is None or token.expires_at > today),
        "expires_at": iso(token.expires_at),
    }


def agent(found: AgentRow, config_project: AdminProject, urls: InstanceUrls) -> dict[str, Any]:
    return {
        "id": found.id,
        "name": found.name,
        "config_project": {
            "id": config_project.id,
            "description": config_project.description,
            "name": config_project.name,
            "name_with_namespace": config_project.full_name,
            "path": config_project.path,
            "path_with_namespace": config_project.full_path,
            "created_at": iso(config_project.created_at),
        },
        "created_at": iso(found.created_at),
        "created_by_user_id": found.created_by_user_id,
    }


def agent_token(token: AgentTokenDetails) -> dict[str, Any]:
    return {
        "id": token.id,
        "name": token.name,
        "description": token.description,
        "agent_id": token.agent_id,
        "status": token.status,
        "created_at": iso(token.created_at),
        "created_by_user_id": token.created_by_user_id,
        "last_used_at": iso(token.last_used_at),
    }


def broadcast_message(message: BroadcastRow, *, now: datetime) -> dict[str, Any]:
    return {
        "id": message.id,
        "message": message.message,
        "starts_at": iso(message.starts_at),
        "ends_at": iso(message.ends_at),
        "color": None,
        "font": None,
        "active": message.starts_at <= now < message.ends_at,
        "target_access_levels": list(message.target_access_levels),
        "target_path": message.target_path,
        "broadcast_type": message.broadcast_type,
        "dismissable": message.dismissable,
        "theme": message.theme,
        "show_in_cli": message.show_in_cli,
    }


def client_key(key: ClientKeyRow, urls: InstanceUrls) -> dict[str, Any]:
    scheme, _, host = urls.base.partition("://")
    return {
        "id": key.id,
        "active": key.active,
        "public_key": key.public_key,
        "sentry_dsn": f"{scheme}://{key.public_key}@{host}/api/v4/error_tracking/collector/{key.project_id}",
    }
