"""GitLab's model validations for the attributes the admin API writes (Gitlab::PathRegex, Gitlab::Regex)."""

from __future__ import annotations


import hashlib
import re
import secrets

from service.domain import permissions
from service.domain.errors import Invalid

VISIBILITY_LEVELS = {"private": 0, "internal": 10, "public": 20}
VISIBILITY_NAMES = {level: name for name, level in VISIBILITY_LEVELS.items()}
# The groups API's names of the project creation levels (Group#project_creation_level_str)
PROJECT_CREATION_LEVELS = {
    "noone": permissions.NO_ONE_PROJECT_ACCESS,
    "maintainer": permissions.MAINTAINER_PROJECT_ACCESS,
    "developer": permissions.DEVELOPER_MAINTAINER_PROJECT_ACCESS,
    "administrator": permissions.ADMINISTRATOR_PROJECT_ACCESS,
    "owner": permissions.OWNER_PROJECT_ACCESS,
}
PROJECT_CREATION_NAMES = {level: name for name, level in PROJECT_CREATION_LEVELS.items()}

# PathRegex: start with a letter, digit, '_' or '.', then letters, digits, '_', '-', '.';
# never end in '.git' or '.atom'. Namespaces may not end in '.' either.
_PATH = r"[a-zA-Z0-9_.][a-zA-Z0-9_.\-]{0,254}"
_NAMESPACE_PATH = re.compile(rf"\A{_PATH}(?<!\.)(?<!\.git)(?<!\.atom)\Z")
_PROJECT_PATH = re.compile(rf"\A{_PATH}(?<!\.git)(?<!\.atom)\Z")
NAMESPACE_PATH_MESSAGE = (
    "can contain only letters, digits, '_', '-' and '.'. Cannot start with '-' or end in '.', '.git' or '.atom'."
)
PROJECT_PATH_MESSAGE = (
    "can contain only letters, digits, '_', '-' and '.'. Cannot start with '-', end in '.git' or end in '.atom'"
)
_PROJECT_NAME = re.compile(r"\A[\w\u00a9-\U0010ffff][\w\u00a9-\U0010ffff.+\- ]*\Z")
PROJECT_NAME_MESSAGE = (
    "can contain only letters, digits, emoji, '_', '.', '+', dashes, or spaces. "
    "It must start with a letter, digit, emoji, or '_'."
)
_GROUP_NAME = re.compile(r"\A[\w\u00a9-\U0010ffff][\w\u00a9-\U0010ffff.()\- ]*\Z")
GROUP_NAME_MESSAGE = (
    "can contain only letters, digits, emoji, '_', '.', dash, space, parenthesis. "
    "It must start with letter, digit, emoji or '_'."
)
# Gitlab::PathRegex::TOP_LEVEL_ROUTES (lib/gitlab/path_regex.rb): the instance's own top-level routes,
# which a user or a root group of that path would mask; NamespacePathValidator matches them ignoring case.
TOP_LEVEL_ROUTES = frozenset(
    """
    - .well-known 404.html 422.html 500.html 502.html 503.html abuse_reports admin api
    apple-touch-icon-precomposed.png apple-touch-icon.png assets autocomplete ci dashboard deploy.html
    explore favicon.ico files groups header_logo_dark.png header_logo_light.png health_check help import
    invites jwt koding notification_settings oauth profile projects public robots.txt s search
    sent_notifications slash-command-logo.png snippets u unsubscribes uploads users
    """.split()
)
# PathRegex::ILLEGAL_GROUP_PATH_WORDS (PROJECT_WILDCARD_ROUTES | GROUP_ROUTES): what a subgroup may not
# be called, as its path would be read as a route of the project or group above it.
SUBGROUP_RESERVED_PATHS = frozenset(
    """
    - badges blame blob builds commits create create_dir edit environments/folders files find_file
    gitlab-lfs/objects info/lfs/objects new preview raw refs tree update wikis
    """.split()
)
_EMAIL = re.compile(r"\A[^@\s]+@[^@\s]+\Z")
MIN_PASSWORD_LENGTH = 8
PBKDF2_ITERATIONS = 100_000


def check_namespace_path(path: str, attribute: str = "path") -> None:
    if not _NAMESPACE_PATH.match(path):
        raise Invalid({attribute: [NAMESPACE_PATH_MESSAGE]})


def check_not_reserved(path: str, *, top_level: bool, attribute: str = "path") -> None:
    """AbstractPathValidator's (and User's username exclusion) "<path> is a reserved name"."""
    reserved = TOP_LEVEL_ROUTES if top_level else SUBGROUP_RESERVED_PATHS
    if path.lower() in reserved:
        raise Invalid({attribute: [f"{path} is a reserved name"]})


def check_username(username: str) -> None:
    """A username is its personal namespace's top-level path."""
    check_namespace_path(username, "username")
    check_not_reserved(username, top_level=True, attribute="username")


def check_project_path(path: str) -> None:
    if not _PROJECT_PATH.match(path):
        raise Invalid({"path": [PROJECT_PATH_MESSAGE]})


def check_project_name(name: str) -> None:
    if not _PROJECT_NAME.match(name):
        raise Invalid({"name": [PROJECT_NAME_MESSAGE]})


def check_group_name(name: str) -> None:
    if not _GROUP_NAME.match(name):
        raise Invalid({"name": [GROUP_NAME_MESSAGE]})


def check_present(value: str, attribute: str) -> None:
    """Rails' `validates :x, presence: true`: nothing, or only white space, is blank."""
    if not value.strip():
        raise Invalid({attribute: ["can't be blank"]})


def check_email(email: str) -> None:
    if not _EMAIL.match(email):
        raise Invalid({"email": ["is invalid"]})


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid({"password": [f"is too short (minimum is {MIN_PASSWORD_LENGTH} characters)"]})


def hash_password(password: str) -> str:
    """PBKDF2-SHA512 with a random salt. A new hash on every password change also ends the user's
    LFS tokens, whose key mixes in the hash's last characters (reference section 9.3)."""
    salt = secrets.token_hex(16)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt.encode(), PBKDF2_ITERATIONS).hex()
    return f"$pbkdf2-sha512${PBKDF2_ITERATIONS}${salt}${digest}"


def random_password() -> str:
    """reset_password / force_random_password: a password nobody knows until it is reset."""
    return secrets.token_urlsafe(32)


def path_from_name(name: str) -> str:
    """Project path derived from a name when only the name is given (ActiveSupport parameterize)."""
    path = re.sub(r"[^a-zA-Z0-9_.\-]+", "-", name.strip()).strip("-").lower()
    return path or "project"

