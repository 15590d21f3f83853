"""The systemd units of a single-server classroom, without systemd: each unit's command
is run here as systemd would run it (its environment file's variables, fixed ports),
and the parts it starts are real: a gateway that answers and a proxy that accepts the
token the units share. They start from the same definition as ``classroom run``'s."""

from __future__ import annotations

import configparser
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from hub import units
from hub.config import HubSettings
from hub.supervisor import define_parts, run_environment
from tests.support.procs import REPO, free_port, http_ok, stop_process, wait_until

SYSTEMD = REPO / "deploy" / "systemd"


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(SYSTEMD / name)
    return parser


def env_file() -> dict[str, str]:
    lines = (SYSTEMD / "classroom.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_each_unit_runs_one_part_with_the_shared_environment_file():
    for part in units.PARTS:
        service = unit(f"classroom-{part}.service")["Service"]
        assert service["ExecStart"].endswith(f"-m hub.units {part}")
        assert service["EnvironmentFile"] == "/etc/classroom/classroom.env"
        assert service["Restart"] == "always"
    assert unit("classroom-hub.service")["Service"]["KillMode"] == "process"  # labs stay
    wanted = unit("classroom.target")["Unit"]["Wants"].split()
    assert wanted == [f"classroom-{p}.service" for p in units.PARTS]
    assert all(env_file().get(name) for name in units.FIXED_PORTS)


def test_the_units_refuse_ports_they_could_not_agree_on(tmp_path):
    with pytest.raises(SystemExit, match="CLASSROOM_GATEWAY_PORT"):
        units.part_of("gateway", {"CLASSROOM_DATA_DIR": str(tmp_path),
                                  "CLASSROOM_HUB_PORT": "1", "CLASSROOM_PROXY_API_PORT": "2"})


def test_the_gateway_and_proxy_units_start_their_parts_and_share_the_tokens(tmp_path):
    env = {"PATH": os.environ["PATH"], "LANG": "C.UTF-8",
           "CLASSROOM_DATA_DIR": str(tmp_path / "data"),
           "CLASSROOM_TENANTS_DIR": str(REPO / "tenants"),
           "CLASSROOM_PORT": str(free_port()), "CLASSROOM_HUB_PORT": str(free_port()),
           "CLASSROOM_PROXY_API_PORT": str(free_port()),
           "CLASSROOM_GATEWAY_PORT": str(free_port())}
    printed = json.loads(subprocess.run(
        [sys.executable, "-m", "hub.units", "--print", "gateway"], env=env, cwd=REPO,
        capture_output=True, text=True, check=True).stdout)
    settings = HubSettings.from_environ(env)
    tokens = json.loads((tmp_path / "data" / "units.json").read_text())
    assert stat.S_IMODE((tmp_path / "data" / "units.json").stat().st_mode) == 0o600
    _, gateway, _ = define_parts(settings, REPO / "jupyterhub_config.py",
                                 run_environment(settings, env), tokens["proxy"],
                                 tokens["gateway"])
    # The unit's gateway is `classroom run`'s gateway: same command, same variables.
    assert printed == {"command": gateway.command, "environment": sorted(gateway.env)}

    started: list[subprocess.Popen[bytes]] = []
    try:
        for part in ("gateway", "proxy"):
            with open(tmp_path / f"{part}.log", "wb") as log:
                started.append(subprocess.Popen([sys.executable, "-m", "hub.units", part],
                                                env=env, cwd=REPO, stdout=log,
                                                stderr=subprocess.STDOUT))
        gateway_url = f"http://127.0.0.1:{env['CLASSROOM_GATEWAY_PORT']}"
        wait_until(http_ok(f"{gateway_url}/health"), 60, "gateway unit", started[0])
        health = httpx.get(f"{gateway_url}/services/gateway/health").json()
        assert health["status"] == "ok" and "school_a" in health["tenants"]
        api = f"http://127.0.0.1:{env['CLASSROOM_PROXY_API_PORT']}/api/routes"
        wait_until(http_ok(api), 30, "proxy unit", started[1])
        assert httpx.get(api).status_code == 403  # the proxy wants a token ...
        routes = httpx.get(api, headers={"Authorization": f"token {tokens['proxy']}"})
        assert routes.status_code == 200  # ... and it is the one the hub unit will read
        # Each unit's process is its part (exec), not a wrapper around it.
        cmdline = Path(f"/proc/{started[0].pid}/cmdline").read_bytes()
        assert b"gateway\0serve" in cmdline
    finally:
        for process in started:
            stop_process(process)
