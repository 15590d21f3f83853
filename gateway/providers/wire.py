"""HTTP/1.1 to the vendors: pooled keep-alive connections and httptools' parser.

The vendors are a handful of HTTPS APIs answering JSON or server-sent events over
HTTP/1.1. A general client (aiohttp) spent about a quarter of the gateway's CPU
per chat call on things these calls never use (cookie jars, tracing hooks,
payload registries, per-request timer objects; py-spy in ``make bench``), so the
gateway speaks to them with this one: the request goes out in one write, the
answer is parsed by the same C parser uvicorn serves with, and a small answer is
read without another turn of the event loop.

What a client owes a vendor is all here: TLS with the system's certificates
or a private CA, the network's HTTP proxy (a ``CONNECT`` tunnel; see
:mod:`gateway.config.network` for the variables and why the tunnel is ours),
keep-alive with an idle limit, ``Content-Length`` and chunked bodies, gzip and
deflate answers, redirects (credentials are dropped when one leaves the origin),
back-pressure on large answers, and these limits (:class:`Limits`):

- a bound on requests in flight, and how long a request waits for one of those
  slots (:class:`SlotTimeout`);
- a connect timeout (TCP, the proxy's tunnel and the TLS handshake together);
- a timeout between two reads (the ``timeout`` of each request);
- an optional total deadline of one request, for long downloads
  (:class:`DeadlineExceeded`);
- a largest answer, counted after decompression (:class:`AnswerTooLarge`).

A connection is reused only after its answer was read to the end; one
abandoned halfway is closed.

Failures raise :class:`WireError` (or the ``OSError``/``TimeoutError`` of the
socket); :class:`gateway.providers.http.Vendor` turns them into the gateway's
errors.
"""

from __future__ import annotations

import asyncio
import ssl
import zlib
from collections import deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import httptools
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.config.network import Network, Proxy, open_tunnel

USER_AGENT = "jupyter-ai-classroom-gateway"
REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 10
HIGH_WATER = 4 * 1024 * 1024  # an answer buffered past this pauses the socket
# Headers that may follow a redirect to another origin (never credentials).
SAFE_ACROSS_ORIGINS = frozenset({"accept", "content-type", "user-agent", "accept-encoding"})
NO_HEADERS: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict())


class WireError(Exception):
    """The vendor's connection failed or spoke something that is not HTTP."""


class ServerDisconnected(WireError):
    pass


class BadResponse(WireError):
    pass


class SlotTimeout(WireError):
    """Every connection slot stayed busy for longer than ``Limits.slot_wait``."""


class AnswerTooLarge(WireError):
    """The answer grew past ``Limits.max_answer_bytes`` (the connection is closed)."""


class DeadlineExceeded(TimeoutError):
    """A request with a total deadline (a download) did not finish within it."""


@dataclass(frozen=True)
class Limits:
    """What one :class:`WirePool` allows (the settings ``CLASSROOM_UPSTREAM_*``)."""

    connections: int = 400  # requests in flight across every vendor
    slot_wait: float = 30.0  # seconds a request waits for one of those slots
    connect_timeout: float = 30.0  # TCP + proxy tunnel + TLS handshake, seconds
    max_answer_bytes: int = 512 * 1024 * 1024  # after decompression


# What a request through this client raises when the vendor cannot be talked to.
TRANSPORT_ERRORS = (WireError, OSError, TimeoutError)


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    host_header: str
    path: str  # with the query

    @property
    def origin(self) -> tuple[str, str, int]:
        return (self.scheme, self.host, self.port)


@lru_cache(maxsize=512)
def target_of(url: str) -> Target:
    """A URL taken apart once: the same few vendor endpoints are called over and over."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WireError(f"not an http(s) URL: {url[:100]!r}")
    default = 443 if parts.scheme == "https" else 80
    try:
        port = parts.port or default
    except ValueError as exc:
        raise WireError(f"bad port in URL: {url[:100]!r}") from exc
    host = parts.hostname
    shown = f"[{host}]" if ":" in host else host
    host_header = shown if port == default else f"{shown}:{port}"
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, host, port, host_header, path)


def with_params(url: str, params: Mapping[str, Any] | None) -> str:
    if not params:
        return url
    return url + ("&" if "?" in url else "?") + urlencode({k: str(v) for k, v in params.items()})


@cache
def tls() -> ssl.SSLContext:
    """The system's trust store (``SSL_CERT_FILE``/``SSL_CERT_DIR`` honoured), made once."""
    return ssl.create_default_context()


