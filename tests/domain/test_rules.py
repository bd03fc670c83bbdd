"""The pure rules of the git checks, without HTTP: the access matrix, branch and tag checks and
change-list parsing (GitLab: Gitlab::Checks::*, ProjectPolicy)."""

from __future__ import annotations

import pytest

from service.domain import checks
from service.domain.checks import (
    AccessEntry,
    Change,
    ChangeContext,
    InvalidChanges,
    ProtectedRefs,
    ProtectedRule,
    RepositoryQuestions,
    TimedLogger,
    parse_changes,
)
from service.domain.errors import ERROR_MESSAGES, AccessDenied
from service.domain.permissions import (
    DEVELOPER,
    FEATURE_ENABLED,
    GUEST,
    INTERNAL,
    MAINTAINER,
    PRIVATE,
    PUBLIC,
    REPORTER,
    Viewer,
    can_download,
    can_push_code,
    can_read_project,
)
from service.domain.post_receive import pushed_branches

BLANK = "0" * 40
OLD = "a" * 40
NEW = "b" * 40

ANONYMOUS = Viewer(user_id=None, admin=False, external=False, access_level=0)
OUTSIDER = Viewer(user_id=1, admin=False, external=False, access_level=0)
EXTERNAL = Viewer(user_id=2, admin=False, external=True, access_level=0)
GUEST_MEMBER = Viewer(user_id=3, admin=False, external=False, access_level=GUEST)
REPORTER_MEMBER = Viewer(user_id=4, admin=False, external=False, access_level=REPORTER)
DEVELOPER_MEMBER = Viewer(user_id=5, admin=False, external=False, access_level=DEVELOPER)
MAINTAINER_MEMBER = Viewer(user_id=6, admin=False, external=False, access_level=MAINTAINER)
ADMIN_USER = Viewer(user_id=7, admin=True, external=False, access_level=0)


# --- who may read ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("viewer", "visibility", "expected"),
    [
        (ANONYMOUS, PUBLIC, True),
        (ANONYMOUS, INTERNAL, False),
        (ANONYMOUS, PRIVATE, False),
        (OUTSIDER, INTERNAL, True),
        (OUTSIDER, PRIVATE, False),
        (EXTERNAL, INTERNAL, False),  # external users see internal projects only as members
        (EXTERNAL, PUBLIC, True),
        (GUEST_MEMBER, PRIVATE, True),
        (ADMIN_USER, PRIVATE, True),
    ],
)
def test_read_access_matrix(viewer: Viewer, visibility: int, expected: bool) -> None:
    assert can_read_project(viewer, visibility) is expected


def test_a_deploy_key_reads_where_it_is_enabled_and_what_anybody_may_read() -> None:
    enabled = Viewer(user_id=None, admin=False, external=False, access_level=0, deploy_key_id=9, deploy_key_enabled=True)
    elsewhere = Viewer(user_id=None, admin=False, external=False, access_level=0, deploy_key_id=9)
    assert can_read_project(enabled, PRIVATE)
    assert not can_read_project(elsewhere, PRIVATE) and not can_read_project(elsewhere, INTERNAL)
    assert can_read_project(elsewhere, PUBLIC)  # GitAccess#can_read_project?'s `|| Guest.can?`


def test_a_guest_cannot_download_a_private_repository_but_a_reporter_can() -> None:
    assert not can_download(GUEST_MEMBER, PRIVATE, FEATURE_ENABLED)
    assert can_download(REPORTER_MEMBER, PRIVATE, FEATURE_ENABLED)


def test_pushing_needs_a_developer() -> None:
    assert not can_push_code(REPORTER_MEMBER, FEATURE_ENABLED)
    assert can_push_code(DEVELOPER_MEMBER, FEATURE_ENABLED)


# --- change lists --------------------------------------------------------------------------------


