"""Who is asking and for which repository: GitAccessActor.from_params and Gitlab::GlRepository."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from service.db import ssh_keys as ssh_keys_db
from service.db import users as users_db
from service.db.ssh_keys import KeyActor
from service.db.rows import Conn
from service.db.users import UserRow
from service.domain import ids
from service.domain.errors import BadRequest, CommandRefused

# re.ASCII: Ruby's \d, GitLab's, is [0-9]; Python's also takes other scripts' digits ("user-٣").
_GL_REPOSITORY = re.compile(r"\A(project|wiki|snippet|design)-(\d+)\Z|\Agroup-(\d+)-wiki\Z", re.ASCII)
_IDENTIFIER = re.compile(r"\A(user|key)-(\d+)\Z|\Ausername-(.+)\Z", re.ASCII)
_SNIPPET_PATH = re.compile(r"(\A|/)snippets/\d+\Z", re.ASCII)


class InvalidRepository(BadRequest):
    """An unknown gl_repository type (Rails: ArgumentError "Invalid GL Repository"): 400."""


class ActorRef(NamedTuple):
    """The first of key_id, user_id, username, identifier that is present (GitAccessActor order)."""

    key_id: int | None = None
    user_id: int | None = None
    username: str | None = None
    owner_of_key_id: int | None = None  # identifier "key-<id>": the key's owner, as a user
    given: bool = False  # some actor parameter was sent, even if it matched nobody

    @property
    def scope(self) -> str:
        """The actor part of the rate-limit scope."""
        if self.key_id is not None:
            return f"key:{self.key_id}"
        if self.user_id is not None:
            return f"user:{self.user_id}"
        if self.username is not None:
            return f"username:{self.username.lower()}"
        if self.owner_of_key_id is not None:
            return f"key-owner:{self.owner_of_key_id}"
        return "anonymous"


def parse_identifier(identifier: Any) -> ActorRef:
    if not isinstance(identifier, str):
        return ActorRef()
    match = _IDENTIFIER.match(identifier)
    if match is None:
        return ActorRef(given=True)
    kind, number, username = match.groups()
    if number is not None and not ids.fits_bigint(number):
        return ActorRef(given=True)  # no such user or key (GitLab's find_by_id finds none)
    if kind == "user":
        return ActorRef(user_id=int(number), given=True)
    if kind == "key":
        return ActorRef(owner_of_key_id=int(number), given=True)
    return ActorRef(username=username, given=True)


def actor_from_params(params: Mapping[str, Any]) -> ActorRef:
    if params.get("key_id") not in (None, ""):
        return ActorRef(key_id=ids.as_id(params["key_id"], lenient=True), given=True)
    if params.get("user_id") not in (None, ""):
        return ActorRef(user_id=ids.as_id(params["user_id"], lenient=True), given=True)
    if isinstance(params.get("username"), str) and params["username"]:
        return ActorRef(username=params["username"], given=True)
    if params.get("identifier") not in (None, ""):
        return parse_identifier(params["identifier"])
    return ActorRef()


class RepositoryRef(NamedTuple):
    """A repository by gl_repository (preferred) or by the path the client typed."""

    repo_type: str  # project | wiki | snippet | design | group_wiki
    container_id: int | None
    path: str | None  # normalised: no leading '/', no '.git', no '.wiki' / '.design' suffix
    given_path: str | None  # the normalised repository path, suffix included (for messages)

    @property
    def namespace_path(self) -> str | None:
        if not self.path or "/" not in self.path:
            return None
        return self.path.rsplit("/", 1)[0]


def parse_gl_repository(value: str) -> RepositoryRef:
    match = _GL_REPOSITORY.match(value)
    # an id past bigint is no container's
    if match is None or not ids.fits_bigint(match.group(2) or match.group(3)):
        raise InvalidRepository(f'Invalid GL Repository "{value}"')
    repo_type, number, group_id = match.groups()
    if group_id is not None:
        return RepositoryRef("group_wiki", int(group_id), None, None)
    return RepositoryRef(repo_type, int(number), None, None)


def normalise_repository_path(raw: str) -> str:
    """Gitlab::RepoPath: strip surrounding white space, a leading '/' and a trailing '.git'."""
    path = raw.strip().lstrip("/")
    if path.endswith(".git"):
        path = path[: -len(".git")]
    return path.rstrip("/")


def repository_from_params(params: Mapping[str, Any]) -> RepositoryRef:
    gl_repository = params.get("gl_repository")
    raw_project = params.get("project")
    given = normalise_repository_path(raw_project) if isinstance(raw_project, str) and raw_project else None
    if isinstance(gl_repository, str) and gl_repository:
        parsed = parse_gl_repository(gl_repository)
        return RepositoryRef(parsed.repo_type, parsed.container_id, given, given)
    if given is None:
        return RepositoryRef("project", None, None, None)
    if given.endswith(".wiki"):
        return RepositoryRef("wiki", None, given[: -len(".wiki")], given)
    if given.endswith(".design"):
        return RepositoryRef("design", None, given[: -len(".design")], given)
    if _SNIPPET_PATH.search(given):
        return RepositoryRef("snippet", None, given, given)
    return RepositoryRef("project", None, given, given)


async def find_user(conn: Conn, actor: ActorRef) -> UserRow | None:
    """The user behind an actor (GET /internal/discover); None for nobody."""
    return await users_db.find_user_for_actor(
        conn,
        key_id=actor.key_id,
        user_id=actor.user_id,
        username=actor.username,
        owner_of_key_id=actor.owner_of_key_id,
    )


async def command_key(conn: Conn, key_id: Any, user_id: Any) -> tuple[KeyActor | None, str | None]:
    """GitLab's validate_actor for the key-based shell commands: (key actor, failure message)."""
    number = ids.as_id(key_id, lenient=True)
    if key_id in (None, "") and user_id not in (None, ""):
        user = await users_db.find_user_by_id(conn, ids.as_id(user_id, lenient=True) or 0)
        if user is None:
            return None, "Could not find the given user"
        return None, "Could not find the given key"
    if number is None:
        return None, "Could not find the given key"
    key = await ssh_keys_db.find_key_actor(conn, number)
    if key is None:
        return None, "Could not find the given key"
    if key.user_id is None:
        return key, "Could not find a user for the given key"
    return key, None


async def command_user_key(conn: Conn, key_id: Any, user_id: Any) -> KeyActor:
    """command_key, refusing (200 success:false) when there is no user's key."""
    key, problem = await command_key(conn, key_id, user_id)
    if problem is not None or key is None:
        raise CommandRefused(problem)
    return key
