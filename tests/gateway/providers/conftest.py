"""Fixtures for the provider tests: the fake vendors and gateways whose keys point at them.

- ``fakes``: every fake vendor (``python -m tests.fakes``) on a free loopback port, for
  the session, stopped by PID; ``fakes.reset()``, ``fakes.fail(vendor, ...)``,
  ``fakes.set(vendor, ...)`` and ``fakes.requests(vendor)`` script and inspect them.
  It is reset before each test that uses it.
- ``keys_toml``: a keys file body (TOML) with one key per vendor pointing at the fakes.
- ``vendor_gateway``: a gateway served by uvicorn with those keys, fast retries and
  fast job polling, shared by the session.
- ``api``: a small client for ``vendor_gateway`` as a given user (history, runs, jobs).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.procs import REPO, free_port, http_ok, stop_process, wait_until

FAST = {
    "CLASSROOM_RETRY_BASE_SECONDS": "0.01",
    "CLASSROOM_RETRY_MAX_SECONDS": "5",
    "CLASSROOM_JOB_POLL_SECONDS": "0.05",
    "CLASSROOM_MOCK_JOB_SECONDS": "0.4",
    "CLASSROOM_MOCK_MEDIA_MS": "0",
    "CLASSROOM_CHAT_TIMEOUT_SECONDS": "5",
}


@dataclass
class Fakes:
    url: str
    process: subprocess.Popen[bytes]

    def base(self, vendor: str) -> str:
        return f"{self.url}/{vendor}"

    def reset(self) -> None:
        for vendor in ("openai", "anthropic", "google", "elevenlabs", "kling", "legnext"):
            httpx.post(f"{self.url}/{vendor}/_control/reset").raise_for_status()

    def fail(self, vendor: str, **script: Any) -> None:
        httpx.post(f"{self.url}/{vendor}/_control/fail", json=script).raise_for_status()

    def set(self, vendor: str, **settings: Any) -> None:
        httpx.post(f"{self.url}/{vendor}/_control/set", json=settings).raise_for_status()

    def requests(self, vendor: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/{vendor}/_control/requests")
        response.raise_for_status()
        return [r for r in response.json() if "/_control/" not in r["path"]]


@pytest.fixture(scope="session")
def fake_vendors(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fakes]:
    port = free_port()
    log_path = tmp_path_factory.mktemp("fakes") / "fakes.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes", "--port", str(port)],
            cwd=str(REPO), stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        wait_until(http_ok(f"http://127.0.0.1:{port}/health"), 30, "fake vendors", process)
        yield Fakes(f"http://127.0.0.1:{port}", process)
    finally:
        stop_process(process)


@pytest.fixture
def fakes(fake_vendors: Fakes) -> Fakes:
    fake_vendors.reset()
    return fake_vendors


def keys_toml(fakes: Fakes, **overrides: str) -> str:
    sections = {
        "openai": f'name = "openai-main"\napi_key = "sk-fake-main-0001"\n'
                  f'base_url = "{fakes.base("openai")}/v1"',
        "anthropic": f'name = "anthropic-main"\napi_key = "sk-ant-fake-0001"\n'
                     f'base_url = "{fakes.base("anthropic")}"',
        "google": f'name = "google-main"\napi_key = "AIza-fake-0001"\n'
                  f'base_url = "{fakes.base("google")}"',
        "elevenlabs": f'name = "eleven-main"\napi_key = "xi-fake-0001"\n'
                      f'base_url = "{fakes.base("elevenlabs")}"',
        "kling": f'name = "kling-main"\naccess_key = "ak-test"\nsecret_key = "sk-test"\n'
                 f'base_url = "{fakes.base("kling")}"',
        "legnext": f'name = "legnext-main"\napi_key = "lx-fake-0001"\n'
                   f'base_url = "{fakes.base("legnext")}"',
    }
    sections.update(overrides)
    return "\n\n".join(
        "\n\n".join(f"[[{vendor}]]\n{entry}" for entry in body.split("\n---\n"))
        for vendor, body in sections.items() if body
    ) + "\n"


@pytest.fixture(scope="session")
def vendor_gateway(start_gateway: Callable[..., Any], fake_vendors: Fakes,
                   tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = tmp_path_factory.mktemp("keys") / "keys.toml"
    path.write_text(keys_toml(fake_vendors))
    return start_gateway(CLASSROOM_KEYS_FILE=str(path), **FAST)


@dataclass
class Api:
    url: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def get(self, path: str, **params: Any) -> Any:
        response = httpx.get(self.url + path, headers=self.headers, params=params, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return httpx.post(self.url + path, headers=self.headers, json=body, timeout=30)

    def last_run(self) -> dict[str, Any]:
        return self.get("/api/history", limit=1)["items"][0]

    def finished_run(self) -> dict[str, Any]:
        """The newest run once it is no longer running (a stream's row is final before its
        last frame, an abandoned one a moment after)."""
        found: dict[str, Any] = {}

        def done() -> bool:
            found.update(self.last_run())
            return found["status"] != "running"

        wait_until(done, 10, "run finished")
        return found


@pytest.fixture
def api(vendor_gateway: Any, tokens: dict[str, str]) -> Callable[[str], Api]:
    def make(who: str = "student_a") -> Api:
        return Api(vendor_gateway.url, tokens[who])

    return make


@pytest.fixture
def keys_file(tmp_path: Path) -> Callable[[str], Path]:
    def write(text: str) -> Path:
        path = tmp_path / "keys.toml"
        path.write_text(text)
        return path

    return write
