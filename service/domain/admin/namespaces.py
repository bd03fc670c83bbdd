"""Groups, subgroups and memberships (GitLab lib/api/groups.rb, members.rb, Groups::CreateService)."""

from __future__ import annotations

from datetime import date
from typing import Any

from service.db import members as members_db
from service.db import namespaces as namespaces_db
from service.db import projects as projects_db
from service.db import routes as routes_db
from service.db import users as users_db
from service.db.members import MemberRow
from service.db.namespaces import NamespaceRow as NamespaceRow  # for the routes
from service.db.rows import Conn, Paged
from service.domain.admin import validation
from service.domain.ids import as_id
from service.domain.admin.pagination import Page
from service.domain.errors import TAKEN, Conflict, Denied, Invalid, Missing, unique_races_answered

OWNER = 50


async def find_namespace(conn: Conn, ref: str | int) -> NamespaceRow | None:
    """By id, or by URL-decoded full path (following redirects), as GitLab's find_namespace."""
    text = str(ref)
    if text.isascii() and text.isdigit():
        number = as_id(text)
        return await namespaces_db.find_namespace(conn, number) if number is not None else None
    return await namespaces_db.find_namespace_by_path(conn, text)


async def find_group(conn: Conn, ref: str | int) -> NamespaceRow:
    found = await find_namespace(conn, ref)
    if found is None or found.type != "Group":
        raise Missing("Group")
    return found


def _parent_visibility_error(parent: NamespaceRow | None, level: int) -> list[str]:
    if parent is None or level <= parent.visibility_level:
        return []
    return [
        f"{validation.VISIBILITY_NAMES[level]} is not allowed since the parent group has a "
        f"{validation.VISIBILITY_NAMES[parent.visibility_level]} visibility."
    ]


def _check_visibility_under(parent: NamespaceRow, level: int) -> None:
    errors = _parent_visibility_error(parent, level)
    if errors:
        raise Invalid({"visibility_level": errors})


async def _check_visibility_change(conn: Conn, group: NamespaceRow, parent: NamespaceRow | None, level: int) -> None:
    """Group's visibility validations, in their order: no project and no subgroup above the group
    (else /internal/allowed, which reads each project's own level, would still serve it to
    anyone), and the group not above its parent."""
    name = validation.VISIBILITY_NAMES[level]
    above = await namespaces_db.visibility_above(conn, group.id, level)
    errors = []
    if above.projects_above:
        errors.append(f"{name} is not allowed since this group contains projects with higher visibility.")
    if above.subgroups_above:
        errors.append(f"{name} is not allowed since there are sub-groups with higher visibility.")
    errors += _parent_visibility_error(parent, level)
    if errors:
        raise Invalid({"visibility_level": errors})


# The route's unique path, which the path check stands in front of
_GROUP_RACES = unique_races_answered({"index_routes_on_lower_path": lambda: Invalid({"path": [TAKEN]})})


@_GROUP_RACES
async def create_group(
    conn: Conn,
    *,
    name: str,
    path: str,
    parent_id: int | None,
    visibility: str | None,
    description: str,
    creator_id: int,
    project_creation_level: str | None = None,
    default_branch_protection: dict[str, Any] | None = None,
) -> int:
    """A group (traversal_ids = parent's + [id]) with its route "<parent path>/<path>"; the creator
    becomes its owner, as Groups::CreateService does."""
    validation.check_group_name(name)
    validation.check_namespace_path(path)
    validation.check_not_reserved(path, top_level=parent_id is None)
    async with conn.transaction():
        if parent_id is not None:
            await namespaces_db.lock_namespace_path(conn, parent_id)
        parent = await find_group(conn, parent_id) if parent_id is not None else None
        # ApplicationSetting default_group_visibility is private; a subgroup inherits at most its parent's.
        level = validation.VISIBILITY_LEVELS[visibility] if visibility else 0
        if parent is not None:
            _check_visibility_under(parent, level)
        full_path = f"{parent.full_path}/{path}" if parent else path
        full_name = f"{parent.full_name} / {name}" if parent else name
        if await routes_db.path_taken(conn, full_path):
            raise Invalid({"path": ["has already been taken"]})
        group_id = await namespaces_db.insert_namespace(
            conn,
            name=name,
            path=path,
            kind="Group",
            owner_id=None,
            parent_id=parent.id if parent else None,
            visibility_level=level,
            description=description,
            project_creation_level=_project_creation_level(project_creation_level),
            default_branch_protection=default_branch_protection,
        )
        await routes_db.insert_route(conn, "Namespace", group_id, full_path, full_name)
        await members_db.insert_member(
            conn,
            user_id=creator_id,
            source_type="Namespace",
            source_id=group_id,
            access_level=OWNER,
            expires_at=None,
            created_by_id=creator_id,
        )
    return group_id


