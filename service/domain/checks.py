"""Per-change checks of a real push (Gitlab::Checks::PushCheck, BranchCheck, TagCheck).

Each check is a small function that raises AccessDenied with GitLab's message. Questions only the
repository can answer (is this a force push? is this commit already on a protected branch?) go
through `RepositoryQuestions`; an answer of None means "unknown here" and the check is skipped.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import NamedTuple

from service.db.access import ProtectedRefRule
from service.domain.branch_protection import DefaultBranchProtection
from service.domain.errors import ERROR_MESSAGES, AccessDenied
from service.domain.ref_matcher import wildcard_matches
from service.domain.permissions import (
    ADMIN,
    DEVELOPER,
    GUEST,
    MAINTAINER,
    NO_ACCESS,
    Viewer,
    acting_user,
    can_push_code,
)

BLANK_SHAS = ("0" * 40, "0" * 64)
# How many changes are checked between two turns of the event loop
CHANGES_PER_TURN = 256
_HEX_BRANCH = re.compile(r"\A[0-9a-fA-F]{40}(-/|/|\Z)")
# TagCheck::STARTS_WITH_SHA_REGEX: anchored at the start only, so "<sha>-rc1" is refused too
_SHA_TAG = re.compile(r"\A(?:[0-9a-fA-F]{40}|[0-9a-fA-F]{64})")


class InvalidChanges(ValueError):
    pass


class Change(NamedTuple):
    oldrev: str
    newrev: str
    ref: str

    @property
    def creation(self) -> bool:
        return self.oldrev in BLANK_SHAS

    @property
    def deletion(self) -> bool:
        return self.newrev in BLANK_SHAS

    @property
    def update(self) -> bool:
        return not self.creation and not self.deletion

    @property
    def branch_name(self) -> str | None:
        return self.ref[len("refs/heads/") :] if self.ref.startswith("refs/heads/") else None

    @property
    def tag_name(self) -> str | None:
        return self.ref[len("refs/tags/") :] if self.ref.startswith("refs/tags/") else None

    @property
    def short_ref(self) -> str:
        return self.branch_name or self.tag_name or self.ref


def parse_changes(raw: str, *, strict: bool = True) -> list[Change]:
    """`<oldrev> <newrev> <ref>` lines, as Gitaly passes pre-receive's standard input.

    strict (/allowed): a malformed line refuses the whole list. Not strict (post_receive, which must
    answer 200 whatever it is sent): malformed lines are skipped.
    """
    changes = []
    for line in raw.splitlines():
        if not line.strip():
            continue
        parts = line.split()
        if not strict:
            if len(parts) == 3:
                changes.append(Change(*parts))
            continue
        if len(parts) != 3 or not all(re.fullmatch(r"[0-9a-fA-F]{40}|[0-9a-fA-F]{64}", p) for p in parts[:2]):
            raise InvalidChanges(line)
        changes.append(Change(*parts))
    return changes


@dataclass(frozen=True)
class AccessEntry:
    access_level: int | None
    user_id: int | None
    deploy_key_id: int | None


@dataclass
class ProtectedRule:
    name: str
    allow_force_push: bool = False
    entries: dict[str, list[AccessEntry]] = field(default_factory=dict)  # kind -> entries


@dataclass(frozen=True)
class ProtectedRefs:
    branches: list[ProtectedRule]
    tags: list[ProtectedRule]

    @classmethod
    def from_rows(cls, rows: list[ProtectedRefRule]) -> ProtectedRefs:
        branches: dict[str, ProtectedRule] = {}
        tags: dict[str, ProtectedRule] = {}
        for item in rows:
            target = branches if item.ref_kind == "branch" else tags
            rule = target.setdefault(item.name, ProtectedRule(item.name, item.allow_force_push))
            if item.kind is not None and (item.access_level, item.user_id, item.deploy_key_id) != (None, None, None):
                rule.entries.setdefault(item.kind, []).append(
                    AccessEntry(item.access_level, item.user_id, item.deploy_key_id)
                )
        return cls(list(branches.values()), list(tags.values()))


def matching(rules: list[ProtectedRule], name: str) -> list[ProtectedRule]:
    return [rule for rule in rules if wildcard_matches(rule.name, name)]


def entry_allows(entry: AccessEntry, viewer: Viewer) -> bool:
    """ProtectedRefAccess#check_access, for the acting user (a deploy key's creator for a deploy key)."""
    user = acting_user(viewer)
    if user is None:
        return False
    if entry.deploy_key_id is not None:
        # ProtectedRefDeployKeyAccess: the key, enabled with write access, its creator a member
        return (
            entry.deploy_key_id == viewer.deploy_key_id
            and viewer.deploy_key_can_push
            and viewer.deploy_key_enabled
            and user.access_level >= GUEST
        )
    if entry.user_id is not None:
        # user_access_allowed?: that user, while a member of the project
        return entry.user_id == user.user_id and user.access_level >= GUEST
    if entry.access_level is None or entry.access_level == NO_ACCESS:
        return False
    if entry.access_level == ADMIN:
        return user.admin
    # role_access_allowed?: push_code and a membership of at least the level (max_member_access: an
    # administrator who is not a member has none, so no administrator passes a role by being one)
    return user.access_level >= max(entry.access_level, DEVELOPER)


