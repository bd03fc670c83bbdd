"""Webhooks: which hooks a push fires, GitLab's request headers, the SSRF rules and the delivery.

Sources: app/services/web_hook_service.rb (headers, timeout, logging), app/models/concerns/
web_hooks/auto_disabling.rb (backoff), app/services/concerns/... ActiveHookFilter (branch filters),
gitlab-http's UrlBlocker (local and private addresses).
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import re
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import orjson
import re2  # type: ignore[import-untyped]
from yarl import URL

from service.db.rows import Pool
from service.db import webhooks as hooks_db
from service.db.push_jobs import PushHook
from service.db.webhooks import Attempt, DeliveryRow
from service.domain.errors import Invalid
from service.domain.ref_matcher import wildcard_matches
from service.config import Settings
from service.domain.token_box import UNREADABLE_SECRET, TokenBox, UnreadableToken

log = logging.getLogger("gitlab_internal_api.webhooks")

PUSH_HOOK = "Push Hook"
TAG_PUSH_HOOK = "Tag Push Hook"
SYSTEM_HOOK = "System Hook"

# WebHooks::AutoDisabling (project hooks only, as GitLab's ENABLED_HOOK_TYPES)
TEMPORARILY_DISABLED_FAILURE_THRESHOLD = 3
PERMANENTLY_DISABLED_FAILURE_THRESHOLD = 39
INITIAL_BACKOFF = timedelta(minutes=1)
MAX_BACKOFF = timedelta(days=1)
BACKOFF_GROWTH_FACTOR = 2.0

RESPONSE_BODY_SIZE_LIMIT = 8 * 1024  # WebHookService::RESPONSE_BODY_SIZE_LIMIT


# --- which hooks a change fires ------------------------------------------------------------------


# RE2 reports a pattern it refuses on stderr unless told not to; the refusal is raised anyway
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False


@functools.lru_cache(maxsize=256)
def _untrusted_regexp(pattern: str) -> Any:
    """Gitlab::UntrustedRegexp: RE2, whose matching time is linear in the branch name whatever the
    pattern (a backtracking engine takes exponential time on `(a+)+$`, in the job worker); None for
    what it cannot match so (back-references, look-arounds), remembered like a compiled pattern."""
    try:
        return re2.compile(pattern, options=_RE2_OPTIONS)
    except re2.error:
        return None


def branch_filter_matches(strategy: str, branch_filter: str | None, branch: str) -> bool:
    """ActiveHookFilter#matches? for push events (tag pushes are never filtered)."""
    if strategy == "all_branches" or not branch_filter:
        return True
    if strategy == "regex":
        compiled = _untrusted_regexp(branch_filter)
        # unanchored, as GitLab; a filter stored before validation refused it matches nothing
        return compiled is not None and compiled.search(branch) is not None
    return wildcard_matches(branch_filter, branch)


def hook_fires(hook: PushHook, ref_type: str, branch: str) -> bool:
    if ref_type == "tag":
        return hook.tag_push_events
    return hook.push_events and branch_filter_matches(
        hook.branch_filter_strategy, hook.push_events_branch_filter, branch
    )


def validate_branch_filter(strategy: str | None, branch_filter: str | None) -> None:
    """WebHook validations: a regex filter must be one RE2 takes (untrusted_regexp: true)."""
    if strategy == "regex" and branch_filter:
        if _untrusted_regexp(branch_filter) is None:
            raise Invalid({"push_events_branch_filter": ["is not a valid regular expression"]})


# --- auto-disabling ------------------------------------------------------------------------------


def alert_status(hook_type: str, recent_failures: int, disabled_until: datetime | None, now: datetime) -> str:
    if hook_type != "ProjectHook":
        return "executable"
    if (
        disabled_until is not None
        and disabled_until >= now
        and TEMPORARILY_DISABLED_FAILURE_THRESHOLD < recent_failures <= PERMANENTLY_DISABLED_FAILURE_THRESHOLD
    ):
        return "temporarily_disabled"
    if recent_failures > PERMANENTLY_DISABLED_FAILURE_THRESHOLD:
        return "disabled"
    return "executable"


def executable(hook_type: str, recent_failures: int, disabled_until: datetime | None, now: datetime) -> bool:
    return alert_status(hook_type, recent_failures, disabled_until, now) == "executable"


def after_failure(recent_failures: int, now: datetime) -> tuple[int, datetime | None]:
    """backoff!: one more failure; from the one after the grace threshold on, the hook is disabled
    for a backoff of 1 minute that doubles with each further failure, up to 1 day (disabled for good
    after 40). GitLab's next_backoff reads the backoff count before this failure's increment, and
    that count is the failures past the threshold: the 4th failure backs off 1 minute, the 5th 2."""
    failures = min(max(recent_failures + 1, 1), PERMANENTLY_DISABLED_FAILURE_THRESHOLD + 1)
    if failures <= TEMPORARILY_DISABLED_FAILURE_THRESHOLD:
        return failures, None
    backoffs_before = failures - TEMPORARILY_DISABLED_FAILURE_THRESHOLD - 1
    backoff = INITIAL_BACKOFF * (BACKOFF_GROWTH_FACTOR ** min(backoffs_before, 16))
    return failures, now + min(max(backoff, INITIAL_BACKOFF), MAX_BACKOFF)