class Connection(asyncio.Protocol):
    """One keep-alive connection to one origin; answers one request at a time."""

    def __init__(self, origin: tuple[str, str, int]) -> None:
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.response: Response | None = None
        self.closed = False
        self.idle_since = 0.0
        self._raw_headers: list[tuple[str, str]] = []

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.response is None:  # bytes nobody asked for: the connection is unusable
            self.close()
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.response._fail(BadResponse(f"the server's answer is not valid HTTP ({exc})"))
            self.close()

    def eof_received(self) -> bool:
        self.closed = True  # never reused from now on
        return False  # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        response = self.response
        if response is not None and not response.done:
            if response.until_close:  # no length given: the body ends with the connection
                response.keep_alive = False
                response._complete()
            else:
                response._fail(ServerDisconnected(
                    "the server closed the connection before the answer was complete"))

    # -- httptools callbacks ---------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes | None) -> None:
        self._raw_headers.append((name.decode("latin-1"), (value or b"").decode("latin-1")))

    def on_headers_complete(self) -> None:
        response = self.response
        assert response is not None
        status = self.parser.get_status_code()
        if 100 <= status < 200:  # an interim answer (we never ask for one): skip it
            self._raw_headers = []
            return
        headers = CIMultiDict(self._raw_headers)
        self._raw_headers = []
        response._start(status, headers)

    def on_body(self, body: bytes) -> None:
        if self.response is not None:
            self.response._feed(body)

    def on_message_complete(self) -> None:
        response = self.response
        if response is None or response.status == 0:
            return
        response.keep_alive = self.parser.should_keep_alive()
        response._complete()

    # -- ours ------------------------------------------------------------------------------

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def send(self, head: bytes, body: bytes | None) -> None:
        assert self.transport is not None
        if body and len(body) <= 65536:
            self.transport.write(head + body)  # one write, one packet for a usual call
        else:
            self.transport.write(head)
            if body:
                self.transport.write(body)


class Response:
    """A vendor's answer: status and headers at once, the body read whole or as it comes."""

    def __init__(self, pool: WirePool, connection: Connection, timeout: float,
                 deadline: float | None = None) -> None:
        self.pool = pool
        self.connection = connection
        self.timeout = timeout
        self.deadline = deadline  # the event loop's time by which the answer must be in
        self._received = 0
        self.status = 0
        self.headers = NO_HEADERS  # until the answer's head is in
        self.done = False
        self.keep_alive = False
        self.until_close = False
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._paused = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._decoder: Any = None
        self._released = False

    # -- fed by the connection -------------------------------------------------------------

    def _start(self, status: int, headers: CIMultiDict[str]) -> None:
        self.status = status
        self.headers = CIMultiDictProxy(headers)
        encoding = headers.get("content-encoding", "").strip().lower()
        if encoding in ("gzip", "x-gzip", "deflate"):
            self._decoder = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib header
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        self.until_close = "content-length" not in headers and not chunked
        self._wake()

    def _feed(self, data: bytes) -> None:
        if self._decoder is not None:
            try:
                data = self._decoder.decompress(data)
            except zlib.error as exc:
                self._fail(BadResponse(f"the server's compressed answer is broken ({exc})"))
                self.connection.close()
                return
        if data:
            self._received += len(data)
            if self._received > self.pool.max_answer_bytes:
                self._fail(AnswerTooLarge(
                    f"the answer is larger than {self.pool.max_answer_bytes} bytes"))
                self.connection.close()
                return
            self._chunks.append(data)
            self._buffered += len(data)
            if self._buffered > HIGH_WATER and not self._paused and self.connection.transport:
                self._paused = True
                self.connection.transport.pause_reading()
        self._wake()

    def _complete(self) -> None:
        if self._error is not None:  # refused (too large, broken): never a whole answer
            self._wake()
            return
        if self._decoder is not None:
            rest = self._decoder.flush()
            if rest:
                self._chunks.append(rest)
        self.done = True
        self._wake()

    def _fail(self, error: BaseException) -> None:
        if self._error is None and not self.done:
            self._error = error
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- read by the caller ----------------------------------------------------------------

    async def _wait(self) -> None:
        """Until the connection brings something, for at most ``timeout``."""
        loop = asyncio.get_running_loop()
        delay, error = self.timeout, None
        if self.deadline is not None:
            left = self.deadline - loop.time()
            if left <= self.timeout:
                delay, error = left, DeadlineExceeded(
                    "the answer did not arrive in full before its deadline")
                if left <= 0:
                    raise error
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(delay, self._time_out, waiter, error)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def _time_out(self, waiter: asyncio.Future[None], error: TimeoutError | None) -> None:
        if not waiter.done():
            waiter.set_exception(error or TimeoutError("the server did not answer in time"))

    async def _started(self) -> None:
        while self.status == 0:
            if self._error is not None:
                raise self._error
            await self._wait()

    async def read(self) -> bytes:
        """The whole body; the connection goes back to the pool."""
        try:
            while not self.done:
                if self._error is not None:
                    raise self._error
                if self._paused:
                    self._resume()
                await self._wait()
        except BaseException:
            self.release()
            raise
        body = self._take()
        self.release()
        return body

    async def iter_any(self) -> AsyncIterator[bytes]:
        """The body as the network delivers it (everything buffered since the last step)."""
        try:
            while True:
                if self._chunks:
                    data = self._take()
                    if self._paused:
                        self._resume()
                    yield data
                    continue
                if self._error is not None:
                    raise self._error
                if self.done:
                    return
                await self._wait()
        finally:
            self.release()  # read to the end: reused; left early: closed

    def _take(self) -> bytes:
        """Everything buffered so far (no copy when it came in one piece)."""
        chunks, self._chunks, self._buffered = self._chunks, [], 0
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _resume(self) -> None:
        self._paused = False
        if self.connection.transport is not None and not self.connection.closed:
            self.connection.transport.resume_reading()

    def release(self) -> None:
        """Give the connection back (kept alive only if the answer was read to its end)."""
        if self._released:
            return
        self._released = True
        self.pool._done(self.connection, reusable=self.done and self.keep_alive
                        and self._error is None)