def test_parse_changes_reads_each_line_and_skips_blank_ones() -> None:
    raw = f"{OLD} {NEW} refs/heads/main\n\n{BLANK} {NEW} refs/tags/v1\n"
    assert parse_changes(raw) == [Change(OLD, NEW, "refs/heads/main"), Change(BLANK, NEW, "refs/tags/v1")]


def test_a_malformed_line_refuses_the_strict_list_and_is_skipped_by_the_lenient_one() -> None:
    raw = f"{OLD} {NEW} refs/heads/main\nnot a change line at all\nxyz {NEW} refs/heads/x"
    with pytest.raises(InvalidChanges):
        parse_changes(raw)
    assert [c.ref for c in parse_changes(raw, strict=False)] == ["refs/heads/main", "refs/heads/x"]


def test_post_receive_reads_branches_from_the_same_parser() -> None:
    raw = f"{BLANK} {NEW} refs/heads/new\n{OLD} {BLANK} refs/heads/gone\n{OLD} {NEW} refs/tags/v1\n{OLD} {NEW} refs/heads/main"
    assert pushed_branches(raw) == [("new", True, False), ("gone", False, True), ("main", False, False)]


# --- branch and tag checks -----------------------------------------------------------------------


async def _never_force(_old: str, _new: str) -> bool | None:
    return False


async def _on_branches(_rev: str, _patterns: list[str]) -> bool | None:
    return True


def _context(viewer: Viewer, branches: list[ProtectedRule] = (), tags: list[ProtectedRule] = ()) -> ChangeContext:  # type: ignore[assignment]
    return ChangeContext(
        viewer=viewer,
        default_branch="main",
        protocol="ssh",
        feature_level=FEATURE_ENABLED,
        refs=ProtectedRefs(list(branches), list(tags)),
        repository=RepositoryQuestions(is_force_push=_never_force, commit_on_branches=_on_branches),
        project_full_path="group/project",
        project_members_url="http://gitlab.example/group/project/-/project_members",
    )


def _maintainers_only(name: str) -> ProtectedRule:
    maintainers = [AccessEntry(access_level=MAINTAINER, user_id=None, deploy_key_id=None)]
    return ProtectedRule(name, entries={"push": maintainers, "merge": maintainers})


async def test_the_default_branch_cannot_be_deleted() -> None:
    with pytest.raises(AccessDenied) as denied:
        await checks.branch_check(Change(OLD, BLANK, "refs/heads/main"), _context(ADMIN_USER), TimedLogger())
    assert denied.value.message == ERROR_MESSAGES["delete_default_branch"]


async def test_a_forty_hex_branch_name_is_refused() -> None:
    with pytest.raises(AccessDenied) as denied:
        await checks.branch_check(Change(BLANK, NEW, f"refs/heads/{'c' * 40}"), _context(DEVELOPER_MEMBER), TimedLogger())
    assert denied.value.message == ERROR_MESSAGES["prohibited_hex_branch_name"]


async def test_a_protected_branch_takes_pushes_from_maintainers_only_with_a_wildcard_rule() -> None:
    ctx = _context(DEVELOPER_MEMBER, branches=[_maintainers_only("release/*")])
    change = Change(OLD, NEW, "refs/heads/release/1.0")
    with pytest.raises(AccessDenied) as denied:
        await checks.branch_check(change, ctx, TimedLogger())
    assert denied.value.message == ERROR_MESSAGES["push_protected_branch"]
    await checks.branch_check(change, _context(MAINTAINER_MEMBER, branches=[_maintainers_only("release/*")]), TimedLogger())
    # an unprotected branch takes the developer's push
    await checks.branch_check(Change(OLD, NEW, "refs/heads/feature"), ctx, TimedLogger())


async def test_existing_tags_are_changed_by_developers_only_and_protected_tags_never_updated() -> None:
    update = Change(OLD, NEW, "refs/tags/v1")
    with pytest.raises(AccessDenied) as denied:
        await checks.tag_check(update, _context(REPORTER_MEMBER), TimedLogger())
    assert denied.value.message == ERROR_MESSAGES["change_existing_tags"]
    await checks.tag_check(update, _context(DEVELOPER_MEMBER), TimedLogger())
    protected = ProtectedRule("v*", entries={"create": [AccessEntry(MAINTAINER, None, None)]})
    with pytest.raises(AccessDenied) as denied:
        await checks.tag_check(update, _context(ADMIN_USER, tags=[protected]), TimedLogger())
    assert denied.value.message == ERROR_MESSAGES["update_protected_tag"]


