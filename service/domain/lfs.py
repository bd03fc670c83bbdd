"""Gitlab::LfsToken: a stateless HS256 JWT whose key ties it to the actor (reference 9.3)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import jwt

from service.db import ssh_keys as ssh_keys_db
from service.db import projects as projects_db
from service.db.rows import Conn
from service.domain.actors import ActorRef, RepositoryRef, find_user
from service.domain.errors import Missing, NoRoute

DEFAULT_EXPIRE_TIME = 7200  # seconds; 1800 before GitLab 17


def user_secret(user_id: int, encrypted_password: str, db_key_base: bytes) -> bytes:
    """A password change ends every LFS token of the user."""
    return f"{user_id}{encrypted_password[-16:]}".encode() + db_key_base[:16]


def deploy_key_secret(fingerprint_sha256: str, db_key_base: bytes) -> bytes:
    return fingerprint_sha256[:16].encode() + db_key_base[:32]


def lfs_token(actor_name: str, secret: bytes, project_id: int, now: float | None = None) -> str:
    issued = int(now if now is not None else time.time())
    claims = {
        # HMACToken#token: the project binding goes inside `data`, where token_valid? reads it (a
        # claim beside `data` would bind nothing: GitLab would take the token for any project)
        "data": {"actor": actor_name, "container_gid": f"gid://gitlab/Project/{project_id}"},
        "jti": str(uuid.uuid4()),
        "iat": issued,
        "nbf": issued - 5,
        "exp": issued + DEFAULT_EXPIRE_TIME,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def deploy_key_actor_name(key_id: int) -> str:
    return f"lfs+deploy-key-{key_id}"


@dataclass(frozen=True)
class LfsGrant:
    username: str
    token: str
    repository_path: str  # the project's full path, with ".wiki" for its wiki


async def authenticate(conn: Conn, actor: ActorRef, repository: RepositoryRef, db_key_base: bytes) -> LfsGrant:
    """POST /internal/lfs_authenticate: an LFS token for the SSH user or deploy key (internal/base.rb).

    The repository is a project's or its wiki's (a ProjectWiki takes lfs_enabled? from its project);
    a snippet has no LFS, and designs are not in the data model.
    """
    found = (
        await projects_db.find_project_by_full_path(conn, repository.path)
        if repository.repo_type in ("project", "wiki") and repository.path
        else None
    )
    if found is None or not found.lfs_enabled:
        raise NoRoute()
    if actor.key_id is not None:
        key = await ssh_keys_db.find_key_actor(conn, actor.key_id)
        if key is None:
            raise Missing()
        if key.is_deploy_key:
            name = deploy_key_actor_name(key.key_id)
            secret = deploy_key_secret(key.fingerprint_sha256, db_key_base)
        elif key.user_id is not None:
            name = key.username or ""
            secret = user_secret(key.user_id, key.encrypted_password or "", db_key_base)
        else:
            raise Missing()
    else:
        # key ids were handled above; the key-owner identifier does not apply to LFS
        user = await find_user(conn, ActorRef(user_id=actor.user_id, username=actor.username))
        if user is None:
            raise Missing()
        name = user.username
        secret = user_secret(user.id, user.encrypted_password, db_key_base)
    suffix = ".wiki" if repository.repo_type == "wiki" else ""
    return LfsGrant(name, lfs_token(name, secret, found.id), found.full_path + suffix)
