"""Users and their SSH keys (GitLab lib/api/users.rb, Users::CreateService, Key model validations)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from service.db import members as members_db
from service.db import namespaces as namespaces_db
from service.db import routes as routes_db
from service.db import ssh_keys as ssh_keys_db
from service.db import users as users_db
from service.db.rows import Conn, Paged

# re-exported for the routes, which do not import service/db
from service.db.ssh_keys import KeyRow as KeyRow
from service.db.users import AdminUser as AdminUser
from service.domain.admin import validation
from service.domain.admin.namespaces import delete_group, forget_paths_under
from service.domain.admin.pagination import Page
from service.domain.errors import TAKEN, Conflict, Denied, Invalid, Missing, Refused, unique_races_answered
from service.domain.app_settings import AppSettings
from service.domain.permissions import BLOCKED_STATES
from service.domain.ssh_keys import InvalidKey, parse_public_key, restriction_error

MAX_KEY_LENGTH = 5000  # Key: validates :key, length: { maximum: 5000 }
MAX_TITLE_LENGTH = 255


@dataclass(frozen=True)
class NewUser:
    username: str
    email: str
    name: str
    password: str
    admin: bool = False
    can_create_group: bool = True
    external: bool = False
    projects_limit: int = 100000
    confirmed: bool = True


async def find_user(conn: Conn, user_id: int) -> AdminUser:
    found = await users_db.find_user(conn, user_id)
    if found is None:
        raise Missing("User")
    return found


async def _check_user_identity(conn: Conn, username: str | None, email: str | None, except_id: int | None) -> None:
    """Format first (400), then GitLab's 409s for a user holding the e-mail or username, then the
    username as a top-level path some group already owns (400, a namespace validation)."""
    if username is not None:
        validation.check_username(username)
    if email is not None:
        validation.check_email(email)
    conflicts = await users_db.user_conflicts(conn, username, email, except_id)
    if conflicts.email_taken:
        raise Conflict("Email has already been taken")
    if conflicts.username_taken:
        raise Conflict("Username has already been taken")
    if conflicts.path_taken:
        raise Invalid({"username": ["has already been taken"]})


# The unique indexes _check_user_identity stands in front of, answered as it answers
_USER_RACES = unique_races_answered(
    {
        "index_users_on_lower_username": lambda: Conflict("Username has already been taken"),
        "index_users_on_lower_email": lambda: Conflict("Email has already been taken"),
        "index_routes_on_lower_path": lambda: Invalid({"username": [TAKEN]}),
    }
)


@_USER_RACES
async def create_user(conn: Conn, new: NewUser) -> int:
    """A user with its personal namespace (traversal_ids = [id]) and route, all or nothing."""
    validation.check_present(new.name, "name")
    validation.check_password(new.password)
    async with conn.transaction():
        await _check_user_identity(conn, new.username, new.email, None)
        user_id = await users_db.insert_user(
            conn,
            username=new.username,
            email=new.email,
            name=new.name,
            password_hash=validation.hash_password(new.password),
            admin=new.admin,
            can_create_group=new.can_create_group,
            external=new.external,
            projects_limit=new.projects_limit,
            confirmed=new.confirmed,
        )
        namespace_id = await namespaces_db.insert_namespace(
            conn,
            name=new.name,
            path=new.username,
            kind="User",
            owner_id=user_id,
            parent_id=None,
            visibility_level=20,
        )
        await routes_db.insert_route(conn, "Namespace", namespace_id, new.username, new.name)
    return user_id


@_USER_RACES
async def update_user(conn: Conn, user_id: int, changes: dict[str, Any]) -> None:
    """PUT /users/:id. A new username moves the personal namespace and every project route under it,
    leaving redirects for the old paths (Namespace#update + Route#rename_descendants)."""
    if changes.get("name") is not None:
        validation.check_present(changes["name"], "name")  # User validates :name, presence: true
    async with conn.transaction():
        # its personal namespace, then the user (namespaces first, in every transaction)
        seen = await find_user(conn, user_id)
        if seen.namespace_id is not None:
            await namespaces_db.lock_namespace(conn, seen.namespace_id)
        await users_db.lock_user(conn, user_id)
        current = await find_user(conn, user_id)
        username = changes.get("username")
        if username is not None and username == current.username:
            username = None
        email = changes.get("email")
        if email is not None and email.lower() == current.email.lower():
            email = None
        if username is not None and username.lower() == current.username.lower():
            validation.check_username(username)  # a change of case only: no conflict
            await _check_user_identity(conn, None, email, user_id)
        else:
            await _check_user_identity(conn, username, email, user_id)
        password = changes.get("password")
        if password is not None:
            validation.check_password(password)
        await users_db.update_user(
            conn,
            user_id,
            username=username,
            email=email,
            name=changes.get("name"),
            password_hash=validation.hash_password(password) if password is not None else None,
            admin=changes.get("admin"),
            can_create_group=changes.get("can_create_group"),
            external=changes.get("external"),
            projects_limit=changes.get("projects_limit"),
        )
        if current.namespace_id is not None and (username is not None or changes.get("name") is not None):
            namespace = await namespaces_db.find_namespace(conn, current.namespace_id)
            assert namespace is not None
            name = changes.get("name") or current.name
            await namespaces_db.update_namespace(conn, namespace.id, name=name, path=username)
            if username is not None:
                await routes_db.move_routes(conn, namespace.full_path, username)
            await routes_db.rename_route(conn, "Namespace", namespace.id, name)


async def delete_user(conn: Conn, user_id: int, *, hard_delete: bool = False) -> None:
    """DELETE /users/:id. The sole owner of a group is kept (409) unless hard_delete, which deletes
    the groups it alone owns with it, as Users::DestroyService does (hard_delete implies
    delete_solo_owned_groups); all in one transaction."""
    async with conn.transaction():
        if hard_delete:
            # namespaces before users, in every transaction: those groups are locked and gone first
            await _delete_solely_owned_groups(conn, user_id)
        # its personal namespace and everything in it, then the user (namespaces first, in every
        # transaction): additions in the namespace in flight finish first
        seen = await find_user(conn, user_id)
        if seen.namespace_id is not None:
            await namespaces_db.lock_namespace_subtree(conn, seen.namespace_id)
        await users_db.lock_user(conn, user_id)
        user = await find_user(conn, user_id)
        # The owner checks of those groups wait for this deletion (and it for them): otherwise
        # deleting one owner while another is demoted could leave a group with none.
        for group_id in await members_db.groups_owned_by(conn, user_id):
            await members_db.lock_group_owners(conn, group_id)
        if await members_db.groups_solely_owned_by(conn, user_id):
            if not hard_delete:
                # users.rb: a group must not be left without an owner
                raise Conflict("User cannot be removed while is the sole-owner of a group")
            # left to it alone by an owner's removal since the first pass: deleted all the same
            await _delete_solely_owned_groups(conn, user_id)
        if user.namespace_id is not None:
            await forget_paths_under(conn, user.namespace_id)
        # User has_many :deploy_keys, dependent: :nullify: the foreign key alone would delete them
        await ssh_keys_db.keep_deploy_keys_of_user(conn, user_id)
        await users_db.delete_user(conn, user_id)


async def _delete_solely_owned_groups(conn: Conn, user_id: int) -> None:
    # root first: a subgroup deleted with its parent is found gone and passed over
    for group_id in await members_db.groups_solely_owned_by(conn, user_id):
        group = await namespaces_db.find_namespace(conn, group_id)
        if group is not None:
            # checked again under the group's lock: an owner added or promoted since is kept
            await delete_group(conn, group, only_if_solely_owned_by=user_id)


# --- states (block, unblock, deactivate, activate, approve) ------------------------------------
# Each returns the JSON body GitLab answers with (201): true, or null when nothing had to change.


async def _set_state(conn: Conn, user_id: int, state: str) -> None:
    if not await users_db.set_user_state(conn, user_id, state):
        raise Missing("User")  # deleted since it was read


async def block(conn: Conn, user_id: int, actor_id: int) -> bool | None:
    found = await find_user(conn, user_id)
    if found.state == "ldap_blocked":
        raise Denied("LDAP blocked users cannot be modified by the API")
    if found.id == actor_id:
        raise Denied("The API initiating user cannot be blocked by the API")
    if found.state == "blocked":
        return None
    await _set_state(conn, user_id, "blocked")
    return True


async def unblock(conn: Conn, user_id: int) -> bool:
    found = await find_user(conn, user_id)
    if found.state == "ldap_blocked":
        raise Denied("LDAP blocked users cannot be unblocked by the API")
    if found.state == "deactivated":
        raise Denied("Deactivated users cannot be unblocked by the API")
    if found.state not in ("blocked", "active"):
        return False
    await _set_state(conn, user_id, "active")
    return True


async def deactivate(conn: Conn, user_id: int) -> bool | None:
    found = await find_user(conn, user_id)
    if found.state == "deactivated":
        return None
    if found.state in ("blocked", "ldap_blocked"):
        raise Denied("A blocked user cannot be deactivated by the API")
    if found.state != "active":
        raise Denied(f"The user you are trying to deactivate is {found.state.replace('_', ' ')}")
    await _set_state(conn, user_id, "deactivated")
    return True


async def activate(conn: Conn, user_id: int) -> bool:
    found = await find_user(conn, user_id)
    if found.state in BLOCKED_STATES:
        raise Denied("A blocked user must be unblocked to be activated")
    await _set_state(conn, user_id, "active")
    return True


async def approve(conn: Conn, user_id: int) -> dict[str, str]:
    found = await find_user(conn, user_id)
    if found.state != "blocked_pending_approval":
        # Users::ApproveService: error(..., :conflict), which users.rb renders with its status
        raise Conflict("The user you are trying to approve is not pending approval")
    await _set_state(conn, user_id, "active")
    return {"message": "Success"}


# --- SSH keys ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckedKey:
    text: str
    key_type: str
    bits: int
    fingerprint_md5: str
    fingerprint_sha256: str


def title_errors(title: str, prefix: str = "") -> dict[str, list[str]]:
    """The Key model's validations of a title."""
    if not title.strip():
        return {f"{prefix}title": ["can't be blank"]}
    if len(title) > MAX_TITLE_LENGTH:
        return {f"{prefix}title": [f"is too long (maximum is {MAX_TITLE_LENGTH} characters)"]}
    return {}


def check_key(text: str, title: str, expires_at: datetime | None, app: AppSettings, prefix: str = "") -> CheckedKey:
    """The Key model's validations. `prefix` names the association for deploy keys ("deploy_key.")."""
    errors = title_errors(title, prefix)
    parsed = None
    if len(text) > MAX_KEY_LENGTH:
        errors[f"{prefix}key"] = [f"is too long (maximum is {MAX_KEY_LENGTH} characters)"]
    else:
        try:
            parsed = parse_public_key(text)
        except InvalidKey:
            # No fingerprint can be computed from an unparseable key, and GitLab says so too.
            errors[f"{prefix}key"] = ["is invalid"]
            errors[f"{prefix}fingerprint_sha256"] = ["cannot be generated"]
    if parsed is not None:
        restricted = restriction_error(parsed.technology, parsed.bits, app.key_restrictions)
        if restricted:
            errors[f"{prefix}key"] = [restricted]
    if expires_at is not None and expires_at <= datetime.now(UTC):
        errors.setdefault(f"{prefix}key", []).append("has expired")
    if errors or parsed is None:
        raise Invalid(errors)
    return CheckedKey(parsed.text, parsed.key_type, parsed.bits, parsed.fingerprint_md5, parsed.fingerprint_sha256)


def _aware(value: datetime | None) -> datetime | None:
    # ISO 8601 without an offset is taken as UTC, as Rails does with the default time zone.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


@unique_races_answered({"index_keys_on_fingerprint_sha256": lambda: Invalid({"fingerprint_sha256": [TAKEN]})})
async def add_key(
    conn: Conn,
    user_id: int,
    *,
    title: str,
    text: str,
    expires_at: datetime | None,
    usage_type: str,
    app: AppSettings,
) -> KeyRow:
    expires_at = _aware(expires_at)
    await find_user(conn, user_id)
    checked = check_key(text, title, expires_at, app)
    if await ssh_keys_db.key_fingerprint_taken(conn, checked.fingerprint_sha256):
        raise Invalid({"fingerprint_sha256": ["has already been taken"]})
    return await ssh_keys_db.insert_key(
        conn,
        user_id=user_id,
        deploy_key=False,
        key=checked.text,
        title=title,
        key_type=checked.key_type,
        bits=checked.bits,
        fingerprint_md5=checked.fingerprint_md5,
        fingerprint_sha256=checked.fingerprint_sha256,
        usage_type=usage_type,
        expires_at=expires_at,
    )


class InvalidFingerprint(ValueError):
    pass


def parse_fingerprint(fingerprint: str) -> tuple[str | None, str | None]:
    """KeysFinder: "SHA256:<base64>" or an MD5 "aa:bb:..." (optionally "MD5:"-prefixed) -> (sha256, md5)."""
    text = fingerprint.strip()
    if text.upper().startswith("SHA256:"):
        return text[7:].rstrip("="), None
    if text.upper().startswith("MD5:"):
        text = text[4:]
    parts = text.split(":")
    if len(parts) == 16 and all(len(p) == 2 and all(c in "0123456789abcdefABCDEF" for c in p) for p in parts):
        return None, text.lower()
    raise InvalidFingerprint(fingerprint)


async def list_users(
    conn: Conn,
    page: Page,
    *,
    username: str | None,
    search: str | None,
    active: bool,
    blocked: bool,
    admins: bool,
    external: bool,
    non_external: bool,
    caller_is_admin: bool,
) -> Paged[AdminUser]:
    """UsersFinder: only administrators search e-mail addresses, and only their `admins` filter counts.
    Who is external is an administrator's to ask (users.rb: authenticated_as_admin! when `external`)."""
    if external and not caller_is_admin:
        raise Denied()
    return await users_db.list_users(
        conn,
        username=username,
        search=search,
        active=active,
        blocked=blocked,
        limit=page.limit,
        offset=page.offset,
        search_email=caller_is_admin,
        admins=admins and caller_is_admin,
        external=external,
        non_external=non_external,
    )


async def find_user_or_none(conn: Conn, user_id: int) -> AdminUser | None:
    return await users_db.find_user(conn, user_id)


async def user_keys(conn: Conn, user_id: int, page: Page) -> Paged[KeyRow]:
    await find_user(conn, user_id)
    return await ssh_keys_db.list_user_keys(conn, user_id, limit=page.limit, offset=page.offset)


async def user_key(conn: Conn, user_id: int, key_id: int) -> KeyRow:
    """One of the user's own SSH keys (not a deploy key)."""
    await find_user(conn, user_id)
    key = await ssh_keys_db.find_key(conn, key_id)
    if key is None or key.user_id != user_id or key.type is not None:
        raise Missing("Key")
    return key


async def delete_user_key(conn: Conn, user_id: int, key_id: int) -> None:
    await find_user(conn, user_id)
    if not await ssh_keys_db.delete_user_key(conn, user_id, key_id):
        raise Missing("Key")


async def key_by_id(conn: Conn, key_id: int) -> KeyRow:
    key = await ssh_keys_db.find_key(conn, key_id)
    if key is None:
        raise Missing("Key")
    return key


async def key_by_fingerprint(conn: Conn, fingerprint: str) -> KeyRow:
    """GET /keys?fingerprint=: SHA256:<base64> or the MD5 colon form."""
    try:
        sha256, md5 = parse_fingerprint(fingerprint)
    except InvalidFingerprint:
        raise Refused("Failed to return the key") from None
    key = await ssh_keys_db.find_key_by_fingerprint(conn, sha256=sha256, md5=md5)
    if key is None:
        raise Missing("Key")
    return key