async def test_a_tag_named_like_the_default_branch_is_refused() -> None:
    with pytest.raises(AccessDenied) as denied:
        await checks.tag_check(Change(BLANK, NEW, "refs/tags/main"), _context(DEVELOPER_MEMBER), TimedLogger())
    assert denied.value.message == ERROR_MESSAGES["default_branch_collision"]


# --- RefMatcher's wildcard ------------------------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from service.domain.ref_matcher import wildcard_matches  # noqa: E402


def _as_gitlab_matches(pattern: str, name: str) -> bool:
    """GitLab's RefMatcher#wildcard_regex: the pattern quoted, each star `.*?`, the whole name."""
    import re

    return re.fullmatch(".*?".join(re.escape(part) for part in pattern.split("*")), name) is not None


@settings(max_examples=3000, deadline=None)
@given(st.text(alphabet="ab/-*", max_size=8), st.text(alphabet="ab/-", max_size=10))
def test_wildcards_match_what_gitlabs_regular_expression_matches(pattern, name):
    assert wildcard_matches(pattern, name) == _as_gitlab_matches(pattern, name)


@pytest.mark.parametrize(
    "pattern, name, expected",
    [
        ("release/*", "release/1.0", True),
        ("release/*", "release/", True),
        ("release/*", "releases/1", False),
        ("*-stable", "12-stable", True),
        ("*/*/*/*-rc", "a/b/c/d-rc", True),
        ("*/*/*/*-rc", "a/" * 500 + "x", False),  # n⁴ backtracking for a regular expression
        ("*a*a*a*a*a*a*b", "a" * 5000, False),
        ("main", "main", True),
        ("main", "main2", False),
        ("a*a", "a", False),  # the two ends may not share a character
    ],
)
def test_wildcard_cases(pattern, name, expected):
    assert wildcard_matches(pattern, name) is expected


# --- SSH public keys ------------------------------------------------------------------------------


def _openssh_line(private_key) -> str:
    import warnings

    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DSA is deprecated by cryptography
        return private_key.public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode()


def _security_key_line(plain_line: str, sk_type: str) -> str:
    """A FIDO key's line: the plain key's fields under the sk- type name, then its application."""
    import base64
    import struct

    blob = base64.b64decode(plain_line.split()[1])
    (name_length,) = struct.unpack(">I", blob[:4])
    fields = blob[4 + name_length :]
    wrapped = struct.pack(">I", len(sk_type)) + sk_type.encode() + fields + struct.pack(">I", 4) + b"ssh:"
    return f"{sk_type} {base64.b64encode(wrapped).decode()}"


def test_every_key_type_parses_with_its_size_and_a_truncated_key_does_not():
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa

    from service.domain.ssh_keys import InvalidKey, parse_public_key

    ed = _openssh_line(ed25519.Ed25519PrivateKey.generate())
    p256 = _openssh_line(ec.generate_private_key(ec.SECP256R1()))
    lines = {
        _openssh_line(rsa.generate_private_key(65537, 2048)): ("rsa", 2048),
        _openssh_line(dsa.generate_private_key(1024)): ("dsa", 1024),
        p256: ("ecdsa", 256),
        _openssh_line(ec.generate_private_key(ec.SECP384R1())): ("ecdsa", 384),
        _openssh_line(ec.generate_private_key(ec.SECP521R1())): ("ecdsa", 521),
        ed: ("ed25519", 256),
        _security_key_line(ed, "sk-ssh-ed25519@openssh.com"): ("ed25519_sk", 256),
        _security_key_line(p256, "sk-ecdsa-sha2-nistp256@openssh.com"): ("ecdsa_sk", 256),
    }
    for line, (technology, bits) in lines.items():
        parsed = parse_public_key(line + " me@host")
        assert (parsed.technology, parsed.bits, parsed.comment) == (technology, bits, "me@host")
    key_type, blob = ed.split()
    for broken in (f"{key_type} {blob[:-8]}", f"ssh-rsa {blob}", f"{key_type} {blob}AAAA"):
        with pytest.raises(InvalidKey):
            parse_public_key(broken)


