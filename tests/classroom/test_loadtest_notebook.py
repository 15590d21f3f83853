"""``notebooks/admin/load_tests.ipynb`` runs top to bottom against a gateway with past
load tests, and compares them with plotly charts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import nbformat
import pytest
from nbclient import NotebookClient

from tests.support.procs import REPO, wait_until

NOTEBOOK = REPO / "notebooks" / "admin" / "load_tests.ipynb"
PLOTLY = "application/vnd.plotly.v1+json"


def run_notebook(server: Any, tmp_path: Path,
                 monkeypatch: pytest.MonkeyPatch) -> nbformat.NotebookNode:
    monkeypatch.setenv("CLASSROOM_GATEWAY_URL", server.url)
    monkeypatch.setenv("CLASSROOM_API_TOKEN", server.tokens["admin"])
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    return notebook


def outputs(notebook: nbformat.NotebookNode) -> list[dict[str, Any]]:
    return [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]


def test_the_notebook_compares_past_runs(start_gateway: Any, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    server = start_gateway(CLASSROOM_MOCK_TTFT_MS="10")
    admin = {"Authorization": f"Bearer {server.tokens['admin']}"}
    plan = {"name": "nb check", "rounds": [{"model": "mock/echo", "users": [1, 2],
                                            "requests_per_user": 2}]}
    started = httpx.post(f"{server.url}/api/loadtests", json={"plan": plan}, headers=admin)
    assert started.status_code == 201, started.text
    run_id = started.json()["id"]

    def ended() -> bool:
        status = httpx.get(f"{server.url}/api/loadtests/{run_id}", headers=admin).json()
        return bool(status["status"] == "done")

    wait_until(ended, 30, "load test")
    notebook = run_notebook(server, tmp_path, monkeypatch)
    found = outputs(notebook)
    assert not [o for o in found if o["output_type"] == "error"]
    titles = [o["data"][PLOTLY]["layout"]["title"]["text"] for o in found
              if PLOTLY in o.get("data", {})]
    assert titles[:2] == ["p95 latency against users, by run and model",
                          "Success rate against users, by run and model"]
    assert "Latency against users" in titles and "Success rate against users" in titles
    text = str(found)
    assert f"Load test #{run_id} 'nb check': done" in text and "1 load test(s)" in text
