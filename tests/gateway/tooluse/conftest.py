"""Fixtures for the MCP tests.

- ``mcp_server``: the session's classroom MCP server (``classroom_mcp_url`` of the root
  conftest); its URL ends in ``/mcp``.
- ``silent_port``: a loopback port that accepts connections and never answers.
- ``mcp_gateway``: a gateway served by uvicorn that knows ``mcp_server`` as the
  classroom's own and waits 3 s for an MCP server.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def mcp_server(classroom_mcp_url: str) -> str:
    return classroom_mcp_url


@pytest.fixture(scope="session")
def silent_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)  # the kernel completes handshakes; nobody ever reads
        yield sock.getsockname()[1]


@pytest.fixture(scope="session")
def mcp_gateway(start_gateway: Any, mcp_server: str) -> Any:
    return start_gateway(CLASSROOM_MCP_SERVER_URL=mcp_server, CLASSROOM_MCP_TIMEOUT_SECONDS="3")
