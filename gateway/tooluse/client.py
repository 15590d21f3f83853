"""The gateway as an MCP client (the official ``mcp`` SDK, streamable HTTP).

Every connection is opened for one piece of work (list the tools, or call one) and
closed after it: a student's turn is short, and a session kept open per user would
be state the gateway must share between replicas. Each connection goes through the
server-side request forgery guard (:class:`gateway.config.network.GuardedBackend`): the
URL is checked against the school's allow-list, and every address its host resolves
to is checked as the connection opens. Failures come back in words
(:class:`~gateway.errors.McpServerError`, :class:`~gateway.errors.McpTimeout`,
:class:`~gateway.errors.ServerNotAllowed`); a tool's own error is a result
(``ToolOutcome.is_error``), as MCP defines it, so the model can read it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from mcp import ClientSession
from mcp.client.streamable_http import streamablehttp_client

from gateway.config.network import AllowList, DestinationRefused, GuardedBackend
from gateway.errors import McpServerError, McpTimeout, ServerNotAllowed
from gateway.tooluse.store import Connection


@dataclass
class McpTool:
    name: str
    description: str
    input_schema: dict[str, Any]

    def as_openai(self) -> dict[str, Any]:
        schema = self.input_schema if self.input_schema.get("type") == "object" else {
            "type": "object", "properties": {}}
        return {"type": "function", "function": {
            "name": self.name, "description": self.description, "parameters": schema}}

    def public(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description,
                "input_schema": self.input_schema}


@dataclass
class ToolOutcome:
    text: str
    is_error: bool = False


def _text_of(result: Any) -> str:
    """A tool result as text: its structured content as JSON when it has one, else its
    text blocks (other blocks named)."""
    structured = getattr(result, "structuredContent", None)
    if structured:
        value = structured.get("result", structured) if set(structured) == {"result"} \
            else structured
        return json.dumps(value, ensure_ascii=False)
    pieces = []
    for block in getattr(result, "content", None) or []:
        kind = getattr(block, "type", "")
        pieces.append(block.text if kind == "text" else f"[{kind}]")
    return "\n".join(pieces)


def _unwrap(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def guarded_client(allow: AllowList, backend: GuardedBackend, *,
                   headers: dict[str, str] | None = None, timeout: httpx.Timeout | None = None,
                   auth: httpx.Auth | None = None) -> httpx.AsyncClient:
    """An httpx client whose every connection and every request (redirects included)
    passes the guard; never the environment's proxy (see :mod:`gateway.config.network`)."""
    transport = httpx.AsyncHTTPTransport()
    # httpx takes no network backend; its connection pool does. The guard must sit where
    # the connection is opened, so that the address checked is the address used.
    transport._pool._network_backend = backend  # noqa: SLF001

    async def on_request(request: httpx.Request) -> None:
        try:
            allow.check_url(str(request.url))
        except DestinationRefused as refused:
            backend.refused = refused
            raise httpx.ConnectError(str(refused), request=request) from None

    return httpx.AsyncClient(
        transport=transport, headers=headers, timeout=timeout, auth=auth,
        follow_redirects=True, max_redirects=3, trust_env=False,
        event_hooks={"request": [on_request]})


class McpClient:
    def __init__(self, timeout: float = 15.0) -> None:
        self.timeout = timeout

    @asynccontextmanager
    async def session(self, connection: Connection, allow: AllowList) -> AsyncIterator[
            ClientSession]:
        try:
            allow.check_url(connection.url)
        except DestinationRefused as refused:
            raise ServerNotAllowed(str(refused), param="url") from None
        backend = GuardedBackend(allow)

        def factory(headers: dict[str, str] | None = None,
                    timeout: httpx.Timeout | None = None,
                    auth: httpx.Auth | None = None) -> httpx.AsyncClient:
            return guarded_client(allow, backend, headers=headers, timeout=timeout, auth=auth)

        label = f"The MCP server '{connection.name}'"
        try:
            async with asyncio.timeout(self.timeout):
                async with streamablehttp_client(
                    connection.url, headers=connection.headers or None,
                    timeout=self.timeout, sse_read_timeout=self.timeout,
                    httpx_client_factory=factory,
                ) as (read, write, _session_id):
                    async with ClientSession(
                        read, write, read_timeout_seconds=timedelta(seconds=self.timeout)
                    ) as session:
                        await session.initialize()
                        yield session
        except (ServerNotAllowed, McpServerError):
            raise
        except TimeoutError:
            raise McpTimeout(f"{label} did not answer within {self.timeout:g} s.") from None
        except BaseException as exc:  # the SDK reports failures as exception groups
            inner = _unwrap(exc)
            if isinstance(inner, (asyncio.CancelledError, KeyboardInterrupt)):
                raise
            if backend.refused is not None:
                raise ServerNotAllowed(str(backend.refused), param="url") from None
            if isinstance(inner, (ServerNotAllowed, McpServerError)):
                raise inner from None
            if isinstance(inner, TimeoutError | httpx.TimeoutException):
                raise McpTimeout(f"{label} did not answer within {self.timeout:g} s.") \
                    from None
            if isinstance(inner, httpx.HTTPStatusError):
                raise McpServerError(f"{label} answered HTTP {inner.response.status_code}; "
                                     "check its URL and headers.") from None
            if isinstance(inner, httpx.ConnectError | OSError):
                raise McpServerError(f"{label} cannot be reached at {connection.url} "
                                     "(is it running?).") from None
            raise McpServerError(f"{label} failed: {type(inner).__name__}: "
                                 f"{str(inner)[:300]}") from None

    async def list_tools(self, connection: Connection, allow: AllowList) -> list[McpTool]:
        async with self.session(connection, allow) as session:
            listed = await session.list_tools()
        return [McpTool(t.name, t.description or "", dict(t.inputSchema or {}))
                for t in listed.tools]

    async def call_tool(self, connection: Connection, allow: AllowList, name: str,
                        arguments: dict[str, Any]) -> ToolOutcome:
        async with self.session(connection, allow) as session:
            result = await session.call_tool(name, arguments,
                                             read_timeout_seconds=timedelta(seconds=self.timeout))
        return ToolOutcome(_text_of(result), bool(result.isError))