# --- Ruby's Date.parse ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2024-07-24", (2024, 7, 24)),
        ("2024-07-24T10:00:00Z", (2024, 7, 24)),
        ("2024-07-24 10:00", (2024, 7, 24)),
        ("24 Jul 2024", (2024, 7, 24)),
        ("Jul 24, 2024", (2024, 7, 24)),
        ("July 24th 2024", (2024, 7, 24)),
        ("2024/07/24", (2024, 7, 24)),
        ("20240724", (2024, 7, 24)),
        ("24/07/2024", (2024, 7, 24)),
        ("24-07-2024", (2024, 7, 24)),
        ("24.07.2024", (2024, 7, 24)),
        (' "2024-07-24" ', (2024, 7, 24)),
        ("2024-02-30", None),
        ("tomorrow", None),
        ("", None),
    ],
)
def test_one_date_parser_for_every_client_date(text, expected):
    """Grape's Date parameters and a token's expires_at read dates the same way (they once differed:
    "24.07.2024" was a date for CustomersDot and not for a token)."""
    from datetime import date

    from service.domain.ruby_date import parse_ruby_date

    assert parse_ruby_date(text) == (date(*expected) if expected else None)


def test_a_key_wrapped_in_many_pieces_parses_and_only_rubys_white_space_separates():
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    from service.domain.ssh_keys import InvalidKey, parse_public_key

    key_type, blob = _openssh_line(rsa.generate_private_key(65537, 4096)).split()
    wrapped = key_type + " " + "\n".join(blob[i : i + 10] for i in range(0, len(blob), 10)) + " me"
    assert parse_public_key(wrapped).bits == 4096  # 72 pieces
    key_type, blob = _openssh_line(ed25519.Ed25519PrivateKey.generate()).split()
    with pytest.raises(InvalidKey):
        parse_public_key(f"{key_type}\u3000{blob}")  # an ideographic space is no separator in Ruby


def test_padding_wrapped_onto_its_own_piece_is_joined_not_taken_for_the_comment():
    from cryptography.hazmat.primitives.asymmetric import ec

    from service.domain.ssh_keys import InvalidKey, parse_public_key

    key_type, blob = _openssh_line(ec.generate_private_key(ec.SECP256R1())).split()
    assert blob.endswith("=")  # 104 bytes: one padding character
    wrapped = key_type + " " + " ".join(blob[i : i + 2] for i in range(0, len(blob), 2)) + " me@host"
    parsed = parse_public_key(wrapped)
    assert (parsed.bits, parsed.comment) == (256, "me@host")
    with pytest.raises(InvalidKey):  # without its padding, as SSHData's strict decoding refuses it
        parse_public_key(f"{key_type} {blob.rstrip('=')}")


def test_a_restriction_names_the_allowed_types_as_gitlabs_sentence():
    from service.domain.ssh_keys import ALL_TECHNOLOGIES, restriction_error

    only = {technology: -1 for technology in ALL_TECHNOLOGIES}
    assert restriction_error("dsa", 1024, {**only, "rsa": 0, "ed25519": 0}) == "type is forbidden. Must be RSA or ED25519"
    assert restriction_error("dsa", 1024, {**only, "rsa": 0}) == "type is forbidden. Must be RSA"
    assert (
        restriction_error("dsa", 1024, {**only, "rsa": 0, "ecdsa": 0, "ed25519": 0})
        == "type is forbidden. Must be RSA, ECDSA, or ED25519"
    )
