"""Fixtures for the kernel-side ``classroom`` package.

- ``clean_env``: the process environment without any CLASSROOM_* or SDK
  variables (restored afterwards), so tests start from a known state.
- ``student_client``: a :class:`classroom.GatewayClient` for ``student_a`` on
  the session's real gateway (``gateway_server`` from tests/conftest.py).
- ``history_ids``: factory returning the ids of a token's runs on that gateway.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from classroom import GatewayClient

SDK_VARS = (
    "OPENAI_BASE_URL",
    "OPENAI_API_KEY",
    "ANTHROPIC_BASE_URL",
    "ANTHROPIC_API_KEY",
    "GOOGLE_GEMINI_BASE_URL",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
)
CLASSROOM_VARS = ("CLASSROOM_GATEWAY_URL", "CLASSROOM_API_TOKEN")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in SDK_VARS + CLASSROOM_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def student_client(gateway_server, clean_env) -> Iterator[GatewayClient]:
    with GatewayClient(gateway_server.url, gateway_server.tokens["student_a"]) as client:
        yield client


@pytest.fixture
def history_ids(gateway_server) -> Callable[[str], dict[int, dict]]:
    """``history_ids(token)``: that user's runs on the gateway, by id (read with plain httpx)."""

    def fetch(token: str) -> dict[int, dict]:
        response = httpx.get(
            f"{gateway_server.url}/api/history",
            params={"limit": 500},
            headers={"Authorization": f"Bearer {token}"},
        )
        response.raise_for_status()
        return {item["id"]: item for item in response.json()["items"]}

    return fetch
