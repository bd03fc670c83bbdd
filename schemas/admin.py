"""Request schemas of the admin API (GitLab's public v4 parameter names and Grape's coercions).

Every schema excludes unknown fields: python-gitlab and curl users send parameters we do not model
(`avatar`, ...), and GitLab ignores undeclared parameters too.
"""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, fields, validate

from schemas.fields import GrapeBoolean, GrapeInteger, GrapeString

VISIBILITIES = ("private", "internal", "public")
MEMBER_ACCESS_LEVELS = (5, 10, 15, 20, 30, 40, 50)
# ProtectedRefAccess.allowed_access_levels: no one, developers + maintainers, maintainers, admins
REF_ACCESS_LEVELS = (0, 30, 40, 60)
KEY_USAGE_TYPES = ("auth_and_signing", "auth", "signing")

# GitLab's model limits (`validates ... length: { maximum: }` and varchar(255) columns), checked here
# so the database never sees a value GitLab would refuse.
NAME_MAX = 255  # users.name/username, namespaces.name/path, projects.name/path, token and key titles
EMAIL_MAX = 255  # users.email (devise + varchar(255))
PASSWORD_MAX = 128  # Devise.password_length = 8..128
PROJECT_DESCRIPTION_MAX = 2000  # Project validates :description, length: { maximum: 2000 }
NAMESPACE_DESCRIPTION_MAX = 255  # Namespace validates :description, length: { maximum: 255 }
KEY_MAX = 5000  # Key validates :key, length: { maximum: 5000 }
# Branch and tag names: git keeps each ref as a file (255 bytes a name) and GitLab's branch columns
# (merge_requests.source_branch, protected refs) are varchar(255).
REF_NAME_MAX = 255
AGENT_NAME_MAX = 63  # Clusters::Agent: a DNS label
AGENT_TOKEN_DESCRIPTION_MAX = 1024
TOKEN_PREFIX_MAX = 20  # ApplicationSetting personal_access_token_prefix
BROADCAST_MESSAGE_MAX = 10_000
URL_PATH_MAX = 1024


class _In(Schema):
    class Meta:
        unknown = EXCLUDE


def _str(*, max_length: int | None = None, **kwargs: Any) -> GrapeString:
    if max_length is not None:
        extra = kwargs.pop("validate", None)
        kwargs["validate"] = [validate.Length(max=max_length), *([extra] if extra else [])]
    return GrapeString(**kwargs)


def _name(**kwargs: Any) -> GrapeString:
    return _str(max_length=NAME_MAX, **kwargs)


def _bool(**kwargs: Any) -> GrapeBoolean:
    return GrapeBoolean(**kwargs)


INT_MAX = 2**31 - 1  # PostgreSQL integer columns (limits, access levels, sizes)


def _int(**kwargs: Any) -> GrapeInteger:
    # An integer column: out-of-range numbers are refused here rather than overflowing it later.
    extra = kwargs.pop("validate", None)
    validators = [validate.Range(min=-INT_MAX - 1, max=INT_MAX), *([extra] if extra else [])]
    return GrapeInteger(validate=validators, **kwargs)


def _id(**kwargs: Any) -> GrapeInteger:
    return GrapeInteger(**kwargs)  # a bigint id: GrapeInteger's own 64-bit range


class PageIn(_In):
    # a page beyond 2**31 would overflow the OFFSET; nobody pages that far
    page = _int(load_default=1)
    per_page = _int(load_default=20)


class UserListIn(PageIn):
    username = _name()
    search = _name()
    active = _bool()
    blocked = _bool()
    admins = _bool(load_default=False)
    external = _bool(load_default=False)
    exclude_external = _bool(load_default=False)


class UserCreateIn(_In):
    username = _name(required=True)
    email = _str(required=True, max_length=EMAIL_MAX)
    name = _name(required=True)
    password = _str(max_length=PASSWORD_MAX)
    reset_password = _bool(load_default=False)
    force_random_password = _bool(load_default=False)
    admin = _bool(load_default=False)
    can_create_group = _bool()
    skip_confirmation = _bool(load_default=False)
    external = _bool(load_default=False)
    projects_limit = _int(validate=validate.Range(min=0))


class UserUpdateIn(_In):
    username = _name()
    email = _str(max_length=EMAIL_MAX)
    name = _name()
    password = _str(max_length=PASSWORD_MAX)
    admin = _bool()
    can_create_group = _bool()
    external = _bool()
    projects_limit = _int(validate=validate.Range(min=0))