@_GROUP_RACES
async def update_group(
    conn: Conn,
    group: NamespaceRow,
    *,
    name: str | None,
    path: str | None,
    visibility: str | None,
    description: str | None,
    project_creation_level: str | None = None,
    default_branch_protection: dict[str, Any] | None = None,
) -> None:
    """PUT /groups/:id. A new path moves the group's route and the routes of every subgroup and
    project under it, leaving redirects for all the old paths."""
    if name is not None:
        validation.check_group_name(name)
    if path is not None:
        validation.check_namespace_path(path)
    async with conn.transaction():
        # its parent's path (root first), then its own row, then the group as it is now: a rename
        # above it or of it comes wholly before or after this one, which reads the paths it moves
        # only once those are settled
        if group.parent_id is not None:
            await namespaces_db.lock_namespace_path(conn, group.parent_id)
        await namespaces_db.lock_namespace(conn, group.id)
        group = await find_group(conn, group.id)
        level = validation.VISIBILITY_LEVELS[visibility] if visibility else None
        parent = await namespaces_db.find_namespace(conn, group.parent_id) if group.parent_id else None
        if level is not None:
            # the group's row is locked: projects and subgroups created, moved in or made more
            # visible under it (lock_namespace_path) wait for this change, or it for them
            await _check_visibility_change(conn, group, parent, level)
        new_full_path = None
        if path is not None and path != group.path:
            validation.check_not_reserved(path, top_level=parent is None)
            new_full_path = f"{parent.full_path}/{path}" if parent else path
            if path.lower() != group.path.lower() and await routes_db.path_taken(conn, new_full_path):
                raise Invalid({"path": ["has already been taken"]})
        await namespaces_db.update_namespace(
            conn,
            group.id,
            name=name,
            path=path,
            visibility_level=level,
            description=description,
            project_creation_level=_project_creation_level(project_creation_level),
            default_branch_protection=default_branch_protection,
        )
        if new_full_path is not None:
            await routes_db.move_routes(conn, group.full_path, new_full_path)
        if name is not None:
            full_name = f"{parent.full_name} / {name}" if parent else name
            await routes_db.rename_route(conn, "Namespace", group.id, full_name)


def _project_creation_level(name: str | None) -> int | None:
    return validation.PROJECT_CREATION_LEVELS[name] if name is not None else None


async def delete_group(conn: Conn, group: NamespaceRow, *, only_if_solely_owned_by: int | None = None) -> bool:
    """The group and everything in it; False when `only_if_solely_owned_by` is given and, once the
    group is locked, that user is no longer its only owner (an owner added or promoted meanwhile:
    both hold the group's path, so they committed before this lock was granted)."""
    async with conn.transaction():
        # its parent's path, then it and everything in it (root first): additions anywhere in it in
        # flight finish first, later ones find it gone, and a rename above it waits or came first
        if group.parent_id is not None:
            await namespaces_db.lock_namespace_path(conn, group.parent_id)
        await namespaces_db.lock_namespace_subtree(conn, group.id)
        if only_if_solely_owned_by is not None:
            if group.id not in await members_db.groups_solely_owned_by(conn, only_if_solely_owned_by):
                return False
        await forget_paths_under(conn, group.id)
        await namespaces_db.delete_namespace(conn, group.id)
    return True


async def forget_paths_under(conn: Conn, namespace_id: int) -> None:
    """Before a namespace is deleted: the routes, redirects and memberships of it, its descendants and
    every project under them, which name their source by type and id, without a foreign key."""
    subtree = await namespaces_db.namespace_subtree(conn, namespace_id)
    await routes_db.delete_routes_of(conn, subtree.namespace_ids, subtree.project_ids)
    await members_db.delete_memberships_of(conn, subtree.namespace_ids, subtree.project_ids)


