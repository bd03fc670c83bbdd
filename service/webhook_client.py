"""The HTTP client of webhook deliveries (service/domain/webhooks.py's HookClient), on aiohttp.

Receivers are other people's servers: no cookies are kept between them, no proxy variables are
honoured, and a redirect is followed only to the same scheme, host and port (a redirect elsewhere
could lead past the SSRF check made on the hook's URL): the redirect answer itself is the outcome
then, a delivery as GitLab counts it. Redirects in circles are an error.
"""

from __future__ import annotations

import ipaddress
import socket
from types import TracebackType

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from service.domain.webhooks import RESPONSE_BODY_SIZE_LIMIT, DeliveryError, address_blocked

MAX_REDIRECTS = 3


class BlockedAddress(OSError):
    """A delivery's host resolved to an address it may not reach (aiohttp wraps it as a DNS error)."""


class CheckedResolver(AbstractResolver):
    """The resolver of deliveries that may not reach the local network: it refuses a name that
    resolves there at the moment the connection is made, so the addresses checked are the ones
    connected to. The check on the hook's URL before the request resolves the name too; a name whose
    answer changes in between (DNS rebinding) would otherwise pass it and then connect to
    127.0.0.1 or a metadata address (GitLab's UrlBlocker pins the address it checked likewise)."""

    def __init__(self, resolver: AbstractResolver | None = None) -> None:
        self._resolver = resolver or aiohttp.DefaultResolver()

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        results = await self._resolver.resolve(host, port, family)
        for result in results:
            reason = address_blocked(ipaddress.ip_address(result["host"].split("%")[0]))
            if reason:
                raise BlockedAddress(f"URL is blocked: {reason}")
        return results

    async def close(self) -> None:
        await self._resolver.close()


def _receivers_session(connector: aiohttp.BaseConnector | None = None) -> aiohttp.ClientSession:
    """A session for other people's servers: no cookies kept between them, no proxy variables."""
    return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar(), trust_env=False)


class WebhookClient:
    """One per job worker (or per admin test delivery): `async with WebhookClient() as client`."""

    def __init__(self, resolver: AbstractResolver | None = None) -> None:
        # one session for hooks that may reach the local network, one whose every connection is to
        # an address checked as it was resolved (`resolver`: a test's, under the check)
        self._open = _receivers_session()
        self._checked = _receivers_session(aiohttp.TCPConnector(resolver=CheckedResolver(resolver)))

    async def __aenter__(self) -> WebhookClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self._open.close()
        await self._checked.close()

    async def post(
        self, url: str, headers: dict[str, str], body: bytes, verify_ssl: bool, timeout: float, *, allow_local: bool
    ) -> tuple[int, dict[str, str], str]:
        session = self._open if allow_local else self._checked
        try:
            return await self._post(session, URL(url), headers, body, verify_ssl, aiohttp.ClientTimeout(total=timeout))
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            if isinstance(exc, aiohttp.ClientConnectorError) and isinstance(exc.os_error, BlockedAddress):
                raise DeliveryError(str(exc.os_error)) from None
            # ValueError: a URL aiohttp will not send to (a user name holding an encoded ':')
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from None

    async def _post(
        self,
        session: aiohttp.ClientSession,
        target: URL,
        headers: dict[str, str],
        body: bytes,
        verify_ssl: bool,
        timeout: aiohttp.ClientTimeout,
    ) -> tuple[int, dict[str, str], str]:
        for _ in range(MAX_REDIRECTS + 1):
            async with session.post(
                target, data=body, headers=headers, ssl=verify_ssl, allow_redirects=False, timeout=timeout
            ) as response:
                text = (await response.content.read(RESPONSE_BODY_SIZE_LIMIT)).decode("utf-8", "replace")
                location = response.headers.get("Location")
                if response.status in (301, 302, 303, 307, 308) and location:
                    following = target.join(URL(location))
                    if (following.scheme, following.host, following.port) == (target.scheme, target.host, target.port):
                        target = following
                        continue
                # istr keys are not JSON keys
                return response.status, {str(k): v for k, v in response.headers.items()}, text
        # a receiver redirecting in circles: an error, as Gitlab::HTTP's RedirectionTooDeep (a last
        # redirect answer would be taken for a delivery)
        raise DeliveryError("too many redirects")
