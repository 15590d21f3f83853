"""Talking to a vendor's REST API: one HTTP client, one mapping of failures to errors.

Every adapter sends through :class:`Vendor`, so a connection error, a timeout or
an HTTP error status means the same thing whichever vendor answered it:

- connect errors and other transport failures → ``provider_unavailable``
- timeouts → ``provider_timeout``
- 401/403 → ``provider_auth_failed`` (the vendor's text is dropped: it may quote the key)
- 429 → ``provider_rate_limited`` with the vendor's ``Retry-After``
- 5xx → ``provider_unavailable``; 400s → ``invalid_request`` (naming the field),
  ``context_length_exceeded`` or ``content_blocked`` in words.

Every such error carries ``upstream_status``, which the retry loop reads.

Requests go out through the gateway's own HTTP/1.1 client (:mod:`gateway.providers.wire`,
held by :class:`Upstream`): on the hot path it costs a fraction of a general client's CPU
per request (measured with ``make bench``). Multipart uploads, rare and slow anyway, use
httpx's encoder, with the same proxy decision and TLS context (:mod:`gateway.config.network`).

The limits on a call, and which setting each is (the gateway's ``Settings``):

- waiting for one of the gateway's connection slots to the vendors:
  ``upstream_slot_wait_seconds`` (of ``upstream_connections``) → ``provider_unavailable``;
- opening a connection (TCP, the proxy's tunnel, TLS): ``upstream_connect_timeout_seconds``
  → ``provider_timeout``;
- between two reads of the answer: the kind's own timeout (``chat_timeout_seconds``,
  ``image_timeout_seconds`` …, given by each adapter as ``timeout``) → ``provider_timeout``;
- a whole download of a job's result: ``download_deadline_seconds`` → ``provider_timeout``;
- the size of an answer: ``upstream_max_answer_bytes`` → ``provider_error``.
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from gateway.config.network import Network, ProxyError
from gateway.errors import (
    ClassroomError,
    ContentBlocked,
    ContextLengthExceeded,
    InvalidRequest,
    ModelNotFound,
    PayloadTooLarge,
    ProviderAuthFailed,
    ProviderError,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
)
from gateway.providers.wire import (
    TRANSPORT_ERRORS,
    AnswerTooLarge,
    DeadlineExceeded,
    Limits,
    Response,
    SlotTimeout,
    WirePool,
)

LABELS = {
    "openai": "OpenAI", "anthropic": "Anthropic", "google": "Google", "elevenlabs": "ElevenLabs",
    "kling": "Kling", "legnext": "LegNext (Midjourney)", "mock": "the mock provider",
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


def retry_after_of(headers: Mapping[str, str]) -> float | None:
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


def malformed_stream(provider: str) -> ClassroomError:
    """A stream chunk that is not the vendor's protocol (not JSON where JSON must be)."""
    return ProviderError(
        f"{LABELS.get(provider, provider)} sent a reply the classroom could not read (a broken "
        "stream chunk). What arrived before it is kept. Try again."
    )


def incomplete_stream(provider: str) -> ClassroomError:
    """A stream that ended without the vendor's end marker: the reply is cut short."""
    return ProviderUnavailable(
        f"{LABELS.get(provider, provider)} ended the reply before it was complete. What arrived "
        "is kept; try again."
    )


def generic_error(status: int, body: Any) -> VendorError:
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            return VendorError(str(inner.get("message") or inner), inner.get("code"),
                               inner.get("param"))
        return VendorError(str(inner))
    return VendorError(str(body)[:300] if body else f"HTTP {status}")


class Upstream:
    """The connections to every vendor, shared by all adapters."""

    def __init__(self, network: Network | None = None, limits: Limits | None = None,
                 download_deadline: float = 600.0) -> None:
        self.network = network if network is not None else Network.from_environ()
        self.limits = limits = limits or Limits()
        self.download_deadline = download_deadline
        self.wire = WirePool(network=self.network, limits=limits)
        self._httpx: dict[str | None, httpx.AsyncClient] = {}

    def httpx_for(self, url: str) -> httpx.AsyncClient:
        """The httpx client for ``url``: one per proxy, our proxy choice and trust store."""
        proxy = self.network.proxy_url(url)
        client = self._httpx.get(proxy)
        if client is None:
            client = self._httpx[proxy] = httpx.AsyncClient(
                limits=httpx.Limits(max_connections=self.limits.connections,
                                    max_keepalive_connections=100),
                follow_redirects=True, trust_env=False, proxy=proxy,
                verify=self.network.ssl_context,
            )
        return client

    async def aclose(self) -> None:
        for client in self._httpx.values():
            await client.aclose()
        await self.wire.aclose()


@dataclass
class Reply:
    """A vendor's answer, fully read (the part of a response adapters use)."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes

    def json(self) -> Any:
        return orjson.loads(self.content)


class Streamed:
    """A vendor's streamed answer; read it with :meth:`Vendor.line_batches`."""

    def __init__(self, response: Response) -> None:
        self.response = response
        self.status_code = response.status
        self.headers = response.headers


