"""Projects and what hangs off them (GitLab lib/api/projects.rb, Projects::TransferService,
deploy_keys.rb, protected_branches.rb, protected_tags.rb, clusters/agents.rb)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from service.db import agents as agents_db
from service.db import deploy_keys as deploy_keys_db
from service.db import members as members_db
from service.db import namespaces as namespaces_db
from service.db import projects as projects_db
from service.db import protected_refs as protected_refs_db
from service.db import routes as routes_db
from service.db import ssh_keys as ssh_keys_db
from service.db import users as users_db
from service.db.namespaces import NamespaceRow

# AdminProject and AgentRow are re-exported for the routes, which do not import service/db
from service.db.agents import AgentRow as AgentRow
from service.db.agents import AgentTokenDetails
from service.db.deploy_keys import ProjectDeployKey
from service.db.projects import AdminProject as AdminProject
from service.db.projects import ClientKeyRow
from service.db.protected_refs import ProtectedBranchRow, ProtectedTagRow
from service.db.rows import Conn, Paged
from service.db.ssh_keys import KeyRow
from service.domain.admin import validation
from service.domain.ids import as_id
from service.domain.admin.pagination import Page
from service.domain.errors import TAKEN, BadRequest, Conflict, Invalid, Missing, Refused, unique_races_answered
from service.domain.admin.namespaces import find_namespace
from service.domain.admin.users import _aware, check_key, title_errors
from service.domain.app_settings import AppSettings
from service.domain.branch_protection import protect_default_branch
from service.domain.checks import valid_ref_name
from service.domain.tokens import token_digest

AGENT_TOKEN_PREFIX = "glagent-"
MAX_ACTIVE_AGENT_TOKENS = 2  # Clusters::AgentTokens::CreateService::ACTIVE_TOKENS_LIMIT
AGENT_NAME_MAX = 63


async def list_projects(
    conn: Conn,
    page: Page,
    *,
    search: str | None,
    archived: bool | None,
    visibility: str | None,
    owned_by: int | None,
    member_id: int | None,
) -> Paged[AdminProject]:
    """ProjectsFinder: owned_by and member_id are the caller's id when `owned` / `membership` is set."""
    return await projects_db.list_projects(
        conn,
        search=search,
        namespace_id=None,
        limit=page.limit,
        offset=page.offset,
        archived=archived,
        visibility_level=validation.VISIBILITY_LEVELS[visibility] if visibility else None,
        owned_by=owned_by,
        member_id=member_id,
    )


async def personal_namespace_id(conn: Conn, user_id: int) -> int | None:
    """The caller's own namespace: where a project goes when no namespace_id is given."""
    me = await users_db.find_user(conn, user_id)
    return me.namespace_id if me else None


async def find_project(conn: Conn, ref: str | int) -> AdminProject:
    """By id, or by URL-decoded full path following redirects (find_project!)."""
    text = str(ref)
    if text.isascii() and text.isdigit():
        project_id = as_id(text)
    else:
        project_id = await projects_db.find_project_id_by_path(conn, text)
    found = await projects_db.find_project(conn, project_id) if project_id is not None else None
    if found is None:
        raise Missing("Project")
    return found


def _check_visibility_in(namespace: NamespaceRow, level: int) -> None:
    if namespace.type == "Group" and level > namespace.visibility_level:
        raise Invalid(
            {
                "visibility_level": [
                    (
                        f"{validation.VISIBILITY_NAMES[level]} is not allowed in a "
                        f"{validation.VISIBILITY_NAMES[namespace.visibility_level]} group."
                    )
                ]
            }
        )


async def _check_name_and_path(
    conn: Conn, namespace: NamespaceRow, name: str | None, path: str | None, except_id: int | None
) -> None:
    errors: dict[str, list[str]] = {}
    taken = await projects_db.name_or_path_taken(conn, namespace.id, name, path, except_id)
    if name is not None and taken.name_taken:
        errors["name"] = ["has already been taken"]
    if path is not None and (taken.path_taken or await routes_db.path_taken(conn, f"{namespace.full_path}/{path}")):
        errors["path"] = ["has already been taken"]
    if errors:
        raise Invalid(errors)


def readme_branch(requested: str | None, instance_default: str) -> str | None:
    """The branch initialize_with_readme's commit is made on (Projects::CreateService: the given
    name's presence, else the instance's default branch name), which becomes the project's default;
    None when git would refuse the name: the commit fails and the project stays empty."""
    branch = (requested or "").strip() or instance_default.strip() or "main"
    return branch if branch != "HEAD" and valid_ref_name(branch) else None


