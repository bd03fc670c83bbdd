"""Gitlab::GitAccess: may this actor run this git command on this repository?

`check_access` is the fixed pipeline of GitLab's `check_*` steps over one gathered context row; it
does no I/O and raises. `allowed_answer` does the I/O around it: one query for the context (with the
rate-limit count in parallel), auto-creating a project on push, and the change checks of a real
push under the 50-second deadline.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, NamedTuple

import orjson
from asyncpg import UniqueViolationError

from service.db.rows import Pool
from service.config import Settings
from service.db import access as access_db
from service.db import projects as projects_db
from service.db import protected_refs as protected_refs_db
from service.db import users as users_db
from service.db.access import AccessContextRow, ContextLookup
from service.db.batch import BatchLoader
from service.db.post_receive import PostReceiveContext
from service.domain import checks
from service.domain.actors import ActorRef, RepositoryRef
from service.domain.app_settings import AppSettings
from service.domain.branch_protection import DefaultBranchProtection
from service.domain.ids import as_id
from service.domain.errors import (
    ERROR_MESSAGES,
    TIMEOUT_HEADER,
    AccessDenied,
    AccessTimeout,
    Missing,
    NotFound,
    ProjectCreationError,
    RateLimited,
)
from service.domain.permissions import (
    GUEST,
    REPORTER,
    Viewer,
    can_create_project_in,
    can_download,
    can_push_code,
    can_read_project,
)
from service.domain.rate_limit import ShellOperationLimiter
from service.domain.reference_counter import created_key, moved_key, store_notice
from service.domain.repository import RepositoryInspector, gitaly_repository, hashed_disk_path
from service.domain.ssh_keys import TECHNOLOGIES, restriction_error
from service.domain.urls import InstanceUrls
from service.redis_store import RedisError, RedisStore
from service.rendered import KeptBodies

log = logging.getLogger("gitlab_internal_api.git_access")

ANY = "_any"
DOWNLOAD_COMMANDS = frozenset({"git-upload-pack", "git-upload-archive"})
PUSH_COMMANDS = frozenset({"git-receive-pack"})
ALL_COMMANDS = DOWNLOAD_COMMANDS | PUSH_COMMANDS
KEY_EXPIRES_SOON = timedelta(days=7)
EXPIRING_SOON_MESSAGE = "INFO: Your SSH key is expiring soon. Please generate a new key."
# User#internal? types: they can never use git.
INTERNAL_USER_TYPES = frozenset(
    {
        "ghost",
        "support_bot",
        "alert_bot",
        "visual_review_bot",
        "migration_bot",
        "security_bot",
        "automation_bot",
        "security_policy_bot",
        "admin_bot",
        "suggested_reviewers_bot",
        "llm_bot",
        "duo_code_review_bot",
        "placeholder",
        "import_user",
    }
)
_PROJECT_PATH_RULE = (
    "Path can contain only letters, digits, '_', '-' and '.'. Cannot start with '-', end in '.git' or end in '.atom'"
)


class AllowedRequest(NamedTuple):
    action: str | None
    protocol: str | None
    changes: str | None
    actor: ActorRef
    repository: RepositoryRef
    raw_project: str  # the `project` parameter as sent: GitLab's rate-limit scope uses it
    hook_env: Mapping[str, Any]
    # gitaly_client_context_bin's `scoped-user-id`: the user a composite identity acts for
    scoped_user_id: Any = None


@dataclass(frozen=True)
class Verdict:
    console_messages: list[str]
    create_project: bool = False
    run_change_checks: bool = False
    viewer: Viewer | None = None  # whom the change checks check, when they run


@dataclass(frozen=True)
class Granted:
    ctx: AccessContextRow
    repo_type: str
    console_messages: list[str]
    # None when the call wrote something (a project, a notice, an activity stamp); otherwise the
    # first moment at which the same context could be answered differently
    same_until: datetime | None = None


@dataclass(frozen=True)
class AccessDeps:
    pool: Pool
    redis: RedisStore
    limiter: ShellOperationLimiter
    inspector: RepositoryInspector
    settings: Settings
    urls: InstanceUrls
    contexts: BatchLoader[ContextLookup, AccessContextRow]
    # /allowed's 200 bodies, kept with the context row and settings they were computed from
    # (allowed_answer): never older than the row the checks would read, and only until _same_verdict_until
    answers: KeptBodies = field(default_factory=KeptBodies)


def settled_project(ctx: AccessContextRow | PostReceiveContext) -> bool:
    """A context the loaders may remember (/allowed's and post_receive's, lookup_cache_seconds): its
    project exists and has had its first push. Until then a push creates it or sets its default
    branch, and the next call must read that."""
    return ctx.project_id is not None and ctx.default_branch is not None


def is_deploy_key(ctx: AccessContextRow) -> bool:
    return ctx.key_class == "DeployKey"


def viewer_of(ctx: AccessContextRow, app: AppSettings, urls: InstanceUrls, now: datetime) -> Viewer:
    user = Viewer(
        user_id=ctx.user_id,
        admin=bool(ctx.user_admin),
        external=bool(ctx.user_external),
        access_level=ctx.access_level or 0,
    )
    if not is_deploy_key(ctx):
        return user
    # A deploy key's row carries its creator as the user (keys.user_id; none once the creator was
    # deleted). DeployKeyAccess checks the changes of a push as the creator: one who may use git
    # (UserAccess#can_access_git?: the same refusals as a pushing user's) and may read the project.
    creator_usable = (
        ctx.user_id is not None
        and user_rejection(ctx, app, urls, now) is None
        and can_read_project(user, ctx.visibility_level or 0)
    )
    return Viewer(
        user_id=None,
        admin=False,
        external=False,
        access_level=0,
        deploy_key_id=ctx.key_id,
        deploy_key_enabled=ctx.deploy_key_can_push is not None,
        deploy_key_can_push=bool(ctx.deploy_key_can_push),
        deploy_key_creator=user if creator_usable else None,
    )


def check_protocol(protocol: str | None, app: AppSettings) -> None:
    allowed = app.enabled_git_access_protocol or ""
    if protocol == "web" or not allowed:
        return
    if protocol != allowed:
        raise AccessDenied(f"Git access over {(protocol or '').upper()} is not allowed")


def check_valid_actor(ctx: AccessContextRow, app: AppSettings, now: datetime) -> None:
    if ctx.key_id is None:
        return
    technology = TECHNOLOGIES.get(ctx.key_type or "")
    if technology is not None:
        problem = restriction_error(technology, ctx.key_bits or 0, app.key_restrictions)
        if problem:
            raise AccessDenied(f"Your SSH key {problem}.")
    if ctx.key_expires_at is not None and ctx.key_expires_at <= now:
        raise AccessDenied(ERROR_MESSAGES["key_expired"])


def user_rejection(ctx: AccessContextRow, app: AppSettings, urls: InstanceUrls, now: datetime) -> str | None:
    """Gitlab::Auth::UserAccessDeniedReason#rejection_message, in its priority order."""
    if ctx.user_type in INTERNAL_USER_TYPES:
        return ERROR_MESSAGES["internal_user"]
    if ctx.user_state == "blocked_pending_approval":
        return ERROR_MESSAGES["blocked_pending_approval"]
    if app.enforce_terms and not ctx.user_terms_accepted and ctx.user_type == "human":
        return (
            f"You (@{ctx.username}) must accept the Terms of Service in order to perform this action. "
            f"To accept these terms, please access GitLab from a web browser at {urls.base}."
        )
    if ctx.user_state == "deactivated":
        return (
            "Your account has been deactivated by your administrator. "
            f"Please log back in from a web browser to reactivate your account at {urls.base}"
        )
    if app.email_confirmation_setting == "hard" and not ctx.user_confirmed:
        return (
            "Your primary email address is not confirmed. Please check your inbox for the confirmation "
            "instructions. In case the link is expired, you can request a new confirmation email at "
            f"{urls.base}/users/confirmation/new"
        )
    if ctx.user_state in ("blocked", "ldap_blocked"):
        return ERROR_MESSAGES["blocked"]
    if ctx.user_password_expires_at is not None and ctx.user_password_expires_at <= now:
        return ERROR_MESSAGES["password_expired"]
    return None


