"""Domain errors of the git access checks, with GitLab's exact message texts."""

from __future__ import annotations

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


class GitAccessError(Exception):
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
