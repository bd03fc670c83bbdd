"""The HTTP client of webhook deliveries (service/domain/webhooks.py's HookClient), on aiohttp.

Receivers are other people's servers: no cookies are kept between them, no proxy variables are
honoured, and a redirect is followed only to the same scheme, host and port (a redirect elsewhere
could lead past the SSRF check made on the hook's URL): the redirect answer itself is the outcome
then.
"""

from __future__ import annotations

from types import TracebackType

import aiohttp
from yarl import URL

from service.domain.webhooks import RESPONSE_BODY_SIZE_LIMIT, DeliveryError

MAX_REDIRECTS = 3
TOO_MANY_REDIRECTS = 310  # what the log shows when the receiver redirects in circles


class WebhookClient:
    """One per job worker (or per admin test delivery): `async with WebhookClient() as client`."""

    def __init__(self) -> None:
        self._session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar(), trust_env=False)

    async def __aenter__(self) -> WebhookClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self._session.close()

    async def post(
        self, url: str, headers: dict[str, str], body: bytes, verify_ssl: bool, timeout: float
    ) -> tuple[int, dict[str, str], str]:
        try:
            return await self._post(URL(url), headers, body, verify_ssl, aiohttp.ClientTimeout(total=timeout))
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            # ValueError: a URL aiohttp will not send to (a user name holding an encoded ':')
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from None

    async def _post(
        self, target: URL, headers: dict[str, str], body: bytes, verify_ssl: bool, timeout: aiohttp.ClientTimeout
    ) -> tuple[int, dict[str, str], str]:
        for _ in range(MAX_REDIRECTS + 1):
            async with self._session.post(
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
        return TOO_MANY_REDIRECTS, {}, "too many redirects"