@dataclass(frozen=True)
class NewProject:
    name: str | None
    path: str | None
    namespace_id: int | None
    visibility: str
    default_branch: str | None
    lfs_enabled: bool
    description: str


# The unique indexes _check_name_and_path stands in front of
_PROJECT_RACES = unique_races_answered(
    {
        "index_routes_on_lower_path": lambda: Invalid({"path": [TAKEN]}),
        "index_projects_on_namespace_and_lower_path": lambda: Invalid({"path": [TAKEN]}),
        "index_projects_on_namespace_and_lower_name": lambda: Invalid({"name": [TAKEN]}),
    }
)


@_PROJECT_RACES
async def create_project(conn: Conn, new: NewProject, *, creator_id: int, personal_namespace_id: int | None) -> int:
    """A project with its route "<namespace full path>/<path>" (Projects::CreateService)."""
    path = new.path or validation.path_from_name(new.name or "")
    name = new.name or path
    validation.check_project_name(name)
    validation.check_project_path(path)
    async with conn.transaction():
        namespace_id = new.namespace_id if new.namespace_id is not None else personal_namespace_id
        if namespace_id is not None:
            await namespaces_db.lock_namespace_path(conn, namespace_id)
        namespace = await namespaces_db.find_namespace(conn, namespace_id) if namespace_id is not None else None
        if namespace is None:
            raise Missing("Namespace")
        level = validation.VISIBILITY_LEVELS[new.visibility]
        _check_visibility_in(namespace, level)
        await _check_name_and_path(conn, namespace, name, path, None)
        project_id = await projects_db.insert_project(
            conn,
            name=name,
            path=path,
            namespace_id=namespace.id,
            namespace_full_path=namespace.full_path,
            creator_id=creator_id,
            visibility_level=level,
            default_branch=new.default_branch,
            lfs_enabled=new.lfs_enabled,
            description=new.description,
        )
        if new.default_branch is not None:  # its README commit created that branch: protected as the first push's
            await protect_default_branch(conn, project_id, new.default_branch)
    return project_id


async def _hold(conn: Conn, project_id: int) -> AdminProject:
    """The project as it is now, its namespace's path and then its row locked for the transaction
    (namespaces before projects, as every transaction takes them): a concurrent rename of the
    project or of a namespace above it comes wholly before or after."""
    seen = await projects_db.find_project(conn, project_id)
    if seen is None:
        raise Missing("Project")
    await namespaces_db.lock_namespace_path(conn, seen.namespace_id)
    namespace_id = await projects_db.lock_project(conn, project_id)
    if namespace_id is None:
        raise Missing("Project")
    if namespace_id != seen.namespace_id:  # transferred between the read and the lock
        await namespaces_db.lock_namespace_path(conn, namespace_id)
    current = await projects_db.find_project(conn, project_id)
    assert current is not None  # its row is locked
    return current


@_PROJECT_RACES
async def update_project(conn: Conn, project: AdminProject, changes: dict[str, object]) -> None:
    """PUT /projects/:id. A new path moves the route and leaves a redirect from the old full path,
    so clones of the old URL keep working and /internal/allowed reports the move."""
    name = changes.get("name")
    path = changes.get("path")
    assert name is None or isinstance(name, str)
    assert path is None or isinstance(path, str)
    if name is not None:
        validation.check_project_name(name)
    if path is not None:
        validation.check_project_path(path)
    async with conn.transaction():
        project = await _hold(conn, project.id)
        namespace = await namespaces_db.find_namespace(conn, project.namespace_id)
        assert namespace is not None  # its path is locked (_hold)
        visibility = changes.get("visibility")
        level = validation.VISIBILITY_LEVELS[str(visibility)] if visibility else None
        if level is not None:
            _check_visibility_in(namespace, level)
        check_name = name if name is not None and name.lower() != project.name.lower() else None
        check_path = path if path is not None and path.lower() != project.path.lower() else None
        await _check_name_and_path(conn, namespace, check_name, check_path, project.id)
        default_branch = changes.get("default_branch")
        if isinstance(default_branch, str) and project.default_branch is None:
            # Project#change_head: an empty project has no branch to make its default (its first
            # push gives it one, protected)
            raise Refused({"base": [f"Could not change HEAD: branch '{default_branch}' does not exist"]})
        lfs_enabled = changes.get("lfs_enabled")
        description = changes.get("description")
        await projects_db.update_project(
            conn,
            project.id,
            name=name,
            path=path,
            visibility_level=level,
            default_branch=default_branch if isinstance(default_branch, str) else None,
            lfs_enabled=lfs_enabled if isinstance(lfs_enabled, bool) else None,
            description=description if isinstance(description, str) else None,
        )
        if path is not None and path != project.path:
            await routes_db.move_routes(conn, project.full_path, f"{namespace.full_path}/{path}")
        if name is not None:
            await routes_db.rename_route(conn, "Project", project.id, f"{namespace.full_name} / {name}")