# --- members -----------------------------------------------------------------------------------


async def _hold_source(conn: Conn, source_type: str, source_id: int) -> None:
    """The group or project a membership is added to, held until the transaction ends: its deletion
    (lock_namespace_subtree, lock_project) waits and then deletes the membership too, or came first
    and the group or project is gone (404)."""
    if source_type == "Project":
        if not await projects_db.hold_project(conn, source_id):
            raise Missing("Project")
        return
    await namespaces_db.lock_namespace_path(conn, source_id)
    if await namespaces_db.find_namespace(conn, source_id) is None:
        raise Missing("Group")


async def add_member(
    conn: Conn,
    source_type: str,
    source_id: int,
    *,
    user_id: int,
    access_level: int,
    expires_at: date | None,
    actor_id: int,
) -> MemberRow:
    async with conn.transaction():
        await _hold_source(conn, source_type, source_id)
        if await users_db.find_user(conn, user_id) is None:
            raise Missing("User")
        if expires_at is not None and expires_at <= date.today():
            raise Invalid({"expires_at": ["cannot be a date in the past"]})
        added = await members_db.insert_member(
            conn,
            user_id=user_id,
            source_type=source_type,
            source_id=source_id,
            access_level=access_level,
            expires_at=expires_at,
            created_by_id=actor_id,
        )
        if not added:
            raise Conflict("Member already exists")
        member = await members_db.find_member(conn, source_type, source_id, user_id)
    assert member is not None
    return member


async def update_member(
    conn: Conn,
    source_type: str,
    source_id: int,
    user_id: int,
    *,
    access_level: int,
    expires_at: date | None,
    expires_given: bool,
) -> MemberRow:
    async with conn.transaction():
        # the group or project held, as an addition holds it: a deletion that checks who owns it
        # (hard_delete) waits for a promotion to commit, and then sees it
        await _hold_source(conn, source_type, source_id)
        current = await members_db.find_member(conn, source_type, source_id, user_id)
        if current is None:
            raise Missing("Member")
        if source_type == "Namespace" and current.access_level == OWNER and access_level < OWNER:
            await _keep_an_owner(conn, source_id, user_id)
        if expires_given and expires_at is not None and expires_at <= date.today():
            raise Invalid({"expires_at": ["cannot be a date in the past"]})
        await members_db.update_member(
            conn,
            source_type,
            source_id,
            user_id,
            access_level=access_level,
            expires_at=expires_at if expires_given else current.expires_at,
        )
        member = await members_db.find_member(conn, source_type, source_id, user_id)
    assert member is not None
    return member


async def remove_member(conn: Conn, source_type: str, source_id: int, user_id: int) -> None:
    async with conn.transaction():
        current = await members_db.find_member(conn, source_type, source_id, user_id)
        if current is None:
            raise Missing("Member")
        if source_type == "Namespace" and current.access_level == OWNER:
            await _keep_an_owner(conn, source_id, user_id)
        if not await members_db.delete_member(conn, source_type, source_id, user_id):
            raise Missing("Member")


async def _keep_an_owner(conn: Conn, group_id: int, user_id: int) -> None:
    """GitLab's last-owner rule: the only owner of a group can be neither demoted nor removed."""
    await members_db.lock_group_owners(conn, group_id)
    if await members_db.other_group_owners(conn, group_id, user_id) == 0:
        raise Denied()


async def list_groups(conn: Conn, page: Page, *, search: str | None) -> Paged[NamespaceRow]:
    return await namespaces_db.list_groups(conn, search=search, limit=page.limit, offset=page.offset)


async def list_subgroups(conn: Conn, group: NamespaceRow, page: Page) -> Paged[NamespaceRow]:
    return await namespaces_db.list_subgroups(conn, group.id, limit=page.limit, offset=page.offset)


async def list_members(conn: Conn, source_type: str, source_id: int, page: Page) -> Paged[MemberRow]:
    return await members_db.list_members(conn, source_type, source_id, limit=page.limit, offset=page.offset)


async def member(conn: Conn, source_type: str, source_id: int, user_id: int) -> MemberRow:
    found = await members_db.find_member(conn, source_type, source_id, user_id)
    if found is None:
        raise Missing("Member")
    return found