def dumps(value: Any) -> bytes:
    """JSON bytes of a request body: orjson's, or json's for what orjson refuses (an
    integer beyond 64 bits, a key that is not a string)."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value).encode()


def _body(kwargs: dict[str, Any]) -> tuple[dict[str, str], bytes | None, Any]:
    """Headers, body bytes and query parameters of a request's keyword arguments."""
    headers = {k: str(v) for k, v in (kwargs.pop("headers", None) or {}).items()}
    body: bytes | None = None
    if "json" in kwargs:
        body = dumps(kwargs.pop("json"))
        if not any(k.lower() == "content-type" for k in headers):
            headers["content-type"] = "application/json"
    for name in ("content", "data"):
        if name in kwargs:
            value = kwargs.pop(name)
            body = value.encode() if isinstance(value, str) else value
    params = kwargs.pop("params", None)
    if kwargs:
        raise TypeError(f"unsupported request options: {sorted(kwargs)}")
    return headers, body, params


class Vendor:
    """One vendor's base URL, error shape and the shared connections."""

    def __init__(
        self, provider: str, default_base: str, client: Upstream,
        parse_error: ErrorParser = generic_error,
    ) -> None:
        self.provider = provider
        self.default_base = default_base.rstrip("/")
        self.client = client
        self.parse_error = parse_error

    def base(self, base_url: str | None) -> str:
        return (base_url or self.default_base).rstrip("/")

    def error_from(self, response: Reply | Streamed | httpx.Response,
                   body: bytes) -> ClassroomError:
        try:
            parsed: Any = json.loads(body) if body else None
        except ValueError:
            parsed = body.decode("utf-8", "replace")[:300]
        said = self.parse_error(response.status_code, parsed)
        if said.retry_after is None:
            said.retry_after = retry_after_of(response.headers)
        return error_for_status(self.provider, said.status or response.status_code, said)

    def transport_error(self, exc: BaseException) -> ClassroomError:
        label = LABELS.get(self.provider, self.provider)
        error: ClassroomError
        if isinstance(exc, DeadlineExceeded):
            error = ProviderTimeout(
                f"The file from {label} did not finish downloading within "
                f"{self.client.download_deadline:g} s. Try again later.")
        elif isinstance(exc, httpx.TimeoutException | TimeoutError):
            error = ProviderTimeout(f"{label} did not answer in time. Try again.")
        elif isinstance(exc, SlotTimeout):
            error = ProviderUnavailable(
                f"The classroom has too many calls to the AI providers open right now to "
                f"start yours ({exc}). Try again in a moment.")
        elif isinstance(exc, AnswerTooLarge):
            error = ProviderError(
                f"{label}'s answer was larger than the classroom accepts "
                f"({self.client.limits.max_answer_bytes // (1024 * 1024)} MiB); it was "
                "dropped.")
        elif isinstance(exc, ProxyError):
            error = ProviderUnavailable(
                f"{label} could not be reached through the network's proxy ({exc}). "
                "Tell your teacher; the classroom's operator can check the proxy settings.")
        else:
            error = ProviderUnavailable(
                f"{label} could not be reached ({type(exc).__name__}). Try again shortly."
            )
        return error

    async def send(self, method: str, url: str, *, timeout: float,
                   deadline: float | None = None, **kwargs: Any) -> Reply:
        """One request, fully read; an error status raises the mapped error.

        ``timeout`` bounds each wait for the vendor; ``deadline`` (seconds) the whole call."""
        if "files" in kwargs:
            return await self._send_multipart(method, url, timeout=timeout, **kwargs)
        response = await self._request(method, url, timeout, kwargs, deadline)
        try:
            reply = Reply(response.status, response.headers, await response.read())
        except TRANSPORT_ERRORS as exc:
            raise self.transport_error(exc) from exc
        if reply.status_code >= 400:
            raise self.error_from(reply, reply.content)
        return reply

    async def download(self, url: str, *, timeout: float, **kwargs: Any) -> Reply:
        """A job's result file: ``timeout`` between reads, ``download_deadline`` in all."""
        return await self.send("GET", url, timeout=timeout,
                               deadline=self.client.download_deadline, **kwargs)

    async def _request(self, method: str, url: str, timeout: float,
                       kwargs: dict[str, Any], deadline: float | None = None) -> Response:
        """The answer's status and headers (its body still to read), or the mapped error."""
        headers, body, params = _body(kwargs)
        try:
            return await self.client.wire.request(
                method, url, headers=headers, body=body, params=params, timeout=timeout,
                deadline=deadline)
        except TRANSPORT_ERRORS as exc:
            raise self.transport_error(exc) from exc

    async def _send_multipart(self, method: str, url: str, *, timeout: float,
                              **kwargs: Any) -> Reply:
        try:
            client = self.client.httpx_for(url)
            timeouts = httpx.Timeout(timeout, connect=min(timeout,
                                                          self.client.limits.connect_timeout),
                                     pool=self.client.limits.slot_wait)
            async with client.stream(method, url, timeout=timeouts, **kwargs) as response:
                content = await self._read_limited(response)
        except httpx.PoolTimeout as exc:
            raise self.transport_error(SlotTimeout(str(exc) or "no free connection")) from exc
        except (httpx.HTTPError, AnswerTooLarge, OSError) as exc:
            raise self.transport_error(exc) from exc
        reply = Reply(response.status_code, response.headers, content)
        if reply.status_code >= 400:
            raise self.error_from(reply, reply.content)
        return reply

    async def _read_limited(self, response: httpx.Response) -> bytes:
        """An httpx answer's body, refused past the same size as the wire client's."""
        limit = self.client.limits.max_answer_bytes
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > limit:
                raise AnswerTooLarge(f"the answer is larger than {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def open(
        self, stack: AsyncExitStack, method: str, url: str, *, timeout: float, **kwargs: Any
    ) -> Streamed:
        """A streamed response, closed with ``stack``; an error status raises before any byte."""
        response = await self._request(method, url, timeout, kwargs)
        stack.callback(response.release)
        if response.status >= 400:
            try:
                content = await response.read()
            except TRANSPORT_ERRORS as exc:
                raise self.transport_error(exc) from exc
            raise self.error_from(Streamed(response), content)
        return Streamed(response)

    async def line_batches(self, response: Streamed) -> AsyncIterator[list[str]]:
        """The text lines of a streamed answer (any length: an image can be one SSE line),
        in the batches the network delivered them: what arrived together can be passed on
        together, and the parsers above pay one step per read rather than one per line."""
        pending: list[bytes] = []  # the start of a line that has not ended yet
        try:
            async for chunk in response.response.iter_any():
                if b"\n" not in chunk:
                    pending.append(chunk)
                    continue
                parts = chunk.split(b"\n")
                if pending:
                    pending.append(parts[0])
                    parts[0] = b"".join(pending)
                    pending = []
                tail = parts.pop()
                if tail:
                    pending.append(tail)
                yield [line.rstrip(b"\r").decode("utf-8", "replace") for line in parts]
        except TRANSPORT_ERRORS as exc:
            raise self.transport_error(exc) from exc
        if pending:
            yield [b"".join(pending).rstrip(b"\r").decode("utf-8", "replace")]

    async def json_events(
        self, response: Streamed, done: str | None = None,
    ) -> AsyncIterator[list[JsonEvent]]:
        """The JSON events of a streamed answer, in the batches the network delivered them.
        An event whose data is ``done`` (OpenAI's ``[DONE]``) ends the stream; data that is
        not a JSON object is a :func:`malformed_stream`. Either way, the events before it
        are delivered first (and what the caller was sent is metered)."""
        async for events in sse_batches(self.line_batches(response)):
            batch: list[JsonEvent] = []
            last = len(events) - 1
            for index, (name, text) in enumerate(events):
                ended = done is not None and text.strip() == done
                try:
                    data = None if ended else orjson.loads(text)
                except ValueError:
                    data = None
                if not isinstance(data, dict):
                    if batch:
                        batch[-1].last = True
                        yield batch
                    if ended:
                        return
                    raise malformed_stream(self.provider)
                batch.append(JsonEvent(name, text, data, index == last))
            yield batch


