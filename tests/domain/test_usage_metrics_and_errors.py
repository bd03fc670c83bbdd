"""kas usage-metric parsing and the one translation of domain errors into GitLab's answers,
without HTTP."""

from __future__ import annotations

import pytest

from service.domain import errors as domain
from service.domain.usage_metrics import InvalidCount, InvalidParameters, UsageUpdate, parse_usage_metrics
from service.errors import from_domain


def test_legacy_counters_and_unique_counters_become_one_update() -> None:
    update = parse_usage_metrics(
        {
            "gitops_sync_count": "3",
            "k8s_api_proxy_request_count": 0,
            "unique_counters": {"agent_users_using_ci_tunnel": [5, 5, 6]},
        }
    )
    assert update.counters == (("gitops_sync", 3),)  # a zero increment is left out
    assert update.unique == (("agent_users_using_ci_tunnel", ("5", "6")),)


def test_an_empty_report_changes_nothing() -> None:
    assert parse_usage_metrics({}) == UsageUpdate()


def test_counters_and_the_legacy_fields_are_mutually_exclusive() -> None:
    with pytest.raises(InvalidParameters) as invalid:
        parse_usage_metrics({"gitops_sync_count": 1, "counters": {"gitops_sync": 1}})
    assert invalid.value.message == "counters, gitops_sync_count are mutually exclusive"


def test_type_errors_come_before_a_negative_count() -> None:
    with pytest.raises(InvalidParameters):
        parse_usage_metrics({"gitops_sync_count": -1, "counters": "nope"})
    with pytest.raises(InvalidCount) as negative:
        parse_usage_metrics({"gitops_sync_count": -1})
    assert negative.value.message == "gitops_sync count must be greater than or equal to zero"


@pytest.mark.parametrize(
    ("error", "status", "body"),
    [
        (domain.Invalid({"name": ["is too long"]}), 400, {"message": {"name": ["is too long"]}}),
        (domain.Conflict("Email has already been taken"), 409, {"message": "Email has already been taken"}),
        (domain.Missing("Project"), 404, {"message": "404 Project Not Found"}),
        (domain.Missing(), 404, {"message": "404 Not found"}),
        (domain.NoRoute(), 404, {"message": "404 Not Found"}),
        (domain.Denied(), 403, {"message": "403 Forbidden"}),
        (domain.NotPermitted("not pending approval"), 403, {"message": "not pending approval"}),
        (domain.BadRequest("why"), 400, {"message": "400 Bad request - why"}),
        (domain.Refused({"error": "[]"}), 400, {"message": {"error": "[]"}}),
        (domain.InvalidParameter("id is missing"), 400, {"error": "id is missing"}),
        (domain.Unprocessable(), 422, {"message": "422 Unprocessable Entity"}),
        (InvalidCount("x count must be greater than or equal to zero"), 400,
         {"message": "400 Bad request - x count must be greater than or equal to zero"}),
        # the documented special cases: /allowed's envelope and the shell commands' success:false
        (domain.AccessDenied("no"), 401, {"status": False, "message": "no"}),
        (domain.NotFound("gone"), 404, {"status": False, "message": "gone"}),
        (domain.AccessTimeout("slow"), 503, {"status": False, "message": "slow"}),
        (domain.ProjectCreationError("bad"), 422, {"status": False, "message": "bad"}),
        (domain.RateLimited(), 429, {"message": {"error": domain.RATE_LIMITED}}),
        (domain.CommandRefused("Could not find the given key"), 200,
         {"success": False, "message": "Could not find the given key"}),
        (domain.CommandRefused(None), 200, {"success": False}),
    ],
)
def test_each_domain_error_has_one_gitlab_answer(error: domain.DomainError, status: int, body: object) -> None:
    answer = from_domain(error)
    assert (answer.status, answer.body) == (status, body)


@pytest.mark.parametrize(
    ("value", "strict", "lenient"),
    [
        ("42", 42, 42),
        (" 42 ", None, 42),  # gitlab-shell's key_id may carry white space; a path segment may not
        (42, None, 42),
        ("0", 0, None),
        (True, None, None),
        ("9223372036854775808", None, None),  # past bigint
        ("1" * 5000, None, None),  # more digits than int() takes
        (2**63, None, None),  # a JSON number past bigint
        ("²", None, None),  # a digit to str.isdigit(), not to int()
        ("٣", None, None),  # an Arabic-Indic three: GitLab's ids are ASCII digits
        ("4a", None, None),
    ],
)
def test_one_id_parser_strict_for_paths_and_lenient_for_shell_parameters(
    value: object, strict: int | None, lenient: int | None
) -> None:
    from service.domain.ids import as_id

    assert as_id(value) == strict
    assert as_id(value, lenient=True) == lenient


def test_identifiers_and_gl_repositories_take_ascii_ids_and_an_id_past_bigint_is_nobody() -> None:
    from service.domain.actors import ActorRef, InvalidRepository, parse_gl_repository, parse_identifier

    assert parse_identifier("user-42") == ActorRef(user_id=42, given=True)
    assert parse_identifier("key-7") == ActorRef(owner_of_key_id=7, given=True)
    assert parse_identifier(f"user-{2**63}") == ActorRef(given=True)  # GitLab finds no such user
    assert parse_identifier("user-٣") == ActorRef(given=True)  # not user 3
    assert parse_identifier("user-" + "1" * 5000) == ActorRef(given=True)  # not int()'s ValueError
    assert parse_gl_repository("project-12").container_id == 12
    assert parse_gl_repository("group-9223372036854775807-wiki").container_id == 2**63 - 1
    for invalid in ("project-٣", f"project-{2**63}", f"group-{2**63}-wiki", "wiki-" + "1" * 5000):
        with pytest.raises(InvalidRepository):
            parse_gl_repository(invalid)


@pytest.mark.parametrize("text", ["٣", "1" * 5000])
def test_numbers_given_as_text_are_ascii_and_short_enough_for_int(text: str) -> None:
    """Ruby's \\d and Integer() take ASCII digits only; int() refuses over 4,300 digits with a
    ValueError, which would be a 500, not the 400 or 404 GitLab answers."""
    from service.domain.agents import project_reference
    from service.domain.ids import grape_integer

    assert grape_integer(text) is None  # Grape's "is invalid"
    assert project_reference(text) is None  # names no project