def _not_found_message(repo_type: str) -> str:
    if repo_type == "snippet":
        return "The snippet you were looking for could not be found."
    if repo_type in ("wiki", "group_wiki"):
        return "The wiki you were looking for could not be found."
    return ERROR_MESSAGES["project_not_found"]


def check_access(
    ctx: AccessContextRow, req: AllowedRequest, app: AppSettings, urls: InstanceUrls, now: datetime
) -> Verdict:
    """The GitAccess pipeline, steps in GitLab's order; raises AccessDenied or NotFound."""
    check_protocol(req.protocol, app)
    check_valid_actor(ctx, app, now)
    has_user = ctx.user_id is not None and not is_deploy_key(ctx)
    if has_user:
        rejection = user_rejection(ctx, app, urls, now)
        if rejection:
            raise AccessDenied(rejection)
    if req.action not in ALL_COMMANDS:
        raise AccessDenied(ERROR_MESSAGES["command_not_allowed"])
    repo_type = req.repository.repo_type
    if repo_type == "design" and req.protocol != "web":
        raise AccessDenied("Designs are only accessible using the web interface")
    pushing = req.action in PUSH_COMMANDS
    viewer = viewer_of(ctx, app, urls, now)

    if ctx.project_id is None or repo_type not in ("project", "wiki"):
        if repo_type == "project" and req.repository.container_id is None and req.repository.namespace_path is None:
            raise NotFound(ERROR_MESSAGES["namespace_not_found"])
        if repo_type == "project" and pushing and req.changes == ANY and has_user and ctx.project_id is None:
            if req.repository.path is not None and req.repository.namespace_path is not None:
                return Verdict([], create_project=True)
        raise NotFound(_not_found_message(repo_type))
    visibility = ctx.visibility_level or 0
    if not can_read_project(viewer, visibility):
        raise NotFound(_not_found_message(repo_type))
    if repo_type == "project" and not ctx.repository_exists:
        raise NotFound(ERROR_MESSAGES["no_repo"])

    feature = (ctx.wiki_access_level if repo_type == "wiki" else ctx.repository_access_level) or 0
    console: list[str] = []
    if ctx.key_id is not None and ctx.key_expires_at is not None and ctx.key_expires_at - now <= KEY_EXPIRES_SOON:
        console.append(EXPIRING_SOON_MESSAGE)

    if not pushing:
        minimum = GUEST if repo_type == "wiki" else REPORTER
        if not can_download(viewer, visibility, feature, minimum):
            raise AccessDenied(ERROR_MESSAGES["download"])
        return Verdict(console)

    if ctx.repository_read_only:
        raise AccessDenied(ERROR_MESSAGES["read_only"])
    if ctx.archived:
        raise AccessDenied(ERROR_MESSAGES["archived"])
    if viewer.deploy_key_id is not None:
        if not (viewer.deploy_key_enabled and viewer.deploy_key_can_push):
            raise AccessDenied(ERROR_MESSAGES["deploy_key_upload"])
    elif not has_user:
        raise AccessDenied(ERROR_MESSAGES["upload"])
    if repo_type == "wiki":
        if not can_push_code(viewer, feature):
            raise AccessDenied(ERROR_MESSAGES["write_to_wiki"])
        return Verdict(console)
    if req.changes == ANY:
        if not can_push_code(viewer, feature):
            raise AccessDenied(ERROR_MESSAGES["push_code"])
        return Verdict(console)
    return Verdict(console, run_change_checks=True, viewer=viewer)