# --- SSRF protection -----------------------------------------------------------------------------


def address_blocked(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why a hook may not connect to `address` (UrlBlocker's checks of an address), or None."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback or address.is_unspecified:
        return "Requests to localhost are not allowed"
    if address.is_link_local:
        return "Requests to the link local network are not allowed"
    if address.is_private or address.is_reserved or address.is_multicast:
        return "Requests to the local network are not allowed"
    if address in _SHARED_ADDRESS_SPACE:  # not is_private in Python's table, but UrlBlocker's
        return "Requests to the shared address space are not allowed"
    return None


# RFC 6598's carrier-grade NAT range (cloud metadata services live there too): UrlBlocker's
# validate_shared_address
_SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")


async def blocked_reason(url: str, allow_local: bool) -> str | None:
    """Why a hook may not call `url` (Gitlab::HTTP_V2::UrlBlocker), or None. Every address the host
    resolves to is checked, so a name that points at 127.0.0.1 is refused like the address itself."""
    try:
        parsed = URL(url)
    except ValueError:
        return "URI is invalid"
    if parsed.scheme not in ("http", "https") or not parsed.host:
        return "Only allowed schemes are http, https"
    if allow_local:
        return None
    host = parsed.host.strip("[]")
    try:
        addresses = {ipaddress.ip_address(host)}
    except ValueError:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, parsed.port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError):
            return "Host cannot be resolved or invalid"
        addresses = {ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos}
    for address in addresses:
        reason = address_blocked(address)
        if reason:
            return reason
    return None


async def check_hook_url(url: str, allow_local: bool) -> None:
    """At creation and update: the URL GitLab's `public_url` validator would accept."""
    reason = await blocked_reason(url, allow_local)
    if reason:
        raise Invalid({"url": [f"is blocked: {reason}"]})


# --- delivery ------------------------------------------------------------------------------------


class DeliveryError(Exception):
    """The receiver could not be reached or did not answer in time: "Hook execution failed: <this>"."""


class HookClient(Protocol):
    """How a delivery is sent (service/webhook_client.py): POST `body` to `url` within `timeout`
    seconds, following redirects only to the same origin; the status, headers and the first
    RESPONSE_BODY_SIZE_LIMIT bytes of the answer, or DeliveryError."""

    async def post(
        self, url: str, headers: dict[str, str], body: bytes, verify_ssl: bool, timeout: float, *, allow_local: bool
    ) -> tuple[int, dict[str, str], str]: ...


@dataclass(frozen=True)
class DeliveryConfig:
    gitlab_version: str
    instance_url: str
    timeout: float
    token_box: TokenBox  # hooks' tokens and URLs are stored sealed

    @classmethod
    def from_settings(cls, settings: Settings, token_box: TokenBox) -> DeliveryConfig:
        return cls(settings.gitlab_version, settings.gitlab_url, settings.webhook_timeout, token_box)


def masked_url(url: str) -> str:
    """A URL as the delivery log keeps it: its basic-auth user and password masked
    (WebHookLog#obfuscate_basic_auth)."""
    try:
        parsed = URL(url)
    except ValueError:
        return url
    if parsed.user is None and parsed.password is None:
        return url
    return str(parsed.with_user("*****").with_password("*****" if parsed.password is not None else None))


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    status: str  # the HTTP status, or "internal error"
    retry: bool  # worth another attempt (a failure while the hook is still executable)


def request_headers(config: DeliveryConfig, delivery: DeliveryRow) -> dict[str, str]:
    """WebHookService#build_headers."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"GitLab/{config.gitlab_version}",
        "X-Gitlab-Event": delivery.event_header,
        "X-Gitlab-Webhook-UUID": str(uuid.uuid4()),
        "X-Gitlab-Event-UUID": delivery.event_uuid,
        "X-Gitlab-Instance": config.instance_url,
        # the same for every attempt of one delivery, so a receiver can drop repeats
        "Idempotency-Key": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{delivery.event_uuid}/{delivery.hook_id}")),
    }
    if delivery.token:
        # Gitlab::Utils.remove_line_breaks: a token saved with a trailing newline still works
        headers["X-Gitlab-Token"] = _LINE_BREAK.sub("", config.token_box.open(delivery.token))
    return headers


_LINE_BREAK = re.compile(r"\r?\n")
# URI::MailTo::EMAIL_REGEXP: a value that is an e-mail address, and nothing else
_EMAIL = re.compile(
    r"[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
    r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*"
)


def redacted_emails(value: Any) -> Any:
    """WebHookLog's redact_user_emails: every value of the logged payload that is an e-mail address
    (a commit author's, a pusher's) becomes "[REDACTED]"; the receiver got them, the log does not keep them."""
    if isinstance(value, dict):
        return {key: redacted_emails(item) for key, item in value.items()}
    if isinstance(value, list):
        return [redacted_emails(item) for item in value]
    if isinstance(value, str) and _EMAIL.fullmatch(value):
        return "[REDACTED]"
    return value


async def send(
    pool: Pool, http: HookClient, config: DeliveryConfig, delivery_id: int, *, last_attempt: bool
) -> Outcome | None:
    """One attempt of one delivery: checked, sent, logged, and the hook's failure count kept.
    None when there was nothing to send (gone, done already, or the hook is disabled)."""
    async with pool.acquire() as conn:
        delivery = await hooks_db.delivery_for_sending(conn, delivery_id)
    if delivery is None or delivery.state != "pending":
        return None
    now = datetime.now(UTC)
    if not executable(delivery.hook_type, delivery.recent_failures, delivery.disabled_until, now):
        async with pool.acquire() as conn:
            await hooks_db.finish_delivery(conn, delivery.id, "skipped")
        return None
    try:
        headers = request_headers(config, delivery)
        url = config.token_box.open_url(delivery.url)
    except UnreadableToken:
        # Nothing is sent and nothing is logged for the hook (there is no URL to show), and the hook
        # is not counted as failing: the server's key is wrong, not the receiver. Tried again as a
        # failed attempt would be (the key may be put right meanwhile).
        log.error("web hook %s: delivery %s not sent: %s", delivery.hook_id, delivery.id, UNREADABLE_SECRET)
        retry = not last_attempt
        async with pool.acquire() as conn:
            await hooks_db.finish_delivery(conn, delivery.id, "pending" if retry else "failed")
        return Outcome(delivered=False, status="internal error", retry=retry)
    payload = orjson.loads(delivery.payload)
    started = time.monotonic()
    error: str | None = None
    status_code: int | None = None
    response_headers: dict[str, str] = {}
    body = ""
    reason = await blocked_reason(url, delivery.allow_local_requests)
    if reason:
        error = f"Hook execution failed: URL is blocked: {reason}"
    else:
        try:
            status_code, response_headers, body = await http.post(
                url,
                headers,
                delivery.payload.encode(),
                delivery.enable_ssl_verification,
                config.timeout,
                allow_local=delivery.allow_local_requests,
            )
        except DeliveryError as exc:
            error = f"Hook execution failed: {exc}"[:1024]
    duration = time.monotonic() - started
    # WebHookService#response_category: a success or a redirection (one not followed: another
    # origin) is :ok and enables the hook; anything else backs it off
    delivered = status_code is not None and 200 <= status_code < 400
    status = str(status_code) if status_code is not None else "internal error"
    shown_headers = {k: ("[REDACTED]" if k == "X-Gitlab-Token" else v) for k, v in headers.items()}
    async with pool.acquire() as conn, conn.transaction():
        await hooks_db.log_attempt(
            conn,
            Attempt(
                hook_id=delivery.hook_id,
                trigger=delivery.trigger,
                url=masked_url(url),
                request_headers=shown_headers,
                request_data=redacted_emails(payload),
                response_headers=response_headers,
                response_body=body,
                response_status=status,
                execution_duration=duration,
                internal_error_message=error,
            ),
        )
        retry = False
        if delivered:
            if delivery.recent_failures or delivery.disabled_until:
                await hooks_db.set_failures(conn, delivery.hook_id, 0, None)  # enable!
            await hooks_db.finish_delivery(conn, delivery.id, "delivered")
        else:
            # a blocked URL stays blocked: no retry. GitLab sends a delivery once and backs the hook
            # off once for it; here a failed delivery is tried again, and counts once, when it ends.
            retry = not reason and not last_attempt
            if not retry and delivery.hook_type == "ProjectHook":  # auto-disabling: project hooks only
                failures, disabled_until = after_failure(delivery.recent_failures, now)
                await hooks_db.set_failures(conn, delivery.hook_id, failures, disabled_until)
            await hooks_db.finish_delivery(conn, delivery.id, "pending" if retry else "failed")
    log.info(
        "web hook %s %s: %s",
        delivery.hook_id,
        "delivered" if delivered else "failed",
        status,
        extra={"hook_id": delivery.hook_id, "delivery_id": delivery.id, "error": error},
    )
    return Outcome(delivered=delivered, status=status, retry=retry)


def render_log(entry: hooks_db.HookLogRow) -> dict[str, Any]:
    """GET /projects/:id/hooks/:hook_id/events: GitLab's WebHookLog entity."""
    return {
        "id": entry.id,
        "url": entry.url,
        "trigger": entry.trigger,
        "request_headers": orjson.loads(entry.request_headers),
        "request_data": orjson.loads(entry.request_data),
        "response_headers": orjson.loads(entry.response_headers),
        "response_body": entry.response_body,
        "response_status": entry.response_status,
        "execution_duration": entry.execution_duration,
        "internal_error_message": entry.internal_error_message,
        "created_at": entry.created_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }
