"""configure(): the whole hub configuration from CLASSROOM_* variables."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from hub.auth import ClassroomAuthenticator
from hub.config import HubSettings, configure, free_port
from hub.spawner import VENV_BIN, ClassroomSpawner
from tests.support.procs import REPO

from .conftest import TENANTS_DIR


@pytest.fixture
def environ(data_dir: Path) -> dict[str, str]:
    return {
        "CLASSROOM_DATA_DIR": str(data_dir),
        "CLASSROOM_PORT": "18123",
        "CLASSROOM_DB_URL": "sqlite:////somewhere/gateway.sqlite",
        "CLASSROOM_KEYS_FILE": "/etc/classroom/keys.toml",
        "CLASSROOM_MASTER_KEY": "master-key-value",
        "CLASSROOM_ADMIN_PASSWORD": "hub-admin-password",
        "UNRELATED": "not passed",
    }


def test_gateway_service_gets_command_and_environment(
    environ: dict[str, str], data_dir: Path
) -> None:
    c = Config()
    settings = configure(c, environ)

    service, admin_service, culler_service = c.JupyterHub.services
    assert admin_service["name"] == "classroom-admin"
    assert culler_service["name"] == "idle-culler"
    port = settings.gateway_port
    assert service["name"] == "gateway"
    assert service["url"] == f"http://127.0.0.1:{port}"
    assert service["command"] == [
        str(Path(VENV_BIN) / "classroom"),
        "gateway",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    assert service["display"] is False
    env = service["environment"]
    assert env["CLASSROOM_DATA_DIR"] == str(data_dir.resolve())
    assert env["CLASSROOM_TENANTS_DIR"] == str(TENANTS_DIR.resolve())
    assert env["CLASSROOM_DB_URL"] == environ["CLASSROOM_DB_URL"]
    assert env["CLASSROOM_KEYS_FILE"] == environ["CLASSROOM_KEYS_FILE"]
    assert env["CLASSROOM_MASTER_KEY"] == environ["CLASSROOM_MASTER_KEY"]
    assert env["CLASSROOM_PORT"] == "18123"
    assert "CLASSROOM_ADMIN_PASSWORD" not in env
    assert "UNRELATED" not in env


def test_network_state_and_classes(environ: dict[str, str], data_dir: Path) -> None:
    c = Config()
    settings = configure(c, environ)

    assert c.JupyterHub.bind_url == "http://127.0.0.1:18123"
    assert c.JupyterHub.hub_ip == "127.0.0.1"
    assert c.JupyterHub.hub_port == settings.hub_port
    assert c.ConfigurableHTTPProxy.api_url == f"http://127.0.0.1:{settings.proxy_api_port}"
    assert len({18123, settings.hub_port, settings.proxy_api_port, settings.gateway_port}) == 4
    assert c.ConfigurableHTTPProxy.pid_file == str(data_dir / "jupyterhub-proxy.pid")
    assert c.JupyterHub.db_url == f"sqlite:///{data_dir / 'jupyterhub.sqlite'}"
    assert c.JupyterHub.cookie_secret_file == str(data_dir / "jupyterhub_cookie_secret")
    assert c.JupyterHub.cleanup_servers is True
    assert c.JupyterHub.authenticator_class is ClassroomAuthenticator
    assert c.ClassroomAuthenticator.data_dir == str(data_dir)
    assert c.Authenticator.admin_users == {"admin"}
    assert c.JupyterHub.spawner_class is ClassroomSpawner
    assert c.ClassroomSpawner.gateway_url == "http://127.0.0.1:18123/services/gateway"
    assert c.ClassroomSpawner.home_dir_template == str(data_dir / "home" / "{username}")
    assert "custom:gateway:teach" in c.JupyterHub.custom_scopes
    role_names = {role["name"] for role in c.JupyterHub.load_roles}
    assert {"classroom-teacher-school_a", "classroom-teacher-school_b"} <= role_names
    # As root labs pass through the data dir to their homes (docs/isolation.md).
    assert stat.S_IMODE(data_dir.stat().st_mode) == (0o711 if os.geteuid() == 0 else 0o700)


def test_proxy_from_the_repository_node_modules(environ: dict[str, str]) -> None:
    c = Config()
    configure(c, environ)
    local = REPO / ".node" / "node_modules" / ".bin" / "configurable-http-proxy"
    expected = [str(local)] if local.exists() else ["configurable-http-proxy"]
    assert c.ConfigurableHTTPProxy.command == expected


def test_explicit_internal_ports_are_used(environ: dict[str, str]) -> None:
    ports = [free_port() for _ in range(3)]
    environ.update(
        CLASSROOM_HUB_PORT=str(ports[0]),
        CLASSROOM_PROXY_API_PORT=str(ports[1]),
        CLASSROOM_GATEWAY_PORT=str(ports[2]),
    )
    settings = HubSettings.from_environ(environ)
    assert (settings.hub_port, settings.proxy_api_port, settings.gateway_port) == tuple(ports)


def test_relative_data_dir_is_made_absolute(
    environ: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    environ["CLASSROOM_DATA_DIR"] = "relative-data"
    c = Config()
    configure(c, environ)
    expected = str(tmp_path.resolve() / "relative-data")
    assert c.JupyterHub.services[0]["environment"]["CLASSROOM_DATA_DIR"] == expected
    assert c.ClassroomAuthenticator.data_dir == expected


def test_default_port_is_8000(data_dir: Path) -> None:
    settings = HubSettings.from_environ({"CLASSROOM_DATA_DIR": str(data_dir)})
    assert settings.public_url == "http://127.0.0.1:8000"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("CLASSROOM_PORT", "eighty", "is not a port number"),
        ("CLASSROOM_HUB_PORT", "70000", "outside 1-65535"),
        ("CLASSROOM_ADMIN_USER", "Big Boss", "not a valid username"),
        ("CLASSROOM_PARALLEL_STARTS", "0", "at least 1"),
        ("CLASSROOM_PARALLEL_STARTS", "two", "not a whole number"),
        ("CLASSROOM_IDLE_CULL_SECONDS", "-5", "at least 0"),
        ("CLASSROOM_LAB_MEMORY_LIMIT", "lots", "not a size"),
    ],
)
def test_bad_settings_stop_with_a_message(
    environ: dict[str, str], name: str, value: str, message: str
) -> None:
    environ[name] = value
    with pytest.raises(SystemExit, match=message):
        configure(Config(), environ)


def test_bad_tenant_file_stops_the_hub_naming_file_and_field(
    environ: dict[str, str], tmp_path: Path
) -> None:
    tenants = tmp_path / "tenants"
    shutil.copytree(TENANTS_DIR, tenants)
    bad = tenants / "school_a.json"
    raw = json.loads(bad.read_text())
    raw["branding"]["accent_color"] = "green"
    bad.write_text(json.dumps(raw))
    environ["CLASSROOM_TENANTS_DIR"] = str(tenants)

    with pytest.raises(SystemExit) as stopped:
        configure(Config(), environ)

    message = str(stopped.value.code)
    assert str(bad) in message
    assert "branding.accent_color" in message


def test_missing_tenants_dir_stops_the_hub(environ: dict[str, str], tmp_path: Path) -> None:
    environ["CLASSROOM_TENANTS_DIR"] = str(tmp_path / "nowhere")
    with pytest.raises(SystemExit, match="tenants directory does not exist"):
        configure(Config(), environ)


def test_repository_config_file_calls_configure(
    environ: dict[str, str], data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)

    config = PyFileConfigLoader("jupyterhub_config.py", path=str(REPO)).load_config()

    assert config.JupyterHub.bind_url == "http://127.0.0.1:18123"
    assert config.JupyterHub.services[0]["name"] == "gateway"
    assert config.ClassroomAuthenticator.data_dir == str(data_dir.resolve())


def test_class_start_settings_from_the_environment(environ: dict[str, str]) -> None:
    c = Config()
    configure(c, {**environ, "CLASSROOM_PARALLEL_STARTS": "3",
                  "CLASSROOM_IDLE_CULL_SECONDS": "1200", "CLASSROOM_LAB_MEMORY_LIMIT": "2g"})
    assert c.LabStarts.parallel == 3
    assert c.JupyterHub.concurrent_spawn_limit == 0  # the queue waits; the hub would refuse
    assert c.Spawner.mem_limit == "2G"
    culler = next(s for s in c.JupyterHub.services if s["name"] == "idle-culler")
    assert "--timeout=1200" in culler["command"] and "--cull-every=120" in culler["command"]
    role = next(r for r in c.JupyterHub.load_roles if r["name"] == "classroom-idle-culler")
    assert role["services"] == ["idle-culler"] and "delete:servers" in role["scopes"]

    off = Config()
    configure(off, {**environ, "CLASSROOM_IDLE_CULL_SECONDS": "0"})
    assert [s["name"] for s in off.JupyterHub.services] == ["gateway", "classroom-admin"]
    assert "parallel" not in off.LabStarts