def _ruby_errors(attribute: str, message: str) -> str:
    # `#{project.errors.messages}` as Ruby 3.x inspects a Hash of Arrays
    return f'{{:{attribute}=>["{message}"]}}'


def _transfer_failed(message: str) -> Refused:
    return Refused(f"Failed to transfer project {_ruby_errors('new_namespace', message)}")


_SAME_NAME_OR_PATH = "Project with same name or path in target namespace already exists"
# The unique indexes the name-or-path check stands in front of, answered as it answers
_TRANSFER_RACES = unique_races_answered(
    dict.fromkeys(
        (
            "index_routes_on_lower_path",
            "index_projects_on_namespace_and_lower_path",
            "index_projects_on_namespace_and_lower_name",
        ),
        lambda: _transfer_failed(_SAME_NAME_OR_PATH),
    )
)


@_TRANSFER_RACES
async def transfer_project(conn: Conn, project: AdminProject, namespace_ref: str) -> None:
    """PUT /projects/:id/transfer: a new namespace, a new route, a redirect from the old path."""
    async with conn.transaction():
        project = await _hold(conn, project.id)
        target = await find_namespace(conn, namespace_ref)
        if target is not None:
            await namespaces_db.lock_namespace_path(conn, target.id)
            target = await namespaces_db.find_namespace(conn, target.id)  # its path as it is now
        if target is None:
            raise Missing("Namespace")
        if target.id == project.namespace_id:
            raise _transfer_failed("Project is already in this namespace.")
        taken = await projects_db.name_or_path_taken(conn, target.id, project.name, project.path, project.id)
        new_full_path = f"{target.full_path}/{project.path}"
        if taken.name_taken or taken.path_taken or await routes_db.path_taken(conn, new_full_path):
            raise _transfer_failed(_SAME_NAME_OR_PATH)
        # Projects::TransferService: a project more visible than its new group drops to the group's
        # level (/internal/allowed reads the project's own level, so it would stay readable)
        level = project.visibility_level
        if target.type == "Group" and level > target.visibility_level:
            level = target.visibility_level
        await projects_db.update_project(conn, project.id, namespace_id=target.id, visibility_level=level)
        await routes_db.move_routes(conn, project.full_path, new_full_path)
        await routes_db.rename_route(conn, "Project", project.id, f"{target.full_name} / {project.name}")


async def set_archived(conn: Conn, project: AdminProject, archived: bool) -> None:
    await projects_db.update_project(conn, project.id, archived=archived)


async def delete_project(conn: Conn, project: AdminProject) -> None:
    async with conn.transaction():
        # its namespace's path, then its row: writes that hold it (a membership being added) finish
        # before, later ones find it gone
        await _hold(conn, project.id)
        # routes and memberships name their source by type and id, without a foreign key
        await routes_db.delete_routes_of(conn, [], [project.id])
        await members_db.delete_memberships_of(conn, [], [project.id])
        await projects_db.delete_project(conn, project.id)


# --- deploy keys -------------------------------------------------------------------------------


@unique_races_answered(
    {"index_keys_on_fingerprint_sha256": lambda: Invalid({"deploy_key.fingerprint_sha256": [TAKEN]})}
)
async def add_deploy_key(
    conn: Conn,
    project: AdminProject,
    *,
    title: str,
    text: str,
    can_push: bool,
    expires_at: datetime | None,
    creator_id: int,
    app: AppSettings,
) -> ProjectDeployKey:
    """POST /projects/:id/deploy_keys: a key already enabled here is returned as is; an existing
    deploy key is enabled here; otherwise a new deploy key is created and enabled."""
    expires_at = _aware(expires_at)
    checked = check_key(text, title, expires_at, app, prefix="deploy_key.")
    async with conn.transaction():
        existing = await ssh_keys_db.find_key_by_fingerprint(conn, sha256=checked.fingerprint_sha256, md5=None)
        if existing is not None and existing.type != "DeployKey":
            raise Invalid({"deploy_key.fingerprint_sha256": ["has already been taken"]})
        if existing is None:
            existing = await ssh_keys_db.insert_key(
                conn,
                user_id=creator_id,
                deploy_key=True,
                key=checked.text,
                title=title,
                key_type=checked.key_type,
                bits=checked.bits,
                fingerprint_md5=checked.fingerprint_md5,
                fingerprint_sha256=checked.fingerprint_sha256,
                expires_at=expires_at,
            )
        await deploy_keys_db.enable_deploy_key(conn, existing.id, project.id, can_push)
        linked = await deploy_keys_db.find_project_deploy_key(conn, project.id, existing.id)
    assert linked is not None
    return linked


