"""What every fake shares: request log, scripted failures, key behaviours, directives.

Control endpoints of each fake (under its prefix):

- ``POST /_control/reset``: forget requests and scripts;
- ``POST /_control/fail``: ``{"times": N, "status": 503, "path": "chat", "retry_after": 1,
  "retry_after_ms": 50, "delay": 0}``: the next N matching requests fail that way
  (``delay`` > 0 instead hangs that long before answering normally);
- ``POST /_control/set``: free-form settings of a fake (e.g. Kling's polls to success);
- ``GET /_control/requests``: what was received (method, path, query, headers, body, and
  ``time``: ``time.monotonic()`` when the request had arrived, the clock a gateway's key pool
  runs on), with the ``usage`` the fake answered where it reports tokens (OpenAI chat).

Keys: a secret containing ``bad`` is refused (401), ``limited`` is always rate limited.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import secrets
import struct
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesParser
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

ErrorShape = Callable[..., dict[str, Any]]  # (status, kind, message, retry_after=) → body
DIRECTIVE = re.compile(r"\[\[([a-z\-]+)([^\]]*)\]\]")


@dataclass
class Script:
    times: int
    status: int = 500
    path: str = ""
    retry_after: float | None = None
    retry_after_ms: int | None = None
    delay: float = 0.0


@dataclass
class FakeState:
    vendor: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    scripts: list[Script] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    def reset(self) -> None:
        self.requests.clear()
        self.scripts.clear()
        self.settings.clear()


def directives(text: str) -> dict[str, dict[str, str]]:
    """``[[usage prompt=10 cached=2]]`` → {"usage": {"prompt": "10", "cached": "2"}}."""
    found: dict[str, dict[str, str]] = {}
    for name, rest in DIRECTIVE.findall(text):
        found[name] = dict(pair.split("=", 1) for pair in rest.split() if "=" in pair)
    return found


def strip_directives(text: str) -> str:
    return DIRECTIVE.sub("", text).strip()


def words(text: str) -> list[str]:
    return re.findall(r"\S+", text)


def request_id(prefix: str = "req_") -> str:
    return prefix + secrets.token_hex(12)


def base_of(request: Request) -> str:
    """This fake's own base URL, mount prefix included (``request.base_url`` drops it)."""
    return f"{request.url.scheme}://{request.url.netloc}{request.scope.get('root_path', '')}"


