"""What every way of answering a request shares, FastAPI route or plain ASGI: the ASGI
types, where a path belongs, errors in each face's shape, and chat answers (JSON or SSE)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from fastapi.responses import JSONResponse, Response, StreamingResponse

from gateway.errors import ClassroomError

if TYPE_CHECKING:
    from gateway.services.chat import ChatService, PreparedChat

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Server-sent events must reach the caller as they are written: no cache, no proxy buffer.
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
SOURCES = frozenset({"sdk", "widget", "loadtest", "dashboard", "cli"})


def source_of(header: str | None) -> str:
    """Where a call came from: widgets say so in a header; everything else is the SDK path."""
    source = (header or "sdk").strip().lower()
    return source if source in SOURCES else "sdk"


def route_of(path: str, root: str = "") -> str:
    """The path inside the app (the hub's service prefix, ASGI's ``root_path``, removed)."""
    return path[len(root):] if root and path.startswith(root) else path


def face_of_path(path: str, root: str = "") -> str:
    """Which face a path belongs to, so that its errors come in that vendor's shape."""
    path = route_of(path, root)
    for face in ("anthropic", "google"):
        if path.startswith(f"/{face}/"):
            return face
    return "openai"


def error_response(error: ClassroomError, face: str = "openai") -> JSONResponse:
    """The error in the shape of the face it answers (OpenAI, Anthropic or Google), so each
    official SDK raises its own exception class."""
    if face == "anthropic":
        body = error.to_anthropic()
    elif face == "google":
        body = error.to_google()
    else:
        body = error.to_openai()
    return JSONResponse(body, status_code=error.status, headers=error.headers())


def unexpected_error() -> ClassroomError:
    """What a caller hears of a bug (the traceback goes to the log)."""
    return ClassroomError("Something went wrong in the gateway. It was logged.")


async def chat_response(chat: ChatService, prepared: PreparedChat) -> Response:
    """A prepared chat call answered: its primed SSE stream, or its JSON."""
    if prepared.stream:
        stream = await chat.open_stream(prepared)
        return StreamingResponse(stream, media_type="text/event-stream", headers=SSE_HEADERS)
    return Response(await chat.complete_body(prepared), media_type="application/json")
