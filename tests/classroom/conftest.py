"""Fixtures for the kernel-side ``classroom`` package.

- ``clean_env``: the process environment without any CLASSROOM_* or SDK
  variables (restored afterwards), so tests start from a known state.
- ``student_client``: a :class:`classroom.GatewayClient` for ``student_a`` on
  the session's real gateway (``gateway_server`` from tests/conftest.py).
- ``history_ids``: factory returning the ids of a token's runs on that gateway.
- ``recorder``: a transport that passes requests to the gateway and keeps each
  one (method, path, JSON body), to assert on what reached the gateway.
- ``make_client``: factory ``make_client(who="student_a", transport=None)`` of
  clients on the session's gateway.
- ``requires``: ``requires("/v1/embeddings")`` fails the test, naming the path,
  when the gateway does not serve it (read from its OpenAPI document).
- ``practice_off``: the mock switch off before and after the test.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from classroom import GatewayClient
from classroom._mock import SWITCH

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


@dataclass
class Recorded:
    method: str
    path: str
    body: dict | None
    status: int


@dataclass
class RecordingTransport(httpx.BaseTransport):
    """The real network, with a copy of every request and its status kept in ``seen``."""

    inner: httpx.BaseTransport = field(default_factory=httpx.HTTPTransport)
    seen: list[Recorded] = field(default_factory=list)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = None
        content = request.read()
        if content and request.headers.get("content-type", "").startswith("application/json"):
            body = json.loads(content)
        response = self.inner.handle_request(request)
        self.seen.append(Recorded(request.method, request.url.path, body, response.status_code))
        return response

    def bodies(self, path_end: str) -> list[dict]:
        return [r.body for r in self.seen if r.path.endswith(path_end) and r.body is not None]


@pytest.fixture
def recorder() -> RecordingTransport:
    return RecordingTransport()


@pytest.fixture
def make_client(gateway_server, clean_env) -> Iterator[Callable[..., GatewayClient]]:
    made: list[GatewayClient] = []

    def make(who: str = "student_a", transport: httpx.BaseTransport | None = None
             ) -> GatewayClient:
        client = GatewayClient(gateway_server.url, gateway_server.tokens[who], transport=transport)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture(scope="session")
def gateway_paths(gateway_server) -> set[str]:
    document = httpx.get(f"{gateway_server.url}/openapi.json", timeout=30).json()
    return set(document.get("paths", {}))


@pytest.fixture
def requires(gateway_paths) -> Callable[..., None]:
    def check(*paths: str) -> None:
        missing = [p for p in paths if p not in gateway_paths]
        if missing:
            pytest.fail(f"the gateway does not serve {', '.join(missing)}")

    return check


@pytest.fixture(autouse=True)
def practice_off() -> Iterator[None]:
    SWITCH.set(False)
    yield
    SWITCH.set(False)
