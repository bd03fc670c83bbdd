"""Who may read, download and push: GitLab's project policy reduced to what the git checks ask."""

from __future__ import annotations

from dataclasses import dataclass

# User states that BasePolicy's `blocked` condition covers: no API, no new tokens, no activation
BLOCKED_STATES = frozenset({"blocked", "ldap_blocked", "blocked_pending_approval"})

NO_ACCESS, MINIMAL, GUEST, PLANNER, REPORTER, DEVELOPER, MAINTAINER, OWNER, ADMIN = 0, 5, 10, 15, 20, 30, 40, 50, 60
PRIVATE, INTERNAL, PUBLIC = 0, 10, 20
# project_features levels
FEATURE_DISABLED, FEATURE_PRIVATE, FEATURE_ENABLED, FEATURE_PUBLIC = 0, 10, 20, 30


@dataclass(frozen=True)
class Viewer:
    """The actor as the policy sees it: a user (maybe admin or external), a deploy key, or nobody."""

    user_id: int | None
    admin: bool
    external: bool
    access_level: int  # highest membership in the project, 0 for none
    deploy_key_id: int | None = None
    deploy_key_enabled: bool = False  # the deploy key is enabled on this project
    deploy_key_can_push: bool = False
    # A deploy key's creator, when the creator may use git and read this project; None otherwise.
    # GitLab's DeployKeyAccess acts as that user for every change of a push: a key whose creator was
    # blocked, deleted or removed from a private project can no longer push changes.
    deploy_key_creator: Viewer | None = None


def acting_user(viewer: Viewer) -> Viewer | None:
    """The user whose rights a change of a push is checked with: the pusher, or a deploy key's creator."""
    if viewer.deploy_key_id is not None:
        return viewer.deploy_key_creator
    return viewer if viewer.user_id is not None else None


def can_read_project(viewer: Viewer, visibility: int) -> bool:
    if viewer.deploy_key_id is not None:
        # GitAccess#can_read_project?: the key's projects, or what anybody may read
        return viewer.deploy_key_enabled or visibility == PUBLIC
    if viewer.user_id is None:
        return visibility == PUBLIC
    if viewer.admin or viewer.access_level >= GUEST:
        return True
    return visibility == PUBLIC or (visibility == INTERNAL and not viewer.external)


def can_download(viewer: Viewer, visibility: int, feature_level: int, member_minimum: int = REPORTER) -> bool:
    """download_code, or download_wiki_code with the wiki's feature level and `member_minimum=GUEST`
    (guests may read a wiki, but not the code of a private project)."""
    if feature_level == FEATURE_DISABLED:
        return False
    if viewer.deploy_key_id is not None:
        # the key's projects; elsewhere only what anybody may download (guest_can_download?)
        return viewer.deploy_key_enabled or (visibility == PUBLIC and feature_level >= FEATURE_ENABLED)
    if viewer.user_id is not None:
        if viewer.admin or viewer.access_level >= member_minimum:
            return True
        if feature_level == FEATURE_PRIVATE:
            return False
        if viewer.access_level >= GUEST and visibility != PRIVATE:
            return True
        return visibility == PUBLIC or (visibility == INTERNAL and not viewer.external)
    return visibility == PUBLIC and feature_level >= FEATURE_ENABLED


def can_push_code(viewer: Viewer, feature_level: int) -> bool:
    """push_code (create_wiki for wikis): developers and up; deploy keys with write access."""
    if feature_level == FEATURE_DISABLED:
        return False
    if viewer.deploy_key_id is not None:
        return viewer.deploy_key_enabled and viewer.deploy_key_can_push
    return viewer.user_id is not None and (viewer.admin or viewer.access_level >= DEVELOPER)


# Gitlab::Access's project creation levels (Group#project_creation_level, default_project_creation)
NO_ONE_PROJECT_ACCESS, MAINTAINER_PROJECT_ACCESS, DEVELOPER_MAINTAINER_PROJECT_ACCESS = 0, 1, 2
ADMINISTRATOR_PROJECT_ACCESS, OWNER_PROJECT_ACCESS = 3, 4
# the least membership a level lets create projects (administrators: admins only; no one: nobody)
_PROJECT_CREATORS = {
    MAINTAINER_PROJECT_ACCESS: MAINTAINER,
    DEVELOPER_MAINTAINER_PROJECT_ACCESS: DEVELOPER,
    OWNER_PROJECT_ACCESS: OWNER,
}


def can_create_project_in(
    *,
    namespace_type: str,
    namespace_owner_id: int | None,
    user_id: int,
    user_admin: bool,
    access_level: int | None,
    project_creation_level: int,
    personal_projects_left: int,
) -> bool:
    """create_projects. A personal namespace (UserNamespacePolicy): its owner or an admin, while the
    user has projects left under their projects_limit. A group (GroupPolicy): by its project creation
    level; "no one" stops admins too, and no projects_limit applies."""
    if namespace_type == "User":
        return (user_admin or namespace_owner_id == user_id) and personal_projects_left > 0
    if project_creation_level == NO_ONE_PROJECT_ACCESS:
        return False
    if user_admin:
        return True
    minimum = _PROJECT_CREATORS.get(project_creation_level)
    return minimum is not None and (access_level or 0) >= minimum
