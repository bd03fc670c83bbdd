"""Default branch protection (Gitlab::Access::DefaultBranchProtection): who may push the first
branch into an empty project, and the protected-branch rule its default branch gets once pushed
(Projects::ProtectDefaultBranchService, protect_default_branch).

The setting is a hash: allowed_to_push and allowed_to_merge (lists of {"access_level": N}),
allow_force_push, developer_can_initial_push. The instance holds one; a group may hold its own for
the projects directly in it (Namespace#default_branch_protection_settings); a personal namespace
always takes the instance's. The deprecated integer setting (0-4) is still accepted and shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from service.db import protected_refs as protected_refs_db
from service.db.rows import Conn
from service.domain.permissions import ADMIN, DEVELOPER, MAINTAINER, NO_ACCESS
from service.domain.ref_matcher import wildcard_matches


def _levels(*levels: int) -> list[dict[str, int]]:
    return [{"access_level": level} for level in levels]


# Gitlab::Access::BranchProtection#to_hash of the deprecated integer (PROTECTION_NONE ... )
LEGACY_LEVELS: dict[int, dict[str, Any]] = {
    0: {"allowed_to_push": _levels(DEVELOPER), "allowed_to_merge": _levels(DEVELOPER), "allow_force_push": True},
    1: {"allowed_to_push": _levels(DEVELOPER), "allowed_to_merge": _levels(MAINTAINER), "allow_force_push": False},
    2: {"allowed_to_push": _levels(MAINTAINER), "allowed_to_merge": _levels(MAINTAINER), "allow_force_push": False},
    3: {"allowed_to_push": _levels(MAINTAINER), "allowed_to_merge": _levels(DEVELOPER), "allow_force_push": False},
    4: {
        "allowed_to_push": _levels(MAINTAINER),
        "allowed_to_merge": _levels(MAINTAINER),
        "allow_force_push": False,
        "developer_can_initial_push": True,
    },
}
LEGACY_FULLY_PROTECTED = 2


@dataclass(frozen=True)
class DefaultBranchProtection:
    allowed_to_push: tuple[int, ...]
    allowed_to_merge: tuple[int, ...]
    allow_force_push: bool
    developer_can_initial_push: bool

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> DefaultBranchProtection:
        def levels(key: str) -> tuple[int, ...]:
            return tuple(int(entry["access_level"]) for entry in settings.get(key) or ())

        return cls(
            levels("allowed_to_push"),
            levels("allowed_to_merge"),
            bool(settings.get("allow_force_push")),
            bool(settings.get("developer_can_initial_push")),
        )

    def protects(self) -> bool:
        """DefaultBranchProtection#any?: anything beyond "developers push, merge and force-push"."""
        if not self.allow_force_push:
            return True
        return any(level != DEVELOPER for level in self.allowed_to_push + self.allowed_to_merge)

    @property
    def developer_can_push(self) -> bool:
        return DEVELOPER in self.allowed_to_push

    @property
    def empty_project_protected(self) -> bool:
        """Project#default_branch_protected?: in an empty project every branch counts as protected
        (ProtectedBranch.protected?) unless developers may push to the default branch."""
        return not self.developer_can_push

    @property
    def developer_may_push_first(self) -> bool:
        """Project#initial_push_to_default_branch_allowed_for_developer?"""
        return self.developer_can_push or self.developer_can_initial_push

    @property
    def push_access_level(self) -> int:
        return _rule_level(self.allowed_to_push)

    @property
    def merge_access_level(self) -> int:
        return _rule_level(self.allowed_to_merge)

    def legacy_level(self) -> int:
        """The deprecated integer this setting stands for (the nearest one when it is none of the five)."""
        for level, settings in LEGACY_LEVELS.items():
            if DefaultBranchProtection.from_settings(settings) == self:
                return level
        if not self.protects():
            return 0
        if self.developer_can_push:
            return 1
        if self.developer_can_initial_push:
            return 4
        return 3 if DEVELOPER in self.allowed_to_merge else LEGACY_FULLY_PROTECTED


def _rule_level(levels: tuple[int, ...]) -> int:
    """ProtectDefaultBranchService#push_access_level / #merge_access_level: the first that applies of
    no one, developers, maintainers, else administrators."""
    for level in (NO_ACCESS, DEVELOPER, MAINTAINER):
        if level in levels:
            return level
    return ADMIN


def stored_setting(values: Mapping[str, Any]) -> dict[str, Any] | None:
    """The hash to store from an API call: its deprecated default_branch_protection integer,
    translated, when given (it replaces the hash, as NamespaceSettings' handle_default_branch_protection
    does), else its default_branch_protection_defaults."""
    legacy = values.get("default_branch_protection")
    if legacy is not None:
        return dict(LEGACY_LEVELS[legacy])
    given = values.get("default_branch_protection_defaults")
    return dict(given) if given is not None else None


def shown_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The API's pair of fields for an effective setting: the integer and the hash."""
    return {
        "default_branch_protection": DefaultBranchProtection.from_settings(settings).legacy_level(),
        "default_branch_protection_defaults": dict(settings),
    }


async def protect_default_branch(conn: Conn, project_id: int, branch: str) -> None:
    """Projects::ProtectDefaultBranchService: a protected-branch rule for the default branch with the
    setting's push and merge levels and force-push choice, unless the setting protects nothing or
    a rule already covers the branch (by its name or a wildcard). Call inside a transaction."""
    settings = await protected_refs_db.default_branch_protection(conn, project_id)
    if settings is None:
        return
    protection = DefaultBranchProtection.from_settings(settings)
    if not protection.protects():
        return
    if any(wildcard_matches(rule.name, branch) for rule in await protected_refs_db.list_protected_branches(conn, project_id)):
        return
    await protected_refs_db.insert_protected_branch(
        conn,
        project_id,
        branch,
        allow_force_push=protection.allow_force_push,
        levels=[("push", protection.push_access_level), ("merge", protection.merge_access_level)],
    )
