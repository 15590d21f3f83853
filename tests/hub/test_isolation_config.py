"""The data directory's owners and modes, published folders, and the supervised hub's config."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from traitlets.config import Config

from gateway.published import publish, unpublish
from hub.config import HubSettings, configure, open_path_to
from hub.roles import SERVER_TOKEN_SCOPES

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="the isolated layout needs root")
NOTEBOOK = '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'
NOBODY = 65534


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def settings_for(data_dir: Path, **extra: str) -> HubSettings:
    return HubSettings.from_environ({"CLASSROOM_DATA_DIR": str(data_dir), **extra})


@root_only
def test_data_dir_is_passable_and_everything_in_it_roots_alone(data_dir: Path) -> None:
    data_dir.mkdir(mode=0o755)
    loose = {
        "gateway.sqlite": 0o644, "master.key": 0o644, "accounts.sqlite": 0o664,
        "jupyterhub_cookie_secret": 0o644, "classroom-admin.json": 0o644,
    }
    for name, bits in loose.items():
        (data_dir / name).write_text("x")
        (data_dir / name).chmod(bits)
    (data_dir / "artifacts" / "ab").mkdir(parents=True)
    (data_dir / "artifacts").chmod(0o755)
    os.chown(data_dir / "master.key", NOBODY, NOBODY)  # left by an earlier run as another user

    settings = settings_for(data_dir)
    assert settings.isolated
    settings.make_data_dir()

    assert (data_dir.stat().st_uid, mode(data_dir)) == (0, 0o711)
    assert mode(data_dir / "home") == mode(data_dir / "published") == 0o711
    for name in loose:
        assert mode(data_dir / name) == 0o600, name
        assert (data_dir / name).stat().st_uid == 0, name
    assert mode(data_dir / "artifacts") == 0o700
    # Made before the hub or the gateway could create them with a looser umask.
    for name in ("jupyterhub.sqlite",):
        assert mode(data_dir / name) == 0o600 and (data_dir / name).stat().st_size == 0


@root_only
def test_an_external_gateway_database_is_not_made_here(data_dir: Path) -> None:
    settings_for(data_dir, CLASSROOM_DB_URL="postgresql://db/classroom").make_data_dir()
    assert not (data_dir / "gateway.sqlite").exists()
    assert (data_dir / "jupyterhub.sqlite").exists()


@root_only
def test_folders_above_the_data_dir_are_opened_for_passing_only(tmp_path: Path) -> None:
    above = tmp_path / "private"
    above.mkdir(mode=0o700)
    above.chmod(0o700)
    data = above / "data"

    opened = open_path_to(data)

    assert above in opened
    assert mode(above) == 0o701  # pass through, never list


@root_only
def test_a_folder_of_another_user_is_refused(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o700)
    theirs.chmod(0o700)
    os.chown(theirs, NOBODY, NOBODY)
    with pytest.raises(SystemExit, match="cannot pass through"):
        open_path_to(theirs / "data")
    assert mode(theirs) == 0o700


@root_only
def test_roots_home_is_never_opened() -> None:
    if Path("/root").stat().st_mode & 0o001:
        pytest.skip("/root is already passable here")
    with pytest.raises(SystemExit, match="/root"):
        open_path_to(Path("/root/classroom/data"))
    assert mode(Path("/root")) & 0o001 == 0


@root_only
def test_publishing_as_root_keeps_the_school_folder_closed(data_dir: Path) -> None:
    publish(data_dir, "school_a", "pulse.ipynb", NOTEBOOK)
    folder = data_dir / "published" / "school_a"
    assert mode(folder) == 0o700  # until the spawner opens it to the school's group
    assert mode(folder / "pulse.ipynb") == 0o444

    folder.chmod(0o2750)  # what the spawner sets
    publish(data_dir, "school_a", "second.ipynb", NOTEBOOK)
    assert unpublish(data_dir, "school_a", "pulse.ipynb")
    assert mode(folder) == 0o2750
    assert sorted(p.name for p in folder.iterdir()) == ["second.ipynb"]


def test_supervised_hub_leaves_labs_proxy_and_gateway_to_classroom_run(data_dir: Path) -> None:
    c = Config()
    configure(c, {
        "CLASSROOM_DATA_DIR": str(data_dir), "CLASSROOM_SUPERVISED": "1",
        "CONFIGPROXY_AUTH_TOKEN": "proxy-token", "CLASSROOM_GATEWAY_API_TOKEN": "gw-token",
    })
    assert c.JupyterHub.cleanup_servers is False
    assert c.ConfigurableHTTPProxy.should_start is False
    assert c.ConfigurableHTTPProxy.auth_token == "proxy-token"
    gateway = c.JupyterHub.services[0]
    assert gateway["api_token"] == "gw-token" and "command" not in gateway


def test_alone_the_hub_manages_and_stops_everything(data_dir: Path) -> None:
    c = Config()
    settings = configure(c, {"CLASSROOM_DATA_DIR": str(data_dir),
                             "CLASSROOM_GATEWAY_API_TOKEN": "leak?"})
    assert c.JupyterHub.cleanup_servers is True and c.JupyterHub.cleanup_proxy is True
    gateway = c.JupyterHub.services[0]
    assert "command" in gateway and "api_token" not in gateway
    assert "CLASSROOM_GATEWAY_API_TOKEN" not in gateway["environment"]
    assert "CLASSROOM_GATEWAY_API_TOKEN" not in settings.gateway_process_environment("t")


def test_a_disabled_account_is_refused_by_the_hub_at_its_next_request(data_dir: Path) -> None:
    c = Config()
    configure(c, {"CLASSROOM_DATA_DIR": str(data_dir)})
    assert c.ClassroomAuthenticator.auth_refresh_age <= 1


def test_the_labs_token_asks_only_for_what_a_lab_needs() -> None:
    hub_scopes = [s for s in SERVER_TOKEN_SCOPES if not s.startswith("custom:")]
    assert sorted(hub_scopes) == sorted([
        "access:servers!server", "users:activity!user", "read:users:name!user",
        "read:users:groups!user",
    ])


def test_admins_are_told_on_the_home_page_when_labs_are_not_isolated(data_dir: Path) -> None:
    c = Config()
    settings = configure(c, {"CLASSROOM_DATA_DIR": str(data_dir)})
    assert c.JupyterHub.template_vars["classroom_labs_isolated"] is settings.isolated
    template = (Path(__file__).parents[2] / "hub" / "templates" / "home.html").read_text()
    assert "not classroom_labs_isolated and user and user.admin" in template
    assert "Labs are not isolated" in template