def rules_allow(rules: list[ProtectedRule], kind: str, viewer: Viewer) -> bool:
    return any(entry_allows(entry, viewer) for rule in rules for entry in rule.entries.get(kind, []))


@dataclass
class TimedLogger:
    """Gitlab::Checks::TimedLogger: the timing log a timed-out push shows."""

    lines: list[str] = field(default_factory=list)

    def note(self, message: str) -> None:
        self.lines.append(message)

    @contextmanager
    def timed(self, message: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        except BaseException as exc:
            if not isinstance(exc, AccessDenied):
                elapsed = (time.perf_counter() - started) * 1000
                self.lines.append(f"{message} (cancelled after {elapsed:.1f}ms)")
            raise
        self.lines.append(f"{message} ({(time.perf_counter() - started) * 1000:.1f}ms)")


@dataclass(frozen=True)
class RepositoryQuestions:
    """The repository's answers; each returns None when it cannot be asked here."""

    is_force_push: Callable[[str, str], Awaitable[bool | None]]
    commit_on_branches: Callable[[str, list[str]], Awaitable[bool | None]]


@dataclass(frozen=True)
class ChangeContext:
    viewer: Viewer
    default_branch: str | None
    protocol: str | None
    feature_level: int
    refs: ProtectedRefs
    repository: RepositoryQuestions
    project_full_path: str = ""
    project_members_url: str = ""
    # the project's default branch protection, read only while it is empty (no default branch)
    empty_project_protection: DefaultBranchProtection | None = None


def _protected(ctx: ChangeContext, rules: list[ProtectedRule]) -> bool:
    """ProtectedBranch.protected?: a rule matches the branch, or the project is empty and its
    default branch protection keeps developers from pushing (every branch name counts then)."""
    if rules:
        return True
    protection = ctx.empty_project_protection
    return ctx.default_branch is None and protection is not None and protection.empty_project_protected


def _deny(key: str) -> AccessDenied:
    return AccessDenied(ERROR_MESSAGES[key])


def can_push_changes(viewer: Viewer, feature_level: int) -> bool:
    """UserAccess#can_push_to_branch?'s first condition; for a deploy key (DeployKeyAccess), a key
    with write access whose creator may still use git and read the project."""
    if not can_push_code(viewer, feature_level):
        return False
    return viewer.deploy_key_id is None or viewer.deploy_key_creator is not None


def push_check(change: Change, ctx: ChangeContext) -> None:
    if not can_push_changes(ctx.viewer, ctx.feature_level):
        raise _deny("push_code")


def can_push_to_branch(ctx: ChangeContext, rules: list[ProtectedRule]) -> bool:
    if not can_push_changes(ctx.viewer, ctx.feature_level):
        return False
    if not _protected(ctx, rules):
        return True
    # ProtectedBranch.protected_ref_accessible_to?: into an empty repository, administrators and
    # those who may admin the project (maintainers and owners) push whatever the rules say, and a
    # developer (exactly) when the default branch protection lets developers push first
    user = acting_user(ctx.viewer)
    if ctx.default_branch is None and user is not None:
        if _has_role(user, MAINTAINER):
            return True
        protection = ctx.empty_project_protection
        if user.access_level == DEVELOPER and protection is not None and protection.developer_may_push_first:
            return True
    return rules_allow(rules, "push", ctx.viewer)


def can_merge_to_branch(ctx: ChangeContext, rules: list[ProtectedRule]) -> bool:
    return not rules or rules_allow(rules, "merge", ctx.viewer)


async def branch_check(change: Change, ctx: ChangeContext, logger: TimedLogger) -> None:
    branch = change.branch_name
    if branch is None:
        return
    from_web = ctx.protocol == "web"
    with logger.timed("Checking if default branch is being deleted..."):
        if change.deletion and branch == ctx.default_branch:
            raise _deny("delete_default_branch")
    if not change.deletion and _HEX_BRANCH.match(branch):
        raise _deny("prohibited_hex_branch_name")
    rules = matching(ctx.refs.branches, branch)
    if not _protected(ctx, rules):
        return
    with logger.timed("Checking if you are force pushing to a protected branch..."):
        if change.update and not any(rule.allow_force_push for rule in rules):
            if await ctx.repository.is_force_push(change.oldrev, change.newrev):
                raise _deny("force_push_protected_branch")
    # BranchCheck#protected_branch_checks: into an empty repository (no default branch yet) every
    # change takes the push checks, whose refusal says that the default branch does not exist yet
    empty_repository = ctx.default_branch is None
    if change.deletion and not empty_repository:
        with logger.timed("Checking if you are allowed to delete the protected branch..."):
            if not _has_role(acting_user(ctx.viewer), MAINTAINER):  # push_to_delete_protected_branch
                raise _deny("non_master_delete_protected_branch")
            if not from_web:
                raise _deny("non_web_delete_protected_branch")
        return
    if change.creation and not empty_repository:
        with logger.timed("Checking if you are allowed to create a protected branch..."):
            if can_push_to_branch(ctx, rules):
                return
            if not can_merge_to_branch(ctx, rules):
                raise _deny("create_protected_branch")
            patterns = [rule.name for rule in ctx.refs.branches]
            if await ctx.repository.commit_on_branches(change.newrev, patterns) is False:
                raise _deny("invalid_commit_create_protected_branch")
            if not from_web:
                raise _deny("non_web_create_protected_branch")
        return
    with logger.timed("Checking if you are allowed to push to the protected branch..."):
        if not can_push_to_branch(ctx, rules):
            if empty_repository:
                raise AccessDenied(empty_repository_message(ctx))
            raise _deny("push_protected_branch")


def empty_repository_message(ctx: ChangeContext) -> str:
    return (
        f"A default branch (e.g. main) does not yet exist for {ctx.project_full_path}\n"
        "Ask a project Owner or Maintainer to create a default branch:\n\n"
        f"  {ctx.project_members_url}\n"
    )


async def tag_check(change: Change, ctx: ChangeContext, logger: TimedLogger) -> None:
    tag = change.tag_name
    if tag is None:
        return
    # TagCheck#validate!'s order: existing tags, the default branch's name, the name, protection
    with logger.timed("Checking if you are allowed to change existing tags..."):
        # A tag exists when the change line's old value is not the blank sha; changing one takes
        # admin_tag (developers and up), a deploy key's creator's for a deploy key.
        user = acting_user(ctx.viewer)
        if not change.creation and not _has_role(user, DEVELOPER):
            raise _deny("change_existing_tags")
    if change.creation and tag == ctx.default_branch:
        raise _deny("default_branch_collision")
    if not change.deletion:  # prohibited_tag_checks: a moved tag's name too
        if tag.startswith("refs/tags/") or not valid_ref_name(tag):
            raise _deny("prohibited_tag_name")
        if _SHA_TAG.match(tag):
            raise _deny("prohibited_sha_tag_name")
    rules = matching(ctx.refs.tags, tag)
    if not rules:
        return
    with logger.timed("Checking if you are creating, updating or deleting a protected tag..."):
        if change.update:
            raise _deny("update_protected_tag")
        if change.deletion:
            if not _has_role(user, MAINTAINER):
                raise _deny("delete_protected_tag")
            if ctx.protocol != "web":
                raise _deny("delete_protected_tag_non_web")
            return
        if not rules_allow(rules, "create", ctx.viewer):
            raise _deny("create_protected_tag")


def _has_role(user: Viewer | None, minimum: int) -> bool:
    return user is not None and (user.admin or user.access_level >= minimum)


def valid_ref_name(name: str) -> bool:
    """git check-ref-format's main rules."""
    if not name or name.startswith(("-", "/")) or name.endswith(("/", ".", ".lock")):
        return False
    if ".." in name or "@{" in name or "//" in name or name == "@":
        return False
    return not any(ch in name for ch in " ~^:?*[\\\x7f") and all(ord(ch) >= 32 for ch in name)


async def check_changes(changes: list[Change], ctx: ChangeContext, logger: TimedLogger) -> None:
    """Gitlab::Checks::ChangesAccess: every change, in order; the first failure wins."""
    for number, change in enumerate(changes, 1):
        if number % CHANGES_PER_TURN == 0:
            # a long list (one push may carry 100,000 refs) must not hold the worker's loop: the
            # push's deadline and the other requests get a turn between these
            await asyncio.sleep(0)
        logger.note(f"Running checks for ref: {change.short_ref}")
        with logger.timed("Checking if you are allowed to push..."):
            push_check(change, ctx)
        await branch_check(change, ctx, logger)
        await tag_check(change, ctx, logger)