async def enable_deploy_key(conn: Conn, project: AdminProject, key_id: int) -> KeyRow:
    key = await ssh_keys_db.find_key(conn, key_id)
    if key is None or key.type != "DeployKey":
        raise Missing("Deploy Key")
    await deploy_keys_db.enable_deploy_key(conn, key.id, project.id, False)
    return key


async def update_deploy_key(
    conn: Conn, project: AdminProject, key_id: int, *, title: str | None, can_push: bool | None
) -> ProjectDeployKey:
    """PUT /projects/:id/deploy_keys/:key_id (deploy_keys.rb): can_push here and/or the key's title
    (DeployKeysProject#update with deploy_key_attributes, whose errors are prefixed as such)."""
    if title is not None:
        errors = title_errors(title, prefix="deploy_key.")
        if errors:
            raise Invalid(errors)
    if not await deploy_keys_db.update_deploy_key(conn, project.id, key_id, title=title, can_push=can_push):
        raise Missing("Deploy Key")
    return await deploy_key(conn, project, key_id)


async def remove_deploy_key(conn: Conn, project: AdminProject, key_id: int) -> None:
    if not await deploy_keys_db.disable_deploy_key(conn, project.id, key_id):
        raise Missing("Deploy Key")


# --- protected branches and tags ---------------------------------------------------------------


async def protect_branch(
    conn: Conn,
    project: AdminProject,
    *,
    name: str,
    push_access_level: int,
    merge_access_level: int,
    unprotect_access_level: int | None,
    allow_force_push: bool,
) -> None:
    validation.check_present(name, "name")
    levels = [("push", push_access_level), ("merge", merge_access_level)]
    if unprotect_access_level is not None:
        levels.append(("unprotect", unprotect_access_level))
    async with conn.transaction():
        created = await protected_refs_db.insert_protected_branch(
            conn, project.id, name, allow_force_push=allow_force_push, levels=levels
        )
        if not created:
            raise Conflict(f"Protected branch '{name}' already exists")


async def protect_tag(conn: Conn, project: AdminProject, *, name: str, create_access_level: int) -> None:
    validation.check_present(name, "name")
    if not await protected_refs_db.insert_protected_tag(conn, project.id, name, create_access_level):
        raise Conflict(f"Protected tag '{name}' already exists")


# --- cluster agents ----------------------------------------------------------------------------


def _check_agent_name(name: str) -> list[str]:
    # Gitlab::Regex.cluster_agent_name_regex, Clusters::Agent validations (full messages)
    messages = []
    if len(name) > AGENT_NAME_MAX:
        messages.append(f"Name is too long (maximum is {AGENT_NAME_MAX} characters)")
    ok = bool(name) and all(c.islower() or c.isdigit() or c == "-" for c in name if c.isascii()) and name.isascii()
    if not ok or name.startswith("-") or name.endswith("-"):
        messages.append("Name can contain only lowercase letters, digits, and '-', but cannot start or end with '-'")
    return messages


def _ruby_array(messages: list[str]) -> str:
    return "[" + ", ".join(f'"{m}"' for m in messages) + "]"


async def create_agent(conn: Conn, project: AdminProject, name: str, creator_id: int) -> AgentRow:
    messages = _check_agent_name(name)
    if messages:
        # Clusters::Agents::CreateService returns full_messages; the API passes the array to bad_request!
        raise BadRequest(_ruby_array(messages))
    created = await agents_db.insert_agent(conn, project.id, name, creator_id)
    if created is None:
        raise BadRequest(_ruby_array(["Name has already been taken"]))
    return created


async def find_agent(conn: Conn, project: AdminProject, agent_id: int) -> AgentRow:
    found = await agents_db.find_agent(conn, project.id, agent_id)
    if found is None:
        raise Missing()  # user_project.cluster_agents.find: ActiveRecord::RecordNotFound
    return found


def new_agent_token() -> str:
    return AGENT_TOKEN_PREFIX + secrets.token_urlsafe(38)[:50]