class UserDeleteIn(_In):
    hard_delete = _bool(load_default=False)


class KeyCreateIn(_In):
    title = _name(required=True)
    key = _str(required=True, max_length=KEY_MAX)
    expires_at = fields.DateTime(allow_none=True)
    usage_type = _str(validate=validate.OneOf(KEY_USAGE_TYPES), load_default="auth_and_signing")


class KeyLookupIn(_In):
    fingerprint = _name(required=True)


# the groups API's names of Gitlab::Access's project creation levels (Group#project_creation_level_str)
PROJECT_CREATION_LEVELS = ("noone", "maintainer", "developer", "administrator", "owner")


class _BranchProtectionLevelIn(_In):
    # ProtectedBranch::PushAccessLevel.allowed_access_levels: no one, developers, maintainers, admins
    access_level = _int(required=True, validate=validate.OneOf((0, 30, 40, 60)))


class DefaultBranchProtectionIn(_In):
    """default_branch_protection_defaults (settings.rb, groups_helpers.rb): a hash."""

    allowed_to_push = fields.List(fields.Nested(_BranchProtectionLevelIn))
    allowed_to_merge = fields.List(fields.Nested(_BranchProtectionLevelIn))
    allow_force_push = _bool()
    code_owner_approval_required = _bool()
    developer_can_initial_push = _bool()


def _default_branch_protection() -> GrapeInteger:
    # Gitlab::Access.protection_values, the deprecated integer form (translated into the hash)
    return _int(validate=validate.OneOf((0, 1, 2, 3, 4)))


class GroupCreateIn(_In):
    name = _name(required=True)
    path = _name(required=True)
    parent_id = _id(allow_none=True)
    visibility = _str(validate=validate.OneOf(VISIBILITIES))
    description = _str(load_default="", max_length=NAMESPACE_DESCRIPTION_MAX)
    project_creation_level = _str(validate=validate.OneOf(PROJECT_CREATION_LEVELS))
    default_branch_protection = _default_branch_protection()
    default_branch_protection_defaults = fields.Nested(DefaultBranchProtectionIn)


class GroupUpdateIn(_In):
    name = _name()
    path = _name()
    visibility = _str(validate=validate.OneOf(VISIBILITIES))
    description = _str(max_length=NAMESPACE_DESCRIPTION_MAX)
    project_creation_level = _str(validate=validate.OneOf(PROJECT_CREATION_LEVELS))
    default_branch_protection = _default_branch_protection()
    default_branch_protection_defaults = fields.Nested(DefaultBranchProtectionIn)


class GroupListIn(PageIn):
    search = _name()


class MemberCreateIn(_In):
    user_id = _id(required=True)
    access_level = _int(required=True, validate=validate.OneOf(MEMBER_ACCESS_LEVELS))
    expires_at = fields.Date(allow_none=True)


class MemberUpdateIn(_In):
    access_level = _int(required=True, validate=validate.OneOf(MEMBER_ACCESS_LEVELS))
    expires_at = fields.Date(allow_none=True)


class ProjectCreateIn(_In):
    name = _name()
    path = _name()
    namespace_id = _id()
    visibility = _str(validate=validate.OneOf(VISIBILITIES), load_default="private")
    default_branch = _str(max_length=REF_NAME_MAX)
    lfs_enabled = _bool(load_default=True)
    description = _str(load_default="", max_length=PROJECT_DESCRIPTION_MAX)
    # this service holds no repositories: a README is not written, but its branch becomes the
    # project's default branch (protected) as GitLab's README commit makes it
    initialize_with_readme = _bool()


class ProjectUpdateIn(_In):
    name = _name()
    path = _name()
    visibility = _str(validate=validate.OneOf(VISIBILITIES))
    default_branch = _str(max_length=REF_NAME_MAX)
    lfs_enabled = _bool()
    description = _str(max_length=PROJECT_DESCRIPTION_MAX)


class ProjectListIn(PageIn):
    search = _name()
    archived = _bool()  # no default: both
    visibility = _str(validate=validate.OneOf(VISIBILITIES))
    owned = _bool(load_default=False)
    membership = _bool(load_default=False)


class TransferIn(_In):
    namespace = GrapeString(required=True)  # an id (Grape: 42 -> "42") or a full path, as find_namespace!


