"""The HTTP client for the classroom gateway, sync and async.

``classroom.client`` is a ready-made :class:`GatewayClient`; it reads
``CLASSROOM_GATEWAY_URL`` and ``CLASSROOM_API_TOKEN`` at every request, so it
follows :func:`classroom.configure` and needs no set-up in the hub::

    import classroom
    classroom.client.models()                      # ['mock/echo', 'mock/lorem', ...]
    reply = classroom.client.chat("Hello!", model="mock/echo")
    print(reply.text, reply.usage)

Every failure is a :class:`~classroom.GatewayError`; ``error.explain()`` says
what to do about it.
"""

from __future__ import annotations

import asyncio
import copy
import threading
import time
import weakref
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import httpx

from gateway.contract import API_TOKEN_VAR, GATEWAY_URL_VAR, SOURCE_HEADER

from ._chat import (
    AsyncChatStream,
    ChatResult,
    ChatStream,
    Messages,
    _Accumulator,
    chat_payload,
    error_from_body,
    result_from_completion,
)
from ._config import gateway_settings
from ._exceptions import GatewayError
from ._resources import ResourcesMixin

DEFAULT_MODEL = "mock/echo"
DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=300.0, write=30.0, pool=30.0)

try:
    _USER_AGENT = f"classroom/{version('jupyter-ai-classroom')}"
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    _USER_AGENT = "classroom"


