"""Fixtures for the MCP tests.

- ``mcp_server``: the classroom MCP server (``python -m gateway.mcpserver``) on a free
  loopback port for the session, stopped by PID; its URL ends in ``/mcp``.
- ``silent_port``: a loopback port that accepts connections and never answers.
- ``mcp_gateway``: a gateway served by uvicorn that knows ``mcp_server`` as the
  classroom's own and waits 3 s for an MCP server.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.procs import REPO, free_port, stop_process, wait_until


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="session")
def mcp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log_path = tmp_path_factory.mktemp("mcp") / "mcp.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway.mcpserver", "--port", str(port)],
            cwd=str(REPO), stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: _listening(port), 30, "classroom MCP server", process)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        stop_process(process)


@pytest.fixture(scope="session")
def silent_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)  # the kernel completes handshakes; nobody ever reads
        yield sock.getsockname()[1]


@pytest.fixture(scope="session")
def mcp_gateway(start_gateway: Any, mcp_server: str) -> Any:
    return start_gateway(CLASSROOM_MCP_SERVER_URL=mcp_server, CLASSROOM_MCP_TIMEOUT_SECONDS="3")