def png(width: int = 8, height: int = 8, color: tuple[int, int, int] = (200, 40, 90)) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    raw = b"".join(b"\0" + bytes(color) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2,
                                                              0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def png_b64(color: tuple[int, int, int] = (200, 40, 90)) -> str:
    return base64.b64encode(png(color=color)).decode()


FAKE_MP3 = b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x64" + b"\x00" * 400


def parse_multipart(content_type: str, body: bytes) -> tuple[dict[str, str], list[dict[str, Any]]]:
    message = BytesParser().parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\nMIME-Version: 1.0\r\n\r\n" + body)
    fields: dict[str, str] = {}
    files: list[dict[str, Any]] = []
    for part in message.get_payload() if message.is_multipart() else []:
        assert isinstance(part, Message)
        name = part.get_param("name", header="content-disposition")
        data = part.get_payload(decode=True) or b""
        assert isinstance(data, bytes)
        if part.get_filename() is None:
            fields[str(name)] = data.decode()
        else:
            files.append({"name": name, "filename": part.get_filename(),
                          "content_type": part.get_content_type(), "size": len(data)})
    return fields, files


def _record_end(record: dict[str, Any], response: Response) -> None:
    """When the vendor finished answering (a stream: its last byte), so that tests can
    count the calls it was serving at once."""
    record["finished"] = time.monotonic()
    if not isinstance(response, StreamingResponse):
        return
    body = response.body_iterator

    async def timed() -> AsyncIterator[Any]:
        # the time of its last chunk (a caller that stops reading at [DONE] may leave this
        # generator unfinished)
        async for chunk in body:
            record["finished"] = time.monotonic()
            yield chunk

    response.body_iterator = timed()


class Fake:
    """A vendor app: its routes plus the shared recording, scripting and key checks."""

    def __init__(self, vendor: str, error: ErrorShape,
                 key_of: Callable[[Request], str | None]) -> None:
        self.state = FakeState(vendor)
        self.error = error
        self.key_of = key_of
        self.auth_status = 401  # Google answers a bad key with 400 INVALID_ARGUMENT
        self.routes: list[Route] = [
            Route("/_control/reset", self._reset, methods=["POST"]),
            Route("/_control/fail", self._fail, methods=["POST"]),
            Route("/_control/set", self._set, methods=["POST"]),
            Route("/_control/requests", self._requests, methods=["GET"]),
        ]

    def route(self, path: str, methods: list[str], *, auth: bool = True) -> Callable[
            [Callable[[Request], Awaitable[Response]]], Callable[[Request], Awaitable[Response]]]:
        def register(handler: Callable[[Request], Awaitable[Response]]) -> Any:
            async def wrapped(request: Request) -> Response:
                refused = await self._before(request, auth)
                if refused is not None:
                    return refused
                response = await handler(request)
                response.headers.setdefault("x-request-id", request_id())
                _record_end(request.state.record, response)
                return response

            self.routes.append(Route(path, wrapped, methods=methods))
            return handler

        return register

    def app(self) -> Starlette:
        return Starlette(routes=self.routes)

    def fail(self, status: int, kind: str, message: str,
             headers: dict[str, str] | None = None) -> JSONResponse:
        wait = (headers or {}).get("retry-after")
        body = self.error(status, kind, message, retry_after=float(wait) if wait else None)
        return JSONResponse(body, status_code=status,
                            headers={"x-request-id": request_id(), **(headers or {})})

    async def _before(self, request: Request, auth: bool) -> Response | None:
        arrived = time.monotonic()
        body = await request.body()
        try:
            parsed: Any = json.loads(body) if body else None
        except ValueError:
            parsed = None
        request.state.record = {
            "method": request.method, "path": request.url.path.removeprefix(
                request.scope.get("root_path", "")),
            "query": dict(request.query_params), "headers": dict(request.headers),
            "json": parsed, "size": len(body), "time": arrived,
        }
        self.state.requests.append(request.state.record)
        for script in self.state.scripts:
            if script.times > 0 and script.path in request.url.path:
                script.times -= 1
                if script.delay:
                    await asyncio.sleep(script.delay)
                    break
                headers = {}
                if script.retry_after is not None:
                    headers["retry-after"] = str(script.retry_after)
                if script.retry_after_ms is not None:
                    headers["retry-after-ms"] = str(script.retry_after_ms)
                kind = "rate_limit" if script.status == 429 else "server"
                return self.fail(script.status, kind, f"scripted failure {script.status}", headers)
        if not auth:
            return None
        key = self.key_of(request)
        if not key:
            return self.fail(self.auth_status, "auth", "missing API key")
        if "bad" in key:
            return self.fail(self.auth_status, "auth",
                             f"Incorrect API key provided: {key[:6]}***{key[-4:]}")
        if "limited" in key:
            return self.fail(429, "rate_limit", "Rate limit reached for requests",
                             {"retry-after": "20", "retry-after-ms": "20000"})
        return None

    async def _reset(self, request: Request) -> Response:
        self.state.reset()
        return JSONResponse({"ok": True})

    async def _fail(self, request: Request) -> Response:
        spec = await request.json()
        self.state.scripts.append(Script(**spec))
        return JSONResponse({"ok": True})

    async def _set(self, request: Request) -> Response:
        self.state.settings.update(await request.json())
        return JSONResponse({"ok": True})

    async def _requests(self, request: Request) -> Response:
        return JSONResponse(self.state.requests)


def sse_event(data: Any, event: str | None = None, newline: str = "\n") -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data)
    head = f"event: {event}{newline}" if event else ""
    return f"{head}data: {payload}{newline}{newline}".encode()


# -- tool calls: one rule for every fake vendor ------------------------------------------------
# ``[[tool]]`` in the last user text calls the first tool offered, ``[[tool name=X]]`` that
# one, ``[[tools]]`` every tool offered at once (parallel calls). Arguments are derived from
# each tool's JSON schema (its required properties, one sample value by type). A conversation
# that ends with tool results is answered from them ("... tool said: <results>"), so a
# client's loop ends.

SAMPLES: dict[str, Any] = {"string": "Seoul", "integer": 2, "number": 2.5, "boolean": True,
                           "array": [], "object": {}}


def sample_arguments(schema: dict[str, Any] | None) -> dict[str, Any]:
    schema = schema or {}
    properties = schema.get("properties") or {}
    arguments: dict[str, Any] = {}
    for name in schema.get("required") or list(properties)[:1]:
        spec = properties.get(name) or {}
        if spec.get("enum"):
            arguments[name] = spec["enum"][0]
        else:
            kind = spec.get("type", "string")
            arguments[name] = SAMPLES.get(kind if isinstance(kind, str) else kind[0], "Seoul")
    return arguments


def planned_tool_calls(said: dict[str, dict[str, str]],
                       tools: list[tuple[str, dict[str, Any] | None]]) -> list[tuple[str,
                                                                                   dict[str, Any]]]:
    """(name, arguments) of the calls a fake makes for these directives and offered tools."""
    if not tools:
        return []
    if "tools" in said:
        return [(name, sample_arguments(schema)) for name, schema in tools]
    if "tool" in said:
        wanted = said["tool"].get("name")
        for name, schema in tools:
            if wanted in (None, name):
                return [(name, sample_arguments(schema))]
    return []


def tool_id(prefix: str) -> str:
    return prefix + secrets.token_hex(10)
