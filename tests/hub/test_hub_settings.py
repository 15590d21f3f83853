"""The hub's database URL, bind address and public URL are settings: what they change in
the hub's configuration and in the proxy's arguments, and that the hub's database URL
never reaches the gateway."""

from __future__ import annotations

from pathlib import Path

from traitlets.config import Config

from hub.config import HubSettings, configure
from tests.support.procs import REPO


def environ_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"CLASSROOM_DATA_DIR": str(tmp_path / "data"),
            "CLASSROOM_TENANTS_DIR": str(REPO / "tenants"), "CLASSROOM_PORT": "18124",
            **extra}


def test_defaults_stay_on_loopback_with_sqlite(tmp_path):
    c = Config()
    settings = configure(c, environ_for(tmp_path))
    assert c.JupyterHub.bind_url == "http://127.0.0.1:18124"
    assert "public_url" not in c.JupyterHub
    assert c.JupyterHub.db_url == f"sqlite:///{tmp_path / 'data' / 'jupyterhub.sqlite'}"
    assert settings.proxy_args[:2] == ["--ip", "127.0.0.1"]


def test_bind_address_public_url_and_hub_database_are_settings(tmp_path):
    db = "postgresql+psycopg2://jupyterhub:secret@db.school.example/jupyterhub"
    c = Config()
    settings = configure(c, environ_for(
        tmp_path, CLASSROOM_BIND_ADDRESS="0.0.0.0",
        CLASSROOM_PUBLIC_URL="https://classroom.school.example/", CLASSROOM_HUB_DB_URL=db))
    assert c.JupyterHub.bind_url == "http://0.0.0.0:18124"
    assert c.JupyterHub.public_url == "https://classroom.school.example"
    assert c.JupyterHub.db_url == db
    assert settings.proxy_args[:2] == ["--ip", "0.0.0.0"]
    # Labs on this machine still reach the gateway through the local proxy.
    assert c.ClassroomSpawner.gateway_url == "http://127.0.0.1:18124/services/gateway"
    assert not (tmp_path / "data" / "jupyterhub.sqlite").exists()  # not made when unused
    env = settings.gateway_environment()
    assert "CLASSROOM_HUB_DB_URL" not in env
    assert env["CLASSROOM_PUBLIC_URL"] == "https://classroom.school.example"
    assert settings.bind_url == HubSettings.from_environ(environ_for(
        tmp_path, CLASSROOM_BIND_ADDRESS="0.0.0.0")).bind_url
