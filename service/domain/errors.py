"""The one domain error hierarchy, with GitLab's exact message texts.

The domain raises these and knows no HTTP: service/errors.py (the error middleware) is the one place
that renders each kind in GitLab's JSON shape and status. The kinds are named after the GitLab helper
whose answer they stand for (lib/api/helpers.rb: render_validation_error!, conflict!, not_found!,
forbidden!, bad_request!, render_api_error!; Grape's parameter errors).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ParamSpec, TypeVar

from asyncpg import UniqueViolationError

ERROR_MESSAGES = {
    # Gitlab::GitAccess
    "upload": "You are not allowed to upload code for this project.",
    "download": "You are not allowed to download code from this project.",
    "auth_upload": "You are not allowed to upload code.",
    "auth_download": "You are not allowed to download code.",
    "deploy_key_upload": "This deploy key does not have write access to this project.",
    "no_repo": "A repository for this project does not exist yet.",
    "project_not_found": "The project you were looking for could not be found or you don't have permission to view it.",
    "namespace_not_found": "The namespace you were looking for could not be found.",
    "command_not_allowed": "The command you're trying to execute is not allowed.",
    "read_only": "The repository is temporarily read-only. Please try again later.",
    "archived": "You can't push code to an archived project.",
    "cannot_push_to_read_only": "You can't push code to a read-only GitLab instance.",
    "push_code": "You are not allowed to push code to this project.",
    "key_expired": "Your SSH key has expired.",
    # Gitlab::GitAccessWiki
    "write_to_wiki": "You are not allowed to write to this project's wiki.",
    # Gitlab::Auth::UserAccessDeniedReason
    "internal_user": "This action cannot be performed by internal users",
    "blocked_pending_approval": "Your account is pending approval from your administrator and hence blocked.",
    "blocked": "Your account has been blocked.",
    "password_expired": "Your password expired. Please access GitLab from a web browser to update your password.",
    # Gitlab::Checks::BranchCheck
    "delete_default_branch": "The default branch of a project cannot be deleted.",
    "force_push_protected_branch": "You are not allowed to force push code to a protected branch on this project.",
    "non_master_delete_protected_branch": (
        "You are not allowed to delete protected branches from this project. "
        "Only a project maintainer or owner can delete a protected branch."
    ),
    "non_web_delete_protected_branch": "You can only delete protected branches using the web interface.",
    "merge_protected_branch": "You are not allowed to merge code into protected branches on this project.",
    "push_protected_branch": "You are not allowed to push code to protected branches on this project.",
    "create_protected_branch": "You are not allowed to create protected branches on this project.",
    "invalid_commit_create_protected_branch": (
        "You can only use an existing protected branch ref as the basis of a new protected branch."
    ),
    "non_web_create_protected_branch": "You can only create protected branches using the web interface and API.",
    "prohibited_hex_branch_name": "You cannot create a branch with a 40-character hexadecimal branch name.",
    # Gitlab::Checks::TagCheck
    "change_existing_tags": "You are not allowed to change existing tags on this project.",
    "update_protected_tag": "Protected tags cannot be updated.",
    "delete_protected_tag": (
        "You are not allowed to delete protected tags from this project. "
        "Only a project maintainer or owner can delete a protected tag."
    ),
    "delete_protected_tag_non_web": "You can only delete protected tags using the web interface.",
    "create_protected_tag": "You are not allowed to create this tag as it is protected.",
    "default_branch_collision": "You cannot use default branch name to create a tag",
    "prohibited_tag_name": "You cannot create a tag with a prohibited pattern.",
    "prohibited_sha_tag_name": "You cannot create a tag with a SHA-1 or SHA-256 tag name.",
}

TIMEOUT_HEADER = "Push operation timed out\n\nTiming information for debugging purposes:"
RATE_LIMITED = "This endpoint has been requested too many times. Try again later."


class DomainError(Exception):
    """Anything the domain refuses; the subclasses say which of GitLab's answers it is."""


class Invalid(DomainError):
    """render_validation_error!: {"message": {"attr": ["error", ...]}}."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__(errors)
        self.errors = errors


class Conflict(DomainError):
    """conflict!(message): {"message": message}."""

    def __init__(self, message: str = "409 Conflict") -> None:
        super().__init__(message)
        self.message = message


class Missing(DomainError):
    """not_found!(resource): "404 <resource> Not Found"; without a resource, ActiveRecord's
    RecordNotFound with its lower-case "404 Not found"."""

    def __init__(self, resource: str | None = None) -> None:
        super().__init__(resource)
        self.resource = resource


class NoRoute(DomainError):
    """not_found! with no resource: "404 Not Found" (capital F, unlike Missing())."""


class Denied(DomainError):
    """forbidden!(reason): "403 Forbidden - <reason>"."""

    def __init__(self, reason: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason


class NotPermitted(DomainError):
    """render_api_error!(message, 403): the message as is, refused for who the caller is."""

    def __init__(self, message: Any) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(DomainError):
    """bad_request!(reason): "400 Bad request - <reason>"."""

    def __init__(self, reason: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason


class Refused(DomainError):
    """render_api_error!(message, 400): the message as is (a string or an object)."""

    def __init__(self, message: Any) -> None:
        super().__init__(message)
        self.message = message


class InvalidParameter(DomainError):
    """Grape's parameter validation: {"error": "x is missing"}."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Unprocessable(DomainError):
    """unprocessable_entity! with no message: "422 Unprocessable Entity"."""


class CommandRefused(DomainError):
    """The GitLab Shell commands (two_factor_*, personal_access_token; internal/base.rb) refuse with
    200 {"success": false, "message": ...}: a documented special case, like /allowed's envelope."""

    def __init__(self, message: str | None) -> None:
        super().__init__(message)
        self.message = message


class GitAccessError(DomainError):
    """The /allowed family: rendered in /allowed's own {"status": false, "message": ...} envelope."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AccessDenied(GitAccessError):
    """Gitlab::GitAccess::ForbiddenError: /allowed answers 401."""


class NotFound(GitAccessError):
    """Gitlab::GitAccess::NotFoundError: /allowed answers 404."""


class AccessTimeout(GitAccessError):
    """Gitlab::GitAccess::TimeoutError: /allowed answers 503 with the timing log."""


class ProjectCreationError(GitAccessError):
    """GitAccessProject::CreationError: /allowed answers 422."""


class RateLimited(GitAccessError):
    """ApplicationRateLimiter: /allowed answers 429."""

    def __init__(self) -> None:
        super().__init__(RATE_LIMITED)


# --- races past a check ------------------------------------------------------------------------

TAKEN = "has already been taken"
_P = ParamSpec("_P")
_R = TypeVar("_R")


def unique_races_answered(
    answers: Mapping[str, Callable[[], DomainError]],
) -> Callable[[Callable[_P, Awaitable[_R]]], Callable[_P, Awaitable[_R]]]:
    """A write whose check ("is the name taken?") another request raced past: the unique index that
    refused it (by its name) is answered as this function's check would have answered, had it run
    second. An index not named here stays a UniqueViolationError (a generic 409)."""

    def decorate(function: Callable[_P, Awaitable[_R]]) -> Callable[_P, Awaitable[_R]]:
        @functools.wraps(function)
        async def answered(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            try:
                return await function(*args, **kwargs)
            except UniqueViolationError as exc:
                answer = answers.get(exc.constraint_name or "")
                if answer is None:
                    raise
                raise answer() from None

        return answered

    return decorate

