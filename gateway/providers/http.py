"""Talking to a vendor's REST API: one httpx client, one mapping of failures to errors.

Every adapter sends through :class:`Vendor`, so a connection error, a timeout or
an HTTP error status means the same thing whichever vendor answered it:

- connect errors and other transport failures → ``provider_unavailable``
- timeouts → ``provider_timeout``
- 401/403 → ``provider_auth_failed`` (the vendor's text is dropped: it may quote the key)
- 429 → ``provider_rate_limited`` with the vendor's ``Retry-After``
- 5xx → ``provider_unavailable``; 400s → ``invalid_request`` (naming the field),
  ``context_length_exceeded`` or ``content_blocked`` in words.

Every such error carries ``upstream_status``, which the retry loop reads.
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import httpx

from gateway.errors import (
    ClassroomError,
    ContentBlocked,
    ContextLengthExceeded,
    InvalidRequest,
    ModelNotFound,
    PayloadTooLarge,
    ProviderAuthFailed,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
)

LABELS = {
    "openai": "OpenAI", "anthropic": "Anthropic", "google": "Google", "elevenlabs": "ElevenLabs",
    "kling": "Kling", "legnext": "LegNext (Midjourney)", "mock": "The mock provider",
}
SECRETS = re.compile(r"\b(sk|sk-ant|sk-proj|AIza|xi|key)[-_][A-Za-z0-9_\-*]{6,}")
CONTEXT_WORDS = ("context length", "context_length", "too many tokens", "prompt is too long",
                 "maximum context", "input token count", "exceeds the maximum number of tokens")
BLOCK_WORDS = ("content_policy", "content policy", "safety system", "moderation", "safety")


@dataclass
class VendorError:
    """What a vendor's error body says, in its own terms."""

    message: str
    code: str | None = None
    param: str | None = None
    retry_after: float | None = None
    status: int | None = None  # what the vendor means, when its HTTP status says otherwise


def redact(text: str) -> str:
    return SECRETS.sub("[redacted]", text)


def retry_after_of(headers: httpx.Headers) -> float | None:
    """Seconds to wait, from ``retry-after-ms`` (OpenAI) or ``retry-after`` (seconds or a date)."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def error_for_status(provider: str, status: int, said: VendorError) -> ClassroomError:
    label = LABELS.get(provider, provider)
    message = redact(said.message).strip() or f"HTTP {status}"
    lowered = f"{said.code or ''} {message}".lower()
    error: ClassroomError
    if status in (401, 403):
        error = ProviderAuthFailed(
            f"{label} refused the classroom's key (HTTP {status}). It has been taken out of "
            "use; tell your teacher. Another model may still work."
        )
    elif status == 429:
        wait = f" Try again in {max(1, round(said.retry_after))} s." if said.retry_after else ""
        error = ProviderRateLimited(
            f"{label} is limiting how fast the classroom may call it: {message}.{wait}",
            retry_after=said.retry_after,
        )
    elif status in (408, 504):
        error = ProviderTimeout(f"{label} took too long to answer (HTTP {status}). Try again.")
    elif status >= 500:
        error = ProviderUnavailable(
            f"{label} is having problems (HTTP {status}: {message}). Try again shortly, or use "
            "another model.", retry_after=said.retry_after,
        )
    elif any(w in lowered for w in CONTEXT_WORDS):
        error = ContextLengthExceeded(
            f"The conversation is too long for this model: {message}. Shorten it or start a "
            "new one.", param=said.param or "messages",
        )
    elif any(w in lowered for w in BLOCK_WORDS):
        error = ContentBlocked(f"{label} blocked this request: {message}.", param=said.param)
    elif status == 404 and "model" in lowered:
        error = ModelNotFound(f"{label} does not know this model: {message}.", param="model")
    elif status == 413:
        error = PayloadTooLarge(f"{label} says the request is too large: {message}.")
    else:
        field = f" (field '{said.param}')" if said.param else ""
        error = InvalidRequest(
            f"{label} did not accept the request{field}: {message}.", param=said.param
        )
    error.upstream_status = status
    return error


ErrorParser = Callable[[int, Any], VendorError]


def generic_error(status: int, body: Any) -> VendorError:
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            return VendorError(str(inner.get("message") or inner), inner.get("code"),
                               inner.get("param"))
        return VendorError(str(inner))
    return VendorError(str(body)[:300] if body else f"HTTP {status}")


class Vendor:
    """One vendor's base URL, error shape and the shared httpx client."""

    def __init__(
        self, provider: str, default_base: str, client: httpx.AsyncClient,
        parse_error: ErrorParser = generic_error,
    ) -> None:
        self.provider = provider
        self.default_base = default_base.rstrip("/")
        self.client = client
        self.parse_error = parse_error

    def base(self, base_url: str | None) -> str:
        return (base_url or self.default_base).rstrip("/")

    def error_from(self, response: httpx.Response, body: bytes) -> ClassroomError:
        try:
            parsed: Any = json.loads(body) if body else None
        except ValueError:
            parsed = body.decode("utf-8", "replace")[:300]
        said = self.parse_error(response.status_code, parsed)
        if said.retry_after is None:
            said.retry_after = retry_after_of(response.headers)
        return error_for_status(self.provider, said.status or response.status_code, said)

    def transport_error(self, exc: httpx.HTTPError) -> ClassroomError:
        label = LABELS.get(self.provider, self.provider)
        error: ClassroomError
        if isinstance(exc, httpx.TimeoutException):
            error = ProviderTimeout(f"{label} did not answer in time. Try again.")
        else:
            error = ProviderUnavailable(
                f"{label} could not be reached ({type(exc).__name__}). Try again shortly."
            )
        return error

    async def send(
        self, method: str, url: str, *, timeout: float, **kwargs: Any
    ) -> httpx.Response:
        """One request, fully read; an error status raises the mapped error."""
        try:
            response = await self.client.request(method, url, timeout=timeout, **kwargs)
        except httpx.HTTPError as exc:
            raise self.transport_error(exc) from exc
        if response.status_code >= 400:
            raise self.error_from(response, response.content)
        return response

    async def open(
        self, stack: AsyncExitStack, method: str, url: str, *, timeout: float, **kwargs: Any
    ) -> httpx.Response:
        """A streamed response, closed with ``stack``; an error status raises before any byte."""
        try:
            response = await stack.enter_async_context(
                self.client.stream(method, url, timeout=timeout, **kwargs)
            )
            if response.status_code >= 400:
                raise self.error_from(response, await response.aread())
        except httpx.HTTPError as exc:
            raise self.transport_error(exc) from exc
        return response

    async def lines(self, response: httpx.Response) -> AsyncIterator[str]:
        try:
            async for line in response.aiter_lines():
                yield line
        except httpx.HTTPError as exc:
            raise self.transport_error(exc) from exc


async def sse_events(lines: AsyncIterator[str]) -> AsyncIterator[tuple[str | None, str]]:
    """(event name, data) pairs of a server-sent event stream."""
    event: str | None = None
    data: list[str] = []
    async for line in lines:
        if not line.strip():
            if data:
                yield event, "\n".join(data)
            event, data = None, []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
    if data:
        yield event, "\n".join(data)