@dataclass
class JsonEvent:
    """One server-sent event of a vendor's stream, read as a JSON object."""

    name: str | None  # the SSE event name (Anthropic's)
    text: str  # the data as it came
    data: dict[str, Any]
    last: bool  # the last event of its network read


class SSEParser:
    """Server-sent events from text lines, fed as they come."""

    def __init__(self) -> None:
        self.event: str | None = None
        self.data: list[str] = []

    def feed(self, lines: Iterable[str]) -> list[tuple[str | None, str]]:
        """The (event name, data) pairs the lines complete."""
        events: list[tuple[str | None, str]] = []
        for line in lines:
            if not line.strip():
                if self.data:
                    events.append((self.event, "\n".join(self.data)))
                self.event, self.data = None, []
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                self.event = value
            elif name == "data":
                self.data.append(value)
        return events

    def close(self) -> list[tuple[str | None, str]]:
        """An event the stream ended without a blank line after."""
        return [(self.event, "\n".join(self.data))] if self.data else []


async def sse_batches(
    batches: AsyncIterator[list[str]],
) -> AsyncIterator[list[tuple[str | None, str]]]:
    """The events of a server-sent event stream, in the batches their lines came in."""
    parser = SSEParser()
    async for lines in batches:
        events = parser.feed(lines)
        if events:
            yield events
    rest = parser.close()
    if rest:
        yield rest