class GatewayClient(ResourcesMixin):
    """A client for the classroom gateway.

    ``base_url`` and ``token`` default to the environment, read at each request.
    ``source`` is sent as ``X-Classroom-Source`` and recorded in the history
    (``sdk`` for code, ``widget`` for the widgets). The HTTP connections are
    opened on first use and shared by all threads; async calls get one pool per
    event loop. ``transport`` / ``async_transport`` replace the network, for tests.
    """

    def __init__(
        self,
        base_url: str | None = None,
        token: str | None = None,
        *,
        source: str = "sdk",
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._base_url = base_url.strip().rstrip("/") if base_url else None
        self._token = token
        self.source = source
        self.timeout = timeout
        self._transport = transport
        self._async_transport = async_transport
        self._http: httpx.Client | None = None
        self._http_lock = threading.Lock()
        self._async_http: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient]
        self._async_http = weakref.WeakKeyDictionary()

    # -- configuration -------------------------------------------------------------

    @property
    def base_url(self) -> str | None:
        """The gateway's base URL (no trailing slash), or None when not configured."""
        return self._base_url or gateway_settings()[0]

    @property
    def configured(self) -> bool:
        """Whether both the gateway's URL and a token are known."""
        return self.base_url is not None and (self._token or gateway_settings()[1]) is not None

    def with_source(self, source: str) -> GatewayClient:
        """A client like this one (same class and settings) that reports ``source``."""
        clone = copy.copy(self)
        clone.source = source
        clone._http = None
        clone._http_lock = threading.Lock()
        clone._async_http = weakref.WeakKeyDictionary()
        return clone

    def __repr__(self) -> str:
        token = "set" if (self._token or gateway_settings()[1]) else "missing"
        return f"<GatewayClient base_url={self.base_url!r} source={self.source!r} token={token}>"

    def _target(self, path: str) -> tuple[str, str, dict[str, str]]:
        """``(base_url, url, headers)`` for a request to ``path``."""
        env_url, env_token = gateway_settings()
        base, token = self._base_url or env_url, self._token or env_token
        if base is None or token is None:
            missing = GATEWAY_URL_VAR if base is None else API_TOKEN_VAR
            raise GatewayError(f"{missing} is not set.", code="not_configured")
        url = path if path.startswith(("http://", "https://")) else f"{base}/{path.lstrip('/')}"
        headers = {
            "Authorization": f"Bearer {token}",
            SOURCE_HEADER: self.source,
            "User-Agent": _USER_AGENT,
        }
        return base, url, headers

    # -- HTTP, sync ----------------------------------------------------------------

    def _client(self) -> httpx.Client:
        with self._http_lock:
            if self._http is None or self._http.is_closed:
                self._http = httpx.Client(timeout=self.timeout, transport=self._transport)
            return self._http

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        timeout: httpx.Timeout | float | None = None,
        model: str | None = None,
        files: Any = None,
        data: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        """Send one request; return the response, or raise :class:`GatewayError`.

        ``files`` and ``data`` send a multipart form instead of JSON (image edits).
        """
        base, url, headers = self._target(path)
        with _translate_errors(base):
            response = self._client().request(
                method,
                url,
                json=json,
                files=files,
                data=data,
                params=_query(params),
                headers=headers,
                timeout=httpx.USE_CLIENT_DEFAULT if timeout is None else timeout,
            )
        _raise_for_error(response, model=model, url=url)
        return response

    def get(self, path: str, *, params: Mapping[str, Any] | None = None, **kw: Any) -> Any:
        """``GET`` a JSON document."""
        return _json(self.request("GET", path, params=params, **kw))

    def post(self, path: str, json: Any = None, **kw: Any) -> Any:
        """``POST`` JSON, return the JSON answer."""
        return _json(self.request("POST", path, json=json, **kw))

    @contextmanager
    def stream(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        model: str | None = None,
    ) -> Iterator[httpx.Response]:
        """A response whose body is read as it arrives (``with client.stream(...) as r``)."""
        base, url, headers = self._target(path)
        with _translate_errors(base):
            with self._client().stream(
                method, url, json=json, params=_query(params), headers=headers
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    _raise_for_error(response, model=model, url=url)
                yield response

    # -- HTTP, async ---------------------------------------------------------------

    def _aclient(self) -> httpx.AsyncClient:
        # An httpx.AsyncClient's connections belong to the loop that opened them.
        loop = asyncio.get_running_loop()
        client = self._async_http.get(loop)
        if client is None or client.is_closed:
            client = httpx.AsyncClient(timeout=self.timeout, transport=self._async_transport)
            self._async_http[loop] = client
        return client

    async def arequest(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        timeout: httpx.Timeout | float | None = None,
        model: str | None = None,
    ) -> httpx.Response:
        """:meth:`request`, awaited."""
        base, url, headers = self._target(path)
        with _translate_errors(base):
            response = await self._aclient().request(
                method,
                url,
                json=json,
                params=_query(params),
                headers=headers,
                timeout=httpx.USE_CLIENT_DEFAULT if timeout is None else timeout,
            )
        _raise_for_error(response, model=model, url=url)
        return response

    async def aget(self, path: str, *, params: Mapping[str, Any] | None = None, **kw: Any) -> Any:
        return _json(await self.arequest("GET", path, params=params, **kw))

    async def apost(self, path: str, json: Any = None, **kw: Any) -> Any:
        return _json(await self.arequest("POST", path, json=json, **kw))

    @asynccontextmanager
    async def astream(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        model: str | None = None,
    ) -> AsyncIterator[httpx.Response]:
        base, url, headers = self._target(path)
        with _translate_errors(base):
            async with self._aclient().stream(
                method, url, json=json, params=_query(params), headers=headers
            ) as response:
                if response.status_code >= 400:
                    await response.aread()
                    _raise_for_error(response, model=model, url=url)
                yield response

    # -- the classroom API ---------------------------------------------------------

    def me(self) -> dict[str, Any]:
        """Who you are to the gateway: name, school, role, branding, features."""
        result: dict[str, Any] = self.get("/api/me")
        return result

    def models(self) -> list[str]:
        """The names of the models your school lets you use."""
        return [model["id"] for model in self.get("/v1/models").get("data", [])]

    def history(
        self,
        *,
        limit: int = 20,
        offset: int = 0,
        model: str | None = None,
        status: str | None = None,
    ) -> dict[str, Any]:
        """Your recent calls, newest first: ``{"items": [...], "total": n}``."""
        params = {"limit": limit, "offset": offset, "model": model, "status": status}
        result: dict[str, Any] = self.get("/api/history", params=params)
        return result

    def chat(
        self, messages: Messages, model: str = DEFAULT_MODEL, *, stream: bool = False, **params: Any
    ) -> ChatResult:
        """Send a conversation and wait for the whole reply.

        ``messages`` is a list of ``{"role": ..., "content": ...}`` dicts, or just a
        string for a single user message. Extra keyword arguments (``temperature``,
        ``max_tokens``, ...) go into the request as they are. With ``stream=True``
        the reply is streamed and assembled here (same result, first-token latency
        measured).
        """
        if stream:
            chat_stream = self.stream_chat(messages, model, **params)
            for _ in chat_stream:
                pass
            assert chat_stream.result is not None
            return chat_stream.result
        started = time.perf_counter()
        body = self.post(
            "/v1/chat/completions",
            chat_payload(messages, model, stream=False, params=params),
            model=model,
        )
        return result_from_completion(body, model, started)

    def stream_chat(
        self, messages: Messages, model: str = DEFAULT_MODEL, **params: Any
    ) -> ChatStream:
        """Stream a reply: iterate for text pieces, then read ``.result`` / ``.usage``."""
        payload = chat_payload(messages, model, stream=True, params=params)
        return ChatStream(
            lambda: self.stream("POST", "/v1/chat/completions", json=payload, model=model),
            _Accumulator(model=model, url=self.base_url),
        )

    def stream_session(
        self, session_id: str, content: str, *, parent_message_id: str | None = None,
        new_branch: bool = False, model: str | None = None,
        attachments: list[dict[str, Any]] | None = None,
        params: dict[str, Any] | None = None,
    ) -> ChatStream:
        """Stream a session's reply (the gateway keeps the context); after iterating,
        ``.session_reply`` holds the stored messages and what the reply was sent.
        ``attachments`` are ``{"filename", "mime", "data"}`` (base64), see
        :func:`classroom._resources.file_attachment`."""
        body: dict[str, Any] = {"content": content, "new_branch": new_branch, "stream": True}
        if attachments:
            body["attachments"] = attachments
        if params:
            body["params"] = params
        if parent_message_id is not None:
            body["parent_message_id"] = parent_message_id
        if model is not None:
            body["model"] = model
        return ChatStream(
            lambda: self.stream("POST", f"/api/conversations/{session_id}/send", json=body,
                                model=model),
            _Accumulator(model=model or "", url=self.base_url),
        )

    async def achat(
        self, messages: Messages, model: str = DEFAULT_MODEL, *, stream: bool = False, **params: Any
    ) -> ChatResult:
        """:meth:`chat`, awaited."""
        if stream:
            chat_stream = self.astream_chat(messages, model, **params)
            async for _ in chat_stream:
                pass
            assert chat_stream.result is not None
            return chat_stream.result
        started = time.perf_counter()
        body = await self.apost(
            "/v1/chat/completions",
            chat_payload(messages, model, stream=False, params=params),
            model=model,
        )
        return result_from_completion(body, model, started)

    def astream_chat(
        self, messages: Messages, model: str = DEFAULT_MODEL, **params: Any
    ) -> AsyncChatStream:
        """:meth:`stream_chat` for ``async for``."""
        payload = chat_payload(messages, model, stream=True, params=params)
        return AsyncChatStream(
            lambda: self.astream("POST", "/v1/chat/completions", json=payload, model=model),
            _Accumulator(model=model, url=self.base_url),
        )

    # -- lifetime --------------------------------------------------------------------

    def close(self) -> None:
        """Close the sync connections; the client opens new ones if used again."""
        with self._http_lock:
            if self._http is not None:
                self._http.close()
                self._http = None

    async def aclose(self) -> None:
        """Close the connections of the running event loop."""
        client = self._async_http.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()

    def __enter__(self) -> GatewayClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _query(params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if params is None:
        return None
    return {key: value for key, value in params.items() if value is not None}


@contextmanager
def _translate_errors(base: str) -> Iterator[None]:
    """Turn httpx's network errors into a :class:`GatewayError` a student can read."""
    try:
        yield
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
        raise GatewayError(
            f"The gateway URL {base!r} is not an http(s) address.", code="not_configured"
        ) from exc
    except (httpx.ConnectTimeout, httpx.ConnectError, httpx.NetworkError) as exc:
        raise GatewayError(
            f"Cannot connect to the gateway: {exc}", code="gateway_unreachable", url=base
        ) from exc
    except httpx.TimeoutException as exc:
        raise GatewayError(
            "The gateway did not answer in time.", code="gateway_timeout", url=base
        ) from exc
    except httpx.TransportError as exc:
        raise GatewayError(
            f"The connection to the gateway failed: {exc}", code="gateway_unreachable", url=base
        ) from exc


def _raise_for_error(response: httpx.Response, *, model: str | None, url: str) -> None:
    if response.status_code < 400:
        return
    try:
        body = response.json()
    except ValueError:
        body = None
    retry_after = response.headers.get("retry-after")
    raise error_from_body(
        body,
        status=response.status_code,
        model=model,
        url=url,
        retry_after=float(retry_after) if retry_after and retry_after.isdigit() else None,
    )


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise GatewayError(
            f"The gateway sent a response that is not JSON (HTTP {response.status_code}, "
            f"{response.headers.get('content-type', 'no content type')}).",
            code="http_error",
            status=response.status_code,
        ) from None