class WirePool:
    """Keep-alive connections per origin, and a bound on requests in flight."""

    def __init__(self, limit: int | None = None, keepalive: float = 15.0,
                 idle_per_origin: int = 100, ssl_context: ssl.SSLContext | None = None,
                 network: Network | None = None, limits: Limits = Limits()) -> None:
        self.limit = limits.connections if limit is None else limit
        self.slot_wait = limits.slot_wait
        self.connect_timeout = limits.connect_timeout
        self.max_answer_bytes = limits.max_answer_bytes
        self.keepalive = keepalive
        self.idle_per_origin = idle_per_origin
        self.ssl_context = ssl_context or (network.ssl_context if network else None)
        # Only a network with a proxy is consulted: a direct call looks nothing up.
        self.network = network if network is not None and network.proxied else None
        self._idle: dict[tuple[str, str, int], deque[Connection]] = {}
        self._busy = 0
        self._queue: deque[asyncio.Future[None]] = deque()
        self._closed = False

    async def request(
        self, method: str, url: str, *, headers: Mapping[str, str], body: bytes | None,
        timeout: float, params: Mapping[str, Any] | None = None,
        deadline: float | None = None,
    ) -> Response:
        """Send one request, following redirects; the answer's status and headers are in.

        ``timeout`` bounds each wait for the server (and the connect, with
        ``Limits.connect_timeout``); ``deadline``, in seconds, bounds the whole
        request, redirects and the reading of the body included."""
        url = with_params(url, params)
        target = target_of(url)
        sent = dict(headers)
        until = None if deadline is None else asyncio.get_running_loop().time() + deadline
        for hop in range(MAX_REDIRECTS + 1):
            response = await self._send(method, target, sent, body, timeout, until)
            location = response.headers.get("location")
            if response.status not in REDIRECTS or not location or hop == MAX_REDIRECTS:
                return response
            await response.read()  # drain it so the connection can be reused
            url = urljoin(url, location)
            if response.status == 303 or (response.status in (301, 302) and method == "POST"):
                method, body = "GET", None
                sent = {k: v for k, v in sent.items() if k.lower() != "content-type"}
            origin, target = target.origin, target_of(url)
            if target.origin != origin:  # never send a key to another host
                sent = {k: v for k, v in sent.items() if k.lower() in SAFE_ACROSS_ORIGINS}
        raise AssertionError("unreachable")

    async def _send(self, method: str, target: Target, headers: Mapping[str, str],
                    body: bytes | None, timeout: float, until: float | None) -> Response:
        proxy = self._proxy(target)
        # Through a proxy, an http:// request names its whole URL (https:// is tunnelled).
        head = _head(method, target, headers, body,
                     proxy if proxy is not None and target.scheme == "http" else None)
        await self._enter()
        connection: Connection | None = None
        try:
            connection = self._reuse(target.origin) or await self._connect(
                target, timeout, until, proxy)
            response = Response(self, connection, timeout, until)
            connection.response = response
            try:
                connection.send(head, body)
            except RuntimeError as exc:  # the transport closed under us
                raise ServerDisconnected("the server closed the connection") from exc
            await response._started()
            return response
        except BaseException:
            if connection is not None:
                connection.close()
            self._leave()
            raise

    def _proxy(self, target: Target) -> Proxy | None:
        if self.network is None:
            return None
        return self.network.proxy_for(target.scheme, target.host, target.port)

    async def _enter(self) -> None:
        if self._busy < self.limit and not self._queue:
            self._busy += 1
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._queue.append(waiter)
        timer = loop.call_later(self.slot_wait, self._slot_timeout, waiter)
        try:
            await waiter  # the slot is handed over by _leave
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._leave()  # it was granted as we were cancelled: pass it on
            elif waiter in self._queue:
                self._queue.remove(waiter)
            raise
        finally:
            timer.cancel()

    def _slot_timeout(self, waiter: asyncio.Future[None]) -> None:
        if not waiter.done():
            waiter.set_exception(SlotTimeout(
                f"all {self.limit} connections to the vendors stayed busy for "
                f"{self.slot_wait:g} s"))

    def _leave(self) -> None:
        while self._queue:
            waiter = self._queue.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._busy -= 1

    def _done(self, connection: Connection, reusable: bool) -> None:
        connection.response = None
        if reusable and not connection.closed and not self._closed:
            idle = self._idle.setdefault(connection.origin, deque())
            if len(idle) < self.idle_per_origin:
                connection.idle_since = asyncio.get_running_loop().time()
                idle.append(connection)
            else:
                connection.close()
        else:
            connection.close()
        self._leave()

    def _reuse(self, origin: tuple[str, str, int]) -> Connection | None:
        idle = self._idle.get(origin)
        if not idle:
            return None
        oldest_allowed = asyncio.get_running_loop().time() - self.keepalive
        while idle and (idle[0].closed or idle[0].idle_since < oldest_allowed):
            idle.popleft().close()  # the server closed it, or it sat too long
        while idle:
            connection = idle.pop()  # the most recently used: the least likely to be stale
            transport = connection.transport
            if not connection.closed and transport is not None and not transport.is_closing():
                return connection
            connection.close()
        return None

    async def _connect(self, target: Target, timeout: float, until: float | None,
                       proxy: Proxy | None) -> Connection:
        loop = asyncio.get_running_loop()
        timeout = min(timeout, self.connect_timeout)
        if until is not None:
            timeout = min(timeout, max(0.0, until - loop.time()))
        secure = target.scheme == "https"
        context = (self.ssl_context or tls()) if secure else None
        if proxy is not None and context is not None:
            transport, connection = await open_tunnel(
                proxy, target.host, target.port, context,
                lambda: Connection(target.origin), timeout)
            connection.connection_made(transport)
            return connection
        host, port = (proxy.host, proxy.port) if proxy is not None else (target.host, target.port)
        _, connection = await asyncio.wait_for(loop.create_connection(
            lambda: Connection(target.origin), host, port, ssl=context,
            server_hostname=target.host if secure else None,
        ), timeout)
        return connection

    async def aclose(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            while idle:
                idle.pop().close()
        self._idle.clear()


def _head(method: str, target: Target, headers: Mapping[str, str], body: bytes | None,
          proxy: Proxy | None = None) -> bytes:
    if proxy is None:
        lines = [f"{method} {target.path} HTTP/1.1\r\nHost: {target.host_header}\r\n"]
    else:  # absolute form, for the proxy
        lines = [f"{method} http://{target.host_header}{target.path} HTTP/1.1\r\n"
                 f"Host: {target.host_header}\r\n"]
        if proxy.authorization:
            lines.append(f"Proxy-Authorization: {proxy.authorization}\r\n")
    given = set()
    for name, value in headers.items():
        text = str(value)
        if "\r" in name or "\n" in name or "\r" in text or "\n" in text or ":" in name:
            raise WireError(f"the header {name[:40]!r} contains a line break or colon")
        lines.append(f"{name}: {text}\r\n")
        given.add(name.lower())
    if "user-agent" not in given:
        lines.append(f"User-Agent: {USER_AGENT}\r\n")
    if "accept-encoding" not in given:
        lines.append("Accept-Encoding: gzip, deflate\r\n")
    if "accept" not in given:
        lines.append("Accept: */*\r\n")
    if body is not None or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body) if body else 0}\r\n")
    lines.append("\r\n")
    return "".join(lines).encode("utf-8")
