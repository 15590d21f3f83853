"""Fixtures shared by every test package.

- ``tokens``: the static tokens of the standalone gateway (role name → token).
- ``tokens_file``: those tokens written as a ``CLASSROOM_AUTH_TOKENS_FILE``.
- ``database``: which history database ``gateway_settings`` uses, ``sqlite`` unless a
  module overrides it (``both_databases`` runs a module's tests on SQLite and on a
  real PostgreSQL).
- ``postgres``: a real PostgreSQL server for the session (``tests/support/postgres.py``),
  started on first use on a free loopback port and stopped by PID.
- ``redis_server``: a real Redis server for the session (``tests/support/redis.py``),
  started on first use on a free loopback port and stopped by PID; ``redis_prefix``: a
  fresh key prefix on it for one test (so tests sharing the server share no state).
- ``gateway_settings``: ``Settings`` for an in-process gateway in a temp data dir.
- ``gateway_client``: a ``TestClient`` on the in-process gateway (lifespan run).
- ``start_gateway``: factory that serves a real gateway with uvicorn on a free
  loopback port (``classroom gateway serve``) and stops it by PID afterwards.
- ``classroom_mcp_url``: the classroom MCP server (``gateway.mcpserver``) for the session.
- ``gateway_server``: one such gateway shared by the whole session (knowing that server).

Secrets (``tests/support/secrets.py``): provider keys and master keys that a gateway
loads (in-process, or started here) are remembered, with the passwords and hub
tokens of ``tests/support/hub.py``; at the end of the session every log the suite
produced, and the output captured from every test, is searched for them, and the
session fails, naming the file, when one appears.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gateway.config.settings import Settings
from gateway.edge.app import create_asgi
from tests.support import secrets
from tests.support.postgres import PostgresServer, start_postgres
from tests.support.procs import (
    ARTIFACTS,
    REPO,
    VENV_BIN,
    free_port,
    http_ok,
    stop_process,
    wait_until,
)
from tests.support.redis import RedisServer, start_redis

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


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = start_redis()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def redis_prefix() -> str:
    return f"test:{os.urandom(6).hex()}"


@pytest.fixture
def database() -> str:
    return "sqlite"


@pytest.fixture
def database_url(request: pytest.FixtureRequest, database: str, tmp_path: Path) -> str | None:
    """None for the embedded SQLite default, else a fresh PostgreSQL database's URL."""
    if database == "sqlite":
        return None
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database()


both_databases = pytest.fixture(params=["sqlite", "postgresql"], name="database")(
    lambda request: request.param)


@pytest.fixture
def gateway_settings(tmp_path: Path, tokens_file: Path, database_url: str | None) -> Settings:
    extra: dict[str, Any] = {}
    if database_url is not None:
        master = base64.urlsafe_b64encode(os.urandom(32)).decode()
        extra = {"db_url": database_url, "master_key": master}
    return Settings(
        data_dir=tmp_path / "data",
        auth_tokens_file=tokens_file,
        tenants_dir=REPO / "tenants",
        mock_ttft_ms=0,
        mock_tokens_per_second=0,
        hub_api_url=None,
        **extra,
    )


@pytest.fixture
def gateway_client(gateway_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_asgi(gateway_settings)) as client:
        yield client


@pytest.fixture
def gateway_with_keys(
    gateway_settings: Settings, tmp_path: Path
) -> Iterator[Callable[[str], TestClient]]:
    """Factory: a ``TestClient`` on the in-process gateway whose keys file holds ``text``."""
    with ExitStack() as stack:
        def start(text: str) -> TestClient:
            keys = tmp_path / "keys.toml"
            keys.write_text(text)
            settings = gateway_settings.model_copy(update={"keys_file": keys})
            return stack.enter_context(TestClient(create_asgi(settings)))

        yield start


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

    def start(data_dir: Path | None = None, startup_timeout: float = 60, **env: str
              ) -> GatewayServer:
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
        secrets.watch(log_path)
        secrets.remember(full_env.get("CLASSROOM_MASTER_KEY"))
        for variable in ("CLASSROOM_KEYS_FILE", "CLASSROOM_KEY_POOL_JSON"):
            value = full_env.get(variable)
            if value and variable.endswith("FILE"):
                secrets.remember_keys_text(Path(value).read_text())
            elif value:
                secrets.remember_keys_text(value)
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
            wait_until(http_ok(server.url + "/health"), startup_timeout, "gateway", process)
        except Exception:
            stop_process(process)
            raise RuntimeError(f"gateway did not start:\n{server.log()}") from None
        secrets.remember_file(data_dir / "master.key")
        return server

    yield start
    for server in started:
        stop_process(server.process)


@pytest.fixture(scope="session")
def classroom_mcp_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The classroom MCP server (``python -m gateway.mcpserver``), stopped by PID."""
    import socket
    import sys

    port = free_port()
    log_path = tmp_path_factory.mktemp("mcp") / "mcp.log"

    def listening() -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0

    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "gateway.mcpserver", "--port",
                                    str(port)], cwd=str(REPO), stdout=log,
                                   stderr=subprocess.STDOUT)
    try:
        wait_until(listening, 30, "classroom MCP server", process)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        stop_process(process)


@pytest.fixture(scope="session")
def gateway_server(start_gateway: Callable[..., GatewayServer],
                   classroom_mcp_url: str) -> GatewayServer:
    return start_gateway(CLASSROOM_MCP_SERVER_URL=classroom_mcp_url)


# -- secrets never reach a log ----------------------------------------------------------------

SECRETS_REPORT = pytest.StashKey[secrets.Report]()


@pytest.fixture(scope="session", autouse=True)
def _gateway_secrets_remembered() -> Iterator[None]:
    """Every provider key and master key an in-process gateway loads is remembered."""
    import gateway.keypool.setup as setup

    def spy(load: Callable[..., Any]) -> Callable[..., Any]:
        def loaded(*args: Any, **kwargs: Any) -> Any:
            keys = load(*args, **kwargs)
            for key in keys:
                secrets.remember(key.secret, key.secret2)
            return keys

        return loaded

    def master(*args: Any, **kwargs: Any) -> bytes:
        raw: bytes = original_master(*args, **kwargs)
        secrets.remember(base64.urlsafe_b64encode(raw).decode())
        return raw

    original_master = setup.load_master_key
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(setup, "load_keys_file", spy(setup.load_keys_file))
        patch.setattr(setup, "load_keys_json", spy(setup.load_keys_json))
        patch.setattr(setup, "load_master_key", master)
        yield


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for name, content in report.sections:  # captured stdout, stderr and log records
        secrets.captured(f"{report.nodeid} ({name})", content)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    report = secrets.scan(ARTIFACTS / "logs")
    session.config.stash[SECRETS_REPORT] = report
    # Every process started here had its log watched: a missing log fails too (report.ok),
    # so the check cannot pass by finding nothing to read.
    if not report.ok:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    report = terminalreporter.config.stash.get(SECRETS_REPORT, None)
    if report is None:
        return
    write = terminalreporter.write_line
    if report.ok:
        write(f"secrets: none of {report.secrets} found in {report.files} log file(s) and "
              f"{report.captured} captured output(s)")
        return
    terminalreporter.section("secrets in logs", sep="=", red=True, bold=True)
    for finding in report.findings:
        write(f"FOUND {finding}", red=True)
    for path in report.missing:
        write(f"MISSING log file {path} (a process was started but its log is gone)", red=True)
