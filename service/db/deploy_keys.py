"""deploy_keys_projects: deploy keys enabled on projects (sql/deploy_keys.sql); the keys are ssh_keys.py's."""

from __future__ import annotations

from dataclasses import dataclass

from service.db import ssh_keys
from service.db.queries import many, one, returning, statement, value
from service.db.rows import Conn, Paged, paged, row
from service.db.ssh_keys import KeyRow

_LIST = many("list_project_deploy_keys")
_FIND = one("find_project_deploy_key")
_ENABLE = statement("enable_deploy_key")
_DISABLE = returning("disable_deploy_key")
_UPDATE_LINK = value("update_deploy_key_link")
_RENAME = statement("rename_deploy_key")


@dataclass(frozen=True)
class ProjectDeployKey(KeyRow):
    """A deploy key as enabled on one project."""

    can_push: bool
    link_id: int


async def list_deploy_keys(conn: Conn, project_id: int, *, limit: int, offset: int) -> Paged[ProjectDeployKey]:
    return paged(ProjectDeployKey, await conn.fetch(_LIST, project_id, limit, offset))


async def find_project_deploy_key(conn: Conn, project_id: int, key_id: int) -> ProjectDeployKey | None:
    return row(ProjectDeployKey, await conn.fetchrow(_FIND, project_id, key_id))


async def enable_deploy_key(conn: Conn, key_id: int, project_id: int, can_push: bool) -> None:
    await conn.execute(_ENABLE, key_id, project_id, can_push)


async def update_deploy_key(
    conn: Conn, project_id: int, key_id: int, *, title: str | None, can_push: bool | None
) -> bool:
    """False when the key is not enabled on the project; NULLs keep the current values."""
    async with conn.transaction():
        if await conn.fetchval(_UPDATE_LINK, project_id, key_id, can_push) is None:
            return False
        if title is not None:
            await conn.execute(_RENAME, key_id, title)
    return True


async def disable_deploy_key(conn: Conn, project_id: int, key_id: int) -> bool:
    """False when it was not enabled. The key goes too once no project uses it (GitLab's
    DeployKeysProject#destroy_orphaned_deploy_key)."""
    async with conn.transaction():
        if await conn.fetchval(_DISABLE, project_id, key_id) is None:
            return False
        await ssh_keys.delete_orphaned_deploy_key(conn, key_id)
    return True