async def create_agent_token(
    conn: Conn, agent: AgentRow, *, name: str, description: str, creator_id: int
) -> tuple[AgentTokenDetails, str]:
    """A new agent token: the plaintext is returned once, only its digest is stored."""
    if not name.strip():
        raise BadRequest(_ruby_array(["Name can't be blank"]))  # CreateService's full messages
    async with conn.transaction():
        # One creation at a time per agent, so concurrent requests cannot all pass the count.
        await agents_db.lock_agent_token_creation(conn, agent.id)
        if await agents_db.count_active_agent_tokens(conn, agent.id) >= MAX_ACTIVE_AGENT_TOKENS:
            raise BadRequest("An agent can have only two active tokens at a time")
        plaintext = new_agent_token()
        created = await agents_db.insert_agent_token(
            conn,
            agent.id,
            digest=token_digest(plaintext),
            name=name,
            description=description,
            created_by=creator_id,
        )
    return created, plaintext


# --- reads and plain changes of a project's resources (each 404s as GitLab's finder does) -------


async def deploy_keys(conn: Conn, project: AdminProject, page: Page) -> Paged[ProjectDeployKey]:
    return await deploy_keys_db.list_deploy_keys(conn, project.id, limit=page.limit, offset=page.offset)


async def deploy_key(conn: Conn, project: AdminProject, key_id: int) -> ProjectDeployKey:
    linked = await deploy_keys_db.find_project_deploy_key(conn, project.id, key_id)
    if linked is None:
        raise Missing("Deploy Key")
    return linked


async def protected_branches(conn: Conn, project: AdminProject) -> list[ProtectedBranchRow]:
    return await protected_refs_db.list_protected_branches(conn, project.id)


async def protected_branch(conn: Conn, project: AdminProject, name: str) -> ProtectedBranchRow:
    found = await protected_refs_db.list_protected_branches(conn, project.id, name)
    if not found:
        raise Missing()  # protected_branches.find_by!(name:): ActiveRecord::RecordNotFound
    return found[0]


async def update_protected_branch(
    conn: Conn, project: AdminProject, name: str, *, allow_force_push: bool | None
) -> ProtectedBranchRow:
    if not await protected_refs_db.update_protected_branch(conn, project.id, name, allow_force_push=allow_force_push):
        raise Missing()
    return await protected_branch(conn, project, name)


async def unprotect_branch(conn: Conn, project: AdminProject, name: str) -> None:
    if not await protected_refs_db.delete_protected_branch(conn, project.id, name):
        raise Missing()


async def protected_tags(conn: Conn, project: AdminProject) -> list[ProtectedTagRow]:
    return await protected_refs_db.list_protected_tags(conn, project.id)


async def protected_tag(conn: Conn, project: AdminProject, name: str) -> ProtectedTagRow:
    found = await protected_refs_db.list_protected_tags(conn, project.id, name)
    if not found:
        raise Missing()
    return found[0]


async def unprotect_tag(conn: Conn, project: AdminProject, name: str) -> None:
    if not await protected_refs_db.delete_protected_tag(conn, project.id, name):
        raise Missing()


async def agents(conn: Conn, project: AdminProject, page: Page) -> Paged[AgentRow]:
    return await agents_db.list_agents(conn, project.id, limit=page.limit, offset=page.offset)


async def delete_agent(conn: Conn, project: AdminProject, agent: AgentRow) -> None:
    await agents_db.delete_agent(conn, project.id, agent.id)


async def agent_tokens(conn: Conn, agent: AgentRow, page: Page) -> Paged[AgentTokenDetails]:
    return await agents_db.list_agent_tokens(conn, agent.id, limit=page.limit, offset=page.offset)


async def agent_token(conn: Conn, agent: AgentRow, token_id: int) -> AgentTokenDetails:
    token = await agents_db.find_agent_token(conn, agent.id, token_id)
    if token is None:
        raise Missing()
    return token


async def revoke_agent_token(conn: Conn, agent: AgentRow, token_id: int) -> None:
    if not await agents_db.revoke_agent_token(conn, agent.id, token_id):
        raise Missing()


async def client_keys(conn: Conn, project: AdminProject) -> list[ClientKeyRow]:
    return await projects_db.list_client_keys(conn, project.id)


async def create_client_key(conn: Conn, project: AdminProject) -> ClientKeyRow:
    """A new "glet_" public key (ErrorTracking::ClientKey)."""
    return await projects_db.insert_client_key(conn, project.id, "glet_" + secrets.token_hex(16))


async def delete_client_key(conn: Conn, project: AdminProject, key_id: int) -> ClientKeyRow:
    key = await projects_db.delete_client_key(conn, project.id, key_id)
    if key is None:
        raise Missing()
    return key
