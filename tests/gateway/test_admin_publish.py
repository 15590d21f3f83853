"""Publishing a dashboard: ``classroom.publish(...)`` and ``classroom publish`` against a
real gateway, and the local fallback without one."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.procs import REPO, VENV_BIN

DASHBOARD = REPO / "notebooks" / "dashboards" / "class_activity.ipynb"


@pytest.fixture(scope="module")
def gateway(start_gateway: Any) -> Any:
    return start_gateway()


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("CLASSROOM_")}
    return subprocess.run([str(VENV_BIN / "classroom"), "publish", *args], env={**full, **env},
                          capture_output=True, text=True, timeout=120)


def test_publish_from_python_clears_outputs_and_lands_in_the_school_folder(
    gateway: Any, tmp_path: Path
) -> None:
    from classroom._client import GatewayClient
    from classroom.publish import publish

    source = json.loads(DASHBOARD.read_text())
    source["cells"][1]["outputs"] = [{"output_type": "stream", "name": "stdout",
                                      "text": "teacher's own numbers"}]
    mine = tmp_path / "my_dashboard.ipynb"
    mine.write_text(json.dumps(source))
    client = GatewayClient(gateway.url, gateway.tokens["teacher_a"])

    done = publish(mine, client=client)

    assert (done.name, done.tenant, done.title) == (
        "my_dashboard.ipynb", "school_a", "Class activity now")
    assert done.url == "/hub/user-redirect/voila/render/published/my_dashboard.ipynb"
    assert "my_dashboard.ipynb" in done._repr_html_()
    copy = gateway.data_dir / "published" / "school_a" / "my_dashboard.ipynb"
    assert "teacher's own numbers" not in copy.read_text()
    audit = client.get("/api/audit", params={"action": "dashboard.publish"})["items"]
    assert audit[0]["target"] == "my_dashboard.ipynb" and audit[0]["actor"] == "teach_a"


def test_publish_on_the_command_line(gateway: Any) -> None:
    env = {"CLASSROOM_GATEWAY_URL": gateway.url,
           "CLASSROOM_API_TOKEN": gateway.tokens["teacher_b"]}
    done = cli(str(DASHBOARD), "--name", "pulse", env=env)
    assert done.returncode == 0, done.stderr
    assert "Published pulse.ipynb to school_b" in done.stdout
    assert (gateway.data_dir / "published" / "school_b" / "pulse.ipynb").is_file()

    student = cli(str(DASHBOARD), env={**env, "CLASSROOM_API_TOKEN": gateway.tokens["student_b"]})
    assert student.returncode == 1
    assert "classroom publish: error:" in student.stderr and "Traceback" not in student.stderr
    missing = cli("nope.ipynb", env=env)
    assert missing.returncode == 1 and "nope.ipynb" in missing.stderr


def test_publish_without_a_gateway_writes_locally_and_logs(tmp_path: Path) -> None:
    data = tmp_path / "data"
    done = cli(str(DASHBOARD), "--data-dir", str(data), "--tenant", "school_a", env={})
    assert done.returncode == 0, done.stderr
    assert (data / "published" / "school_a" / "class_activity.ipynb").is_file()
    entry = json.loads((data / "published" / "publish.log").read_text().splitlines()[-1])
    assert entry["action"] == "dashboard.publish" and entry["tenant"] == "school_a"
    assert cli(str(DASHBOARD), "--data-dir", str(data), env={}).returncode == 2