def context_lookup(req: AllowedRequest, project_id: int | None = None) -> ContextLookup:
    actor, repo = req.actor, req.repository
    wanted_id = project_id if project_id is not None else repo.container_id
    by_project = repo.repo_type in ("project", "wiki")
    path = repo.path if wanted_id is None and by_project else None
    # Lower case, as the query compares them: case variants of one path are one remembered answer.
    return ContextLookup(
        key_id=actor.key_id,
        user_id=actor.user_id,
        username=actor.username.lower() if actor.username is not None else None,
        owner_of_key_id=actor.owner_of_key_id,
        project_id=wanted_id if by_project else None,
        project_path=path.lower() if path is not None else None,
    )


async def _create_project(deps: AccessDeps, ctx: AccessContextRow, req: AllowedRequest, app: AppSettings) -> int:
    """Auto-create a private project on the first push to a path that does not exist yet."""
    assert req.repository.path is not None and ctx.user_id is not None
    namespace_path, project_path = req.repository.path.rsplit("/", 1)
    async with deps.pool.acquire() as conn:
        namespace = await access_db.namespace_for_creation(conn, namespace_path, ctx.user_id)
        if namespace is None:
            raise NotFound(ERROR_MESSAGES["project_not_found"])
        allowed = can_create_project_in(
            namespace_type=namespace.type,
            namespace_owner_id=namespace.owner_id,
            user_id=ctx.user_id,
            user_admin=bool(ctx.user_admin),
            access_level=namespace.access_level,
            project_creation_level=namespace.project_creation_level,
            personal_projects_left=(namespace.projects_limit or 0) - namespace.personal_projects,
        )
        if not allowed:
            raise NotFound(ERROR_MESSAGES["project_not_found"])
        if not _valid_project_path(project_path):
            raise ProjectCreationError(f"Could not create project: {_PROJECT_PATH_RULE}")
        try:
            async with conn.transaction():
                project_id = await projects_db.insert_project(
                    conn,
                    name=project_path,
                    path=project_path,
                    namespace_id=namespace.id,
                    namespace_full_path=namespace.full_path,
                    creator_id=ctx.user_id,
                    default_branch=None,
                )
        except UniqueViolationError:
            raise ProjectCreationError("Could not create project: Path has already been taken") from None
    full_path = f"{namespace.full_path}/{project_path}"
    message = deps.urls.project_created_message(full_path, req.protocol)
    await _store_notice(deps, created_key(ctx.user_id, f"project-{project_id}"), message)
    return project_id


