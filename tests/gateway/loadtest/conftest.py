"""Fixtures for the load tester.

- ``make_gateway``: factory ``make_gateway(keys=..., ttft_ms=..., tps=...)`` of an
  in-process gateway (``TestClient``, lifespan run) in a temp data dir, with
  mock keys (TOML text) and the mock's latency; returns a :class:`LoadGateway`.
- ``admin``: the admin's auth headers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from gateway.config.settings import Settings
from gateway.edge.app import create_asgi
from gateway.history.models import runs
from tests.support.procs import REPO

ADMIN_TOKEN = "tok-admin-000000001"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class LoadGateway:
    client: TestClient

    @property
    def services(self) -> Any:
        return self.client.app.app.state.services  # type: ignore[attr-defined]

    def post(self, path: str, body: dict[str, Any], token: str = ADMIN_TOKEN) -> Any:
        return self.client.post(path, json=body, headers=auth(token))

    def get(self, path: str, token: str = ADMIN_TOKEN, **params: Any) -> Any:
        return self.client.get(path, headers=auth(token), params=params)

    def start(self, plan: dict[str, Any], **body: Any) -> int:
        response = self.post("/api/loadtests", {"plan": plan, **body})
        assert response.status_code == 201, response.text
        return int(response.json()["id"])

    def live(self, run_id: int) -> Any:
        return self.services.loadtests.live.get(run_id)

    def wait(self, run_id: int, timeout: float = 30) -> dict[str, Any]:
        """Wait for the run's own end event (no polling), then read its status."""
        run = self.live(run_id)
        if run is not None:
            async def ended() -> None:
                await asyncio.wait_for(run.done.wait(), timeout)

            self.client.portal.call(ended)  # type: ignore[union-attr]
        response = self.get(f"/api/loadtests/{run_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def call_when(self, run_id: int, predicate: Callable[[Any], bool],
                  timeout: float = 30) -> None:
        """Wait on the gateway's loop until ``predicate(live_run)`` holds."""
        run = self.live(run_id)

        async def until() -> None:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while not predicate(run):
                if loop.time() > deadline:
                    raise TimeoutError("condition not reached")
                await asyncio.sleep(0.01)  # the gateway's loop runs the test's condition check

        self.client.portal.call(until)  # type: ignore[union-attr]

    def samples(self, run_id: int) -> list[dict[str, Any]]:
        response = self.get(f"/api/loadtests/{run_id}/samples")
        assert response.status_code == 200, response.text
        return list(response.json()["items"])

    def history(self, **where: Any) -> list[dict[str, Any]]:
        def read(conn: Any) -> list[dict[str, Any]]:
            query = select(runs).where(*(getattr(runs.c, k) == v for k, v in where.items()))
            return [dict(r) for r in conn.execute(query.order_by(runs.c.id)).mappings()]

        return list(self.client.portal.call(self.services.history.read, read))  # type: ignore


@pytest.fixture
def admin() -> dict[str, str]:
    return auth(ADMIN_TOKEN)


@pytest.fixture
def make_gateway(tmp_path: Path, tokens_file: Path) -> Iterator[Callable[..., LoadGateway]]:
    clients: list[TestClient] = []

    def make(keys: str = "", ttft_ms: float = 0, tps: float = 0, **settings: Any) -> LoadGateway:
        data = tmp_path / f"gw{len(clients)}"
        data.mkdir()
        keys_file = None
        if keys:
            keys_file = data / "keys.toml"
            keys_file.write_text(keys)
        config = Settings(
            data_dir=data / "data", auth_tokens_file=tokens_file, tenants_dir=REPO / "tenants",
            mock_ttft_ms=ttft_ms, mock_tokens_per_second=tps, hub_api_url=None,
            keys_file=keys_file, **settings,
        )
        client = TestClient(create_asgi(config))
        client.__enter__()
        clients.append(client)
        return LoadGateway(client)

    yield make
    for client in clients:
        manager = client.app.app.state.services.loadtests  # type: ignore[attr-defined]
        if manager is not None:
            client.portal.call(manager.close)  # type: ignore[union-attr]
        client.__exit__(None, None, None)

