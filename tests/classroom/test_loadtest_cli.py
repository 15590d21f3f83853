"""``classroom loadtest`` as a subprocess against a real gateway, with an admin's token."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.procs import VENV_BIN

PLAN = """\
name: cli check
rounds:
  - model: mock/echo
    users: [1, 3]
    requests_per_user: 2
  - model: mock/lorem
    users: 2
    stream: false
    max_tokens: 8
"""


@pytest.fixture(scope="module")
def server(start_gateway: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    keys = tmp_path_factory.mktemp("cli-keys") / "keys.toml"
    keys.write_text('[[mock]]\nname = "cli"\nconcurrency_limit = 2\n')
    return start_gateway(CLASSROOM_KEYS_FILE=str(keys), CLASSROOM_MOCK_TTFT_MS="20")


def classroom(*args: str, server: Any = None, env: dict[str, str] | None = None,
              cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CLASSROOM_")}
    prefix: list[str] = []
    if server is not None:
        prefix = ["--gateway", server.url, "--token", server.tokens["admin"]]
    return subprocess.run(
        [str(VENV_BIN / "classroom"), "loadtest", *prefix, *args], env={**base, **(env or {})},
        capture_output=True, text=True, timeout=120, cwd=cwd,
    )


def test_example_prints_a_commented_plan() -> None:
    done = classroom("example")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\n#") >= 5
    plan = yaml.safe_load(done.stdout)
    assert plan["mode"] == "mock" and plan["rounds"][0]["users"] == [1, 5, 10, 20, 40]


def test_run_writes_the_report_and_the_same_figures_as_json(server: Any,
                                                            tmp_path: Path) -> None:
    (tmp_path / "plan.yaml").write_text(PLAN)
    done = classroom("run", "plan.yaml", "--mode", "mock", "--report", "out.html", "--json",
                     "out.json", server=server, cwd=tmp_path)
    assert done.returncode == 0, done.stderr + done.stdout
    figures = json.loads((tmp_path / "out.json").read_text())
    run_id = figures["run"]["id"]
    assert figures["run"]["status"] == "done"
    assert figures["overall"]["requests"] == 1 * 2 + 3 * 2 + 2 * 3
    api = httpx.get(f"{server.url}/api/loadtests/{run_id}/report",
                    headers={"Authorization": f"Bearer {server.tokens['admin']}"}).json()
    assert figures["groups"] == api["groups"] and figures["grades"] == api["grades"]
    page = (tmp_path / "out.html").read_text()
    assert f"Load test {run_id}: cli check" in page and "Plotly.newPlot" in page
    assert "cli check" in done.stderr and "mock/echo" in done.stdout  # progress, then the table
    listed = classroom("list", env={"CLASSROOM_GATEWAY_URL": server.url,
                                    "CLASSROOM_API_TOKEN": server.tokens["admin"]})
    assert listed.returncode == 0 and "cli check" in listed.stdout


def test_real_mode_without_a_cap_is_refused_before_anything_runs(server: Any,
                                                                 tmp_path: Path) -> None:
    (tmp_path / "plan.yaml").write_text(PLAN)
    done = classroom("run", "plan.yaml", "--mode", "real", "--yes", server=server, cwd=tmp_path)
    assert done.returncode == 2
    assert "cost_cap_usd" in done.stderr
    student = classroom("list", env={"CLASSROOM_GATEWAY_URL": server.url,
                                     "CLASSROOM_API_TOKEN": server.tokens["student_a"]})
    assert student.returncode == 2 and "administrators" in student.stderr


def test_replay_a_saved_lesson_for_a_class(server: Any) -> None:
    teacher = {"Authorization": f"Bearer {server.tokens['teacher_a']}"}
    began = time.time()
    for text in ("first question", "second question"):
        response = httpx.post(f"{server.url}/v1/chat/completions", headers=teacher, json={
            "model": "mock/echo", "messages": [{"role": "user", "content": text}]})
        assert response.status_code == 200
    saved = classroom("lesson-save", "03", "--user", "teach_a", "--since", str(began),
                      "--tenant", "school_a", server=server)
    assert saved.returncode == 0, saved.stderr
    done = classroom("replay", "--lesson", "03", "--tenant", "school_a", "--students", "40",
                     "--window", "60s", "--target", "1s", "--json", "-", server=server)
    assert done.returncode == 0, done.stderr
    assert "Predicted p95 wait" in done.stdout and "Keys needed for p95 wait ≤ 1 s: mock:" \
        in done.stdout
    assert "40 students arriving within 60 s" in done.stdout


def test_json_dash_means_standard_output(capsys, tmp_path, monkeypatch):
    from classroom._loadtest_cli import write_json

    monkeypatch.chdir(tmp_path)
    write_json("-", {"p95_wait_s": 1.5})
    assert '"p95_wait_s": 1.5' in capsys.readouterr().out
    assert not (tmp_path / "-").exists()