async def _store_notice(deps: AccessDeps, key: str, message: str) -> None:
    """A notice for the pusher's post-receive; losing it must not deny the git operation."""
    try:
        await store_notice(deps.redis, key, message)
    except RedisError:
        pass  # the store logged it


def _valid_project_path(path: str) -> bool:
    return bool(re.fullmatch(r"[a-zA-Z0-9_][a-zA-Z0-9_.-]*", path)) and not path.endswith((".git", ".atom"))


async def _run_change_checks(deps: AccessDeps, ctx: AccessContextRow, req: AllowedRequest, viewer: Viewer) -> None:
    """Gitlab::Checks::ChangesAccess under the deadline; past it, everything in flight is cancelled."""
    try:
        changes = checks.parse_changes(req.changes or "")
    except checks.InvalidChanges as exc:
        raise AccessDenied(f"Invalid change line: {exc}") from None
    assert ctx.project_id is not None
    storage = ctx.repository_storage or "default"
    relative = (ctx.legacy_disk_path or hashed_disk_path(ctx.project_id)) + ".git"
    inspector, env = deps.inspector, req.hook_env

    async def is_force_push(oldrev: str, newrev: str) -> bool | None:
        return await inspector.is_force_push(storage, relative, env, oldrev, newrev)

    async def commit_on_branches(sha: str, patterns: list[str]) -> bool | None:
        return await inspector.commit_on_branches(storage, relative, env, sha, patterns)

    logger = checks.TimedLogger()
    try:
        async with asyncio.timeout(deps.settings.allowed_timeout):
            async with deps.pool.acquire() as conn:
                with logger.timed("Loading protected branches and tags..."):
                    rules = await access_db.protected_ref_rules(conn, ctx.project_id)
                    protection = None
                    if ctx.default_branch is None:  # an empty project: its default branch protection applies
                        settings = await protected_refs_db.default_branch_protection(conn, ctx.project_id)
                        protection = None if settings is None else DefaultBranchProtection.from_settings(settings)
            change_ctx = checks.ChangeContext(
                viewer=viewer,
                default_branch=ctx.default_branch,
                protocol=req.protocol,
                feature_level=ctx.repository_access_level or 0,
                refs=checks.ProtectedRefs.from_rows(rules),
                repository=checks.RepositoryQuestions(is_force_push, commit_on_branches),
                project_full_path=ctx.project_full_path or "",
                project_members_url=f"{deps.urls.base}/{ctx.project_full_path}/-/project_members",
                empty_project_protection=protection,
            )
            await checks.check_changes(changes, change_ctx, logger)
    except TimeoutError:
        log.warning("push checks timed out after %ss for project %s", deps.settings.allowed_timeout, ctx.project_id)
        raise AccessTimeout("\n".join([TIMEOUT_HEADER, *logger.lines])) from None


