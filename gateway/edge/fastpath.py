"""The hottest endpoint, ``POST /v1/chat/completions``, served as plain ASGI.

Every SDK call and widget call of a class goes through this one route. FastAPI's
routing, dependency injection and response classes cost about a fifth of the
gateway's CPU per call (measured with py-spy in ``make bench``), so this route is
answered here, before FastAPI, with the same steps as its FastAPI route and the
pieces that route uses: :func:`gateway.auth.identify`, :meth:`ChatService.prepare`,
then the JSON answer or the primed SSE stream with :data:`gateway.edge.asgi.SSE_HEADERS`;
errors through :func:`gateway.edge.asgi.error_response`. FastAPI keeps the route for the
OpenAPI document (and for an app served without this wrapper).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from gateway.auth import identify
from gateway.contract import SOURCE_HEADER, TOKEN_HEADERS
from gateway.edge.asgi import (
    SSE_HEADERS,
    Receive,
    Scope,
    Send,
    error_response,
    route_of,
    source_of,
    unexpected_error,
)
from gateway.errors import ClassroomError

log = logging.getLogger("gateway")

ROUTE = "/v1/chat/completions"
# The headers of Starlette's StreamingResponse(media_type="text/event-stream").
SSE_START = [(b"content-type", b"text/event-stream; charset=utf-8")] + [
    (name.lower().encode(), value.encode()) for name, value in SSE_HEADERS.items()
]
_SOURCE = SOURCE_HEADER.lower()
# Only these request headers are read (ASGI header names are lower-case already).
WANTED = frozenset({
    b"authorization", *(name.encode() for name in TOKEN_HEADERS), b"content-type", _SOURCE.encode(),
})


class FastChat:
    """ASGI wrapper: chat completions answered directly, everything else by ``app``."""

    def __init__(self, app: Any) -> None:
        self.app = app  # the FastAPI app; its lifespan puts the services on ``app.state``

    def __getattr__(self, name: str) -> Any:  # ``state``, ``openapi()``: the app's own
        return getattr(self.app, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope["method"] != "POST"
                or route_of(scope["path"], scope.get("root_path", "")) != ROUTE):
            await self.app(scope, receive, send)
            return
        services = getattr(self.app.state, "services", None)
        if services is None:  # not started (no lifespan): let FastAPI answer
            await self.app(scope, receive, send)
            return
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope["headers"]:
            if raw_name in WANTED:
                name = raw_name.decode("latin-1")
                if name not in headers:  # the first one, as Starlette does
                    headers[name] = raw_value.decode("latin-1")
        try:
            identity = await identify(services.resolver, headers)
            raw = await read_body(receive)
            if raw is None:
                return  # the caller left before sending the whole body
            prepared = await services.chat.prepare(
                identity, raw, source=source_of(headers.get(_SOURCE)),
                content_type=headers.get("content-type"),
            )
            if prepared.stream:
                stream = await services.chat.open_stream(prepared)
            else:
                body = await services.chat.complete_body(prepared)
        except ClassroomError as error:
            await error_response(error, "openai")(scope, receive, send)
            return
        except Exception:
            log.exception("unexpected error")
            await error_response(unexpected_error(), "openai")(scope, receive, send)
            return
        if prepared.stream:
            await stream_out(stream, send, receive)
            return
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-length", str(len(body)).encode()),
            (b"content-type", b"application/json"),
        ]})
        await send({"type": "http.response.body", "body": body})


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
        await send({"type": "http.response.start", "status": 200, "headers": SSE_START})
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
