"""Fixtures shared by every test package.

- ``tokens``: the static tokens of the standalone gateway (role name → token).
- ``tokens_file``: those tokens written as a ``CLASSROOM_AUTH_TOKENS_FILE``.
- ``gateway_settings``: ``Settings`` for an in-process gateway in a temp data dir.
- ``gateway_client``: a ``TestClient`` on the in-process gateway (lifespan run).
- ``start_gateway``: factory that serves a real gateway with uvicorn on a free
  loopback port (``classroom gateway serve``) and stops it by PID afterwards.
- ``gateway_server``: one such gateway shared by the whole session.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gateway.app import create_asgi
from gateway.settings import Settings
from tests.support.procs import REPO, VENV_BIN, free_port, http_ok, stop_process, wait_until

TOKENS = {
    "student_a": ("tok-student-a-0001", {"name": "stu_a", "tenant": "school_a", "role": "student"}),
    "student_a2": ("tok-student-a-0002", {"name": "stu_a2", "tenant": "school_a", "role": "student"}),
    "teacher_a": ("tok-teacher-a-0001", {"name": "teach_a", "tenant": "school_a", "role": "teacher"}),
    "student_b": ("tok-student-b-0001", {"name": "stu_b", "tenant": "school_b", "role": "student"}),
    "teacher_b": ("tok-teacher-b-0001", {"name": "teach_b", "tenant": "school_b", "role": "teacher"}),
    "admin": ("tok-admin-000000001", {"name": "root_admin", "tenant": "default", "role": "admin"}),
    "viewer_a": ("tok-viewer-a-0001", {"name": "view_a", "tenant": "school_a", "role": "viewer"}),
}


@pytest.fixture(scope="session")
def tokens() -> dict[str, str]:
    return {role: token for role, (token, _) in TOKENS.items()}


@pytest.fixture(scope="session")
def tokens_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("auth") / "tokens.json"
    path.write_text(json.dumps({"tokens": {tok: who for tok, who in TOKENS.values()}}))
    return path


@pytest.fixture
def gateway_settings(tmp_path: Path, tokens_file: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        auth_tokens_file=tokens_file,
        tenants_dir=REPO / "tenants",
        mock_ttft_ms=0,
        mock_tokens_per_second=0,
        hub_api_url=None,
    )


@pytest.fixture
def gateway_client(gateway_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_asgi(gateway_settings)) as client:
        yield client


@dataclass
class GatewayServer:
    url: str
    tokens: dict[str, str]
    data_dir: Path
    process: subprocess.Popen
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture(scope="session")
def start_gateway(
    tmp_path_factory: pytest.TempPathFactory, tokens_file: Path, tokens: dict[str, str]
) -> Iterator[Callable[..., GatewayServer]]:
    started: list[GatewayServer] = []

    def start(data_dir: Path | None = None, **env: str) -> GatewayServer:
        data_dir = data_dir or tmp_path_factory.mktemp("gateway-data")
        port = free_port()
        full_env = {
            **os.environ,
            "CLASSROOM_DATA_DIR": str(data_dir),
            "CLASSROOM_AUTH_TOKENS_FILE": str(tokens_file),
            "CLASSROOM_TENANTS_DIR": str(REPO / "tenants"),
            "CLASSROOM_MOCK_TTFT_MS": "0",
            "CLASSROOM_MOCK_TOKENS_PER_SECOND": "0",
            **env,
        }
        for name in ("JUPYTERHUB_API_URL", "JUPYTERHUB_API_TOKEN", "JUPYTERHUB_SERVICE_PREFIX"):
            if name not in env:
                full_env.pop(name, None)
        log_path = data_dir / f"gateway-{port}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [str(VENV_BIN / "classroom"), "gateway", "serve", "--host", "127.0.0.1",
                 "--port", str(port)],
                env=full_env, stdout=log, stderr=subprocess.STDOUT, cwd=str(data_dir),
            )
        server = GatewayServer(
            f"http://127.0.0.1:{port}", dict(tokens), data_dir, process, log_path, full_env
        )
        started.append(server)
        try:
            wait_until(http_ok(server.url + "/health"), 60, "gateway", process)
        except Exception:
            stop_process(process)
            raise RuntimeError(f"gateway did not start:\n{server.log()}") from None
        return server

    yield start
    for server in started:
        stop_process(server.process)


@pytest.fixture(scope="session")
def gateway_server(start_gateway: Callable[..., GatewayServer]) -> GatewayServer:
    return start_gateway()