async def _context_within_limit(
    deps: AccessDeps, req: AllowedRequest, app: AppSettings, lookup: ContextLookup
) -> AccessContextRow:
    """The context row, after the rate limiter counted this call (RateLimited past its limit)."""
    # The context query and the rate-limit count are independent: both are in flight together.
    pending_context = deps.contexts.submit(lookup)
    try:
        throttled = await deps.limiter.throttled(
            app.gitlab_shell_operation_limit, req.action or "", req.raw_project, req.actor.scope
        )
    finally:
        ctx = await pending_context
    if throttled:
        raise RateLimited()
    return ctx


async def allowed_answer(deps: AccessDeps, req: AllowedRequest, app: AppSettings) -> bytes:
    """POST /internal/allowed: the whole decision and its 200 body, encoded (reference 3.1.1);
    a denial raises a domain error.

    Every call is counted by the rate limiter and reads its context through the loader. A granted
    answer that wrote nothing is kept (deps.answers) and served again while the loader serves that
    very context row and the settings are the same object, until the first moment at which the
    checks could decide otherwise (a key or password expiry, the next day's activity stamp).
    """
    if req.scoped_user_id is not None:
        await _require_scoped_user(deps.pool, req.scoped_user_id)
    lookup = context_lookup(req)
    ctx = await _context_within_limit(deps, req, app, lookup)
    now = datetime.now(timezone.utc)
    answer_key = (lookup, req.action, req.protocol, req.repository.repo_type, req.changes == ANY)
    kept = deps.answers.get(answer_key, (ctx, app), now)
    if kept is not None:
        return kept
    granted = await _grant(deps, ctx, req, app, now)
    body = orjson.dumps(success_payload(granted, req.action, app, deps.settings))
    if granted.same_until is not None:
        deps.answers.keep(answer_key, (ctx, app), body, until=granted.same_until)
    return body


async def _require_scoped_user(pool: Pool, scoped_user_id: Any) -> None:
    """The user Gitaly's client context names must exist: GitLab links the composite identity to
    it, and answers 404 when there is none (an id that is no number names no user either)."""
    user_id = as_id(scoped_user_id, lenient=True)
    if user_id is not None:
        async with pool.acquire() as conn:
            if await users_db.find_user_by_id(conn, user_id) is not None:
                return
    raise Missing(f"User ID {str(scoped_user_id)[:64]} not found")


async def _grant(
    deps: AccessDeps, ctx: AccessContextRow, req: AllowedRequest, app: AppSettings, now: datetime
) -> Granted:
    """The GitAccess checks over a context row, and what a granted call writes."""
    verdict = check_access(ctx, req, app, deps.urls, now)
    if verdict.create_project:
        project_id = await _create_project(deps, ctx, req, app)
        ctx = await deps.contexts.load(context_lookup(req, project_id))
        verdict = check_access(ctx, req, app, deps.urls, now)
    repo_type = req.repository.repo_type
    if verdict.run_change_checks:
        assert verdict.viewer is not None
        await _run_change_checks(deps, ctx, req, verdict.viewer)
    wrote = verdict.create_project or verdict.run_change_checks
    if ctx.redirected_from and ctx.user_id is not None and not is_deploy_key(ctx):
        message = deps.urls.project_moved_message(ctx.redirected_from, _gl_project_path(ctx, repo_type), req.protocol)
        key = moved_key(ctx.user_id, gl_repository(ctx, repo_type))
        await _store_notice(deps, key, message)
        wrote = True
    # log_user_activity(actor.user): a deploy key's clone counts for its creator (the row's user), so
    # that dormant-user deactivation does not take an account whose key is in use
    stamps_activity = req.action in DOWNLOAD_COMMANDS and ctx.user_id is not None
    today = date.today()  # read once: the stamp and the kept answer's bound agree on the day
    if stamps_activity and ctx.user_id is not None:
        if ctx.user_last_activity_on is None or ctx.user_last_activity_on < today:
            async with deps.pool.acquire() as conn:
                await access_db.touch_user_activity(conn, ctx.user_id)
            wrote = True
    same_until = None if wrote else _same_verdict_until(ctx, now, today if stamps_activity else None)
    return Granted(ctx, repo_type, verdict.console_messages, same_until)