class DeployKeyCreateIn(_In):
    title = _name(required=True)
    key = _str(required=True, max_length=KEY_MAX)
    can_push = _bool(load_default=False)
    expires_at = fields.DateTime(allow_none=True)


class DeployKeyUpdateIn(_In):
    title = _name()
    can_push = _bool()


class ProtectedBranchCreateIn(_In):
    name = _str(required=True, max_length=REF_NAME_MAX)
    push_access_level = _int(validate=validate.OneOf(REF_ACCESS_LEVELS), load_default=40)
    merge_access_level = _int(validate=validate.OneOf(REF_ACCESS_LEVELS), load_default=40)
    unprotect_access_level = _int(validate=validate.OneOf(REF_ACCESS_LEVELS))
    allow_force_push = _bool(load_default=False)


class ProtectedBranchUpdateIn(_In):
    allow_force_push = _bool()


class ProtectedTagCreateIn(_In):
    name = _str(required=True, max_length=REF_NAME_MAX)
    create_access_level = _int(validate=validate.OneOf(REF_ACCESS_LEVELS), load_default=40)


class TokenListIn(PageIn):
    user_id = _id()
    revoked = _bool()
    state = _str(validate=validate.OneOf(("active", "inactive")))


class TokenCreateIn(_In):
    name = _name(required=True)
    scopes = fields.List(
        GrapeString(validate=validate.Length(max=NAME_MAX)), required=True, validate=validate.Length(max=64)
    )
    expires_at = _str(allow_none=True, max_length=NAME_MAX)  # parsed leniently like Date.parse (domain/tokens.py)
    description = _str(max_length=NAME_MAX)


class AgentCreateIn(_In):
    name = _str(required=True, max_length=AGENT_NAME_MAX)


class AgentTokenCreateIn(_In):
    name = _name(required=True)
    description = _str(load_default="", max_length=AGENT_TOKEN_DESCRIPTION_MAX)


class BroadcastCreateIn(_In):
    message = _str(required=True, max_length=BROADCAST_MESSAGE_MAX)
    starts_at = fields.DateTime()
    ends_at = fields.DateTime()
    broadcast_type = _str(validate=validate.OneOf(("banner", "notification")))
    target_path = _str(max_length=URL_PATH_MAX)
    target_access_levels = fields.List(_int(validate=validate.OneOf(MEMBER_ACCESS_LEVELS)))
    dismissable = _bool()
    theme = _str(max_length=NAME_MAX)
    # show_in_cli is not in GitLab's API; banners are shown on the CLI unless dismissable
    show_in_cli = _bool()


class BroadcastUpdateIn(BroadcastCreateIn):
    message = _str(max_length=BROADCAST_MESSAGE_MAX)


class ClientKeyCreateIn(_In):
    pass


class SettingsUpdateIn(_In):
    enabled_git_access_protocol = _str(validate=validate.OneOf(("", "ssh", "http")), allow_none=True)
    receive_max_input_size = _int(validate=validate.Range(min=0), allow_none=True)
    gitlab_shell_operation_limit = _int(validate=validate.Range(min=0))
    require_personal_access_token_expiry = _bool()
    max_personal_access_token_lifetime = _int(validate=validate.Range(min=1), allow_none=True)
    personal_access_token_prefix = _str(max_length=TOKEN_PREFIX_MAX)
    error_tracking_enabled = _bool()
    error_tracking_access_token = _str(allow_none=True, max_length=NAME_MAX)
    admin_mode = _bool()
    enforce_terms = _bool()
    email_confirmation_setting = _str(validate=validate.OneOf(("off", "soft", "hard")))
    two_factor_for_cli = _bool()
    default_branch_name = _str(max_length=REF_NAME_MAX)
    rsa_key_restriction = _int()
    dsa_key_restriction = _int()
    ecdsa_key_restriction = _int()
    ed25519_key_restriction = _int()
    ecdsa_sk_key_restriction = _int()
    ed25519_sk_key_restriction = _int()
    allow_local_requests_from_web_hooks_and_services = _bool()
    allow_local_requests_from_system_hooks = _bool()
    # Gitlab::Access.project_creation_values: 0 no one, 1 maintainers, 2 developers and maintainers,
    # 3 administrators, 4 owners
    default_project_creation = _int(validate=validate.Range(min=0, max=4))
    default_branch_protection = _default_branch_protection()
    default_branch_protection_defaults = fields.Nested(DefaultBranchProtectionIn)
