"""The hottest endpoint, ``POST /v1/chat/completions``, served as plain ASGI.

Every SDK call and widget call of a class goes through this one route. FastAPI's
routing, dependency injection and response classes cost about a fifth of the
gateway's CPU per call (measured with py-spy in ``make bench``), so this route is
answered here, before FastAPI, with exactly the same steps and the same answers:
the token checked first, the body read, :meth:`ChatService.prepare` (parse, resolve,
the ``running`` row), then the JSON answer or the primed SSE stream. Errors come in
the OpenAI shape through :func:`gateway.app.error_response`, as the app's exception
handlers would render them. FastAPI keeps the route for the OpenAPI document (and
for an app served without this wrapper); the behaviour is the same either way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

from gateway.auth import token_from_headers
from gateway.errors import ClassroomError, InvalidToken

log = logging.getLogger("gateway")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ROUTE = "/v1/chat/completions"
SOURCES = frozenset({"sdk", "widget", "loadtest", "dashboard", "cli"})
# The headers Starlette's JSONResponse and StreamingResponse would send.
SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
WANTED = frozenset({
    "authorization", "x-api-key", "x-goog-api-key", "content-type", "x-classroom-source",
})
NO_TOKEN = (
    "No API token was sent. Inside the classroom the SDKs find it automatically; "
    "elsewhere set CLASSROOM_API_TOKEN (or pass api_key=...)."
)


def source_of(header: str | None) -> str:
    """Where a call came from: widgets say so in a header; everything else is the SDK path."""
    source = (header or "sdk").strip().lower()
    return source if source in SOURCES else "sdk"


def route_of(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        return path[len(root):]
    return path


class FastChat:
    """ASGI wrapper: chat completions answered directly, everything else by ``app``."""

    def __init__(self, app: Any) -> None:
        self.app = app  # the FastAPI app; its lifespan puts the services on ``app.state``

    def __getattr__(self, name: str) -> Any:  # ``state``, ``openapi()``: the app's own
        return getattr(self.app, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope["method"] != "POST"
                or route_of(scope) != ROUTE):
            await self.app(scope, receive, send)
            return
        services = getattr(self.app.state, "services", None)
        if services is None:  # not started (no lifespan): let FastAPI answer
            await self.app(scope, receive, send)
            return
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope["headers"]:
            name = raw_name.decode("latin-1").lower()
            if name in WANTED and name not in headers:  # the first one, as Starlette does
                headers[name] = raw_value.decode("latin-1")
        try:
            token = token_from_headers(headers)
            if token is None:
                raise InvalidToken(NO_TOKEN)
            identity = await services.resolver.resolve(token)
            raw = await read_body(receive)
            if raw is None:
                return  # the caller left before sending the whole body
            prepared = await services.chat.prepare(
                identity, raw, source=source_of(headers.get("x-classroom-source")),
                content_type=headers.get("content-type"),
            )
            if prepared.stream:
                stream = await services.chat.open_stream(prepared)
            else:
                body = await services.chat.complete_body(prepared)
        except ClassroomError as error:
            await self._error(error, scope, receive, send)
            return
        except Exception:
            log.exception("unexpected error")
            await self._error(ClassroomError("Something went wrong in the gateway. It was logged."),
                              scope, receive, send)
            return
        if prepared.stream:
            await stream_out(stream, send, receive)
            return
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-length", str(len(body)).encode()),
            (b"content-type", b"application/json"),
        ]})
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    async def _error(error: ClassroomError, scope: Scope, receive: Receive, send: Send) -> None:
        from gateway.app import error_response

        await error_response(error, "openai")(scope, receive, send)


async def read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None when the caller disconnected first."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def stream_out(stream: AsyncIterator[bytes], send: Send, receive: Receive) -> None:
    """Send an SSE stream; if the caller disconnects, stop and close it (as Starlette's
    ``StreamingResponse`` does under an ASGI server that does not raise on send), so the
    pipeline meters what was produced and finishes the row."""
    task = asyncio.current_task()
    assert task is not None
    gone = False

    async def watch() -> None:
        nonlocal gone
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                gone = True
                task.cancel()
                return

    watcher = asyncio.get_running_loop().create_task(watch())
    try:
        await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
        async for chunk in stream:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    except asyncio.CancelledError:
        if not gone:
            raise
        task.uncancel()
    finally:
        watcher.cancel()
        await stream.aclose()  # type: ignore[attr-defined]