def _same_verdict_until(ctx: AccessContextRow, now: datetime, stamped_on: date | None) -> datetime:
    """The first moment at which check_access and the activity stamp could treat this context
    differently from `now`: the key's "expiring soon" notice and its expiry, the password's expiry,
    and (for a download) the next day, when the user's activity is stamped again."""
    moments = [datetime.max.replace(tzinfo=timezone.utc)]
    if ctx.key_id is not None and ctx.key_expires_at is not None:
        moments += [ctx.key_expires_at - KEY_EXPIRES_SOON, ctx.key_expires_at]
    if ctx.user_password_expires_at is not None:
        moments.append(ctx.user_password_expires_at)
    if stamped_on is not None:
        # the activity day is the local date: its next midnight, as an aware time
        moments.append(datetime.combine(stamped_on + timedelta(days=1), datetime.min.time()).astimezone())
    return min((moment for moment in moments if moment > now), default=now)


def gl_repository(ctx: AccessContextRow, repo_type: str) -> str:
    return f"{repo_type}-{ctx.project_id}"


def _gl_project_path(ctx: AccessContextRow, repo_type: str) -> str:
    suffix = ".wiki" if repo_type == "wiki" else ""
    return f"{ctx.project_full_path}{suffix}"


def git_config_options(app: AppSettings) -> list[str]:
    options = ["uploadpack.allowFilter=true", "uploadpack.allowAnySHA1InWant=true"]
    if app.receive_max_input_size > 0:
        options.append(f"receive.maxInputSize={app.receive_max_input_size * 1048576}")
    return options


def success_payload(granted: Granted, action: str | None, app: AppSettings, settings: Settings) -> dict[str, Any]:
    """The 200 body of /allowed (reference 3.1.1): nil values left out, integers as numbers."""
    ctx, repo_type = granted.ctx, granted.repo_type
    assert ctx.project_id is not None
    repository = gl_repository(ctx, repo_type)
    project_path = _gl_project_path(ctx, repo_type)
    payload: dict[str, Any] = {
        "status": True,
        "gl_repository": repository,
        "gl_project_path": project_path,
        "gl_project_id": ctx.project_id,
        "gl_root_namespace_id": ctx.root_namespace_id,
        "gl_id": f"user-{ctx.user_id}" if ctx.user_id is not None else "",
        "gl_username": ctx.username,
        "git_config_options": git_config_options(app),
    }
    if action in ALL_COMMANDS:
        storage_name = ctx.repository_storage or "default"
        storage = settings.storages.get(storage_name)
        if storage is None:
            raise RuntimeError(f"repository storage {storage_name!r} is not configured")
        payload["gitaly"] = {
            "repository": gitaly_repository(
                storage_name, ctx.project_id, ctx.legacy_disk_path, repository, project_path, wiki=repo_type == "wiki"
            ),
            "address": storage.gitaly_address,
            "token": storage.gitaly_token,
            "features": {},
        }
    payload["gl_console_messages"] = granted.console_messages
    payload["need_audit"] = False
    if ctx.key_id is not None:
        payload["gl_key_type"] = "deploy_key" if is_deploy_key(ctx) else "key"
        payload["gl_key_id"] = ctx.key_id
    return {key: value for key, value in payload.items() if value is not None}
