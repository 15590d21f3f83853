"""The admin notebooks and the teachers' dashboards run top to bottom against a real
gateway (uvicorn, static tokens) whose history is seeded with ``gateway.history.demo``."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from sqlalchemy import select

from gateway.history import demo
from gateway.history.models import runs
from gateway.history.store import make_engine
from tests.conftest import both_databases  # noqa: F401  (every test on SQLite and PostgreSQL)
from tests.support.procs import REPO

PLOTLY = "application/vnd.plotly.v1+json"
ADMIN = sorted((REPO / "notebooks" / "admin").glob("*.ipynb"))
DASHBOARDS = sorted((REPO / "notebooks" / "dashboards").glob("*.ipynb"))


@pytest.fixture(scope="module")
def gateway(start_gateway: Any) -> Any:
    server = start_gateway()
    engine = make_engine(f"sqlite:///{server.data_dir / 'gateway.sqlite'}")
    with engine.begin() as connection:
        demo.seed(connection)
    engine.dispose()
    return server


def run(path: Path, gateway: Any, token: str, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path, **env: str) -> nbformat.NotebookNode:
    monkeypatch.setenv("CLASSROOM_GATEWAY_URL", gateway.url)
    monkeypatch.setenv("CLASSROOM_API_TOKEN", token)
    monkeypatch.setenv("CLASSROOM_LESSONS_DIR", str(REPO / "notebooks" / "lessons"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    return notebook


def outputs(notebook: nbformat.NotebookNode) -> list[dict[str, Any]]:
    """Cell outputs, and the outputs captured in ``ipywidgets.Output`` widgets."""
    found = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]
    widgets = notebook.metadata.get("widgets", {}).get(
        "application/vnd.jupyter.widget-state+json", {}
    ).get("state", {})
    for model in widgets.values():
        found += model.get("state", {}).get("outputs", []) or []
    return found


def widget_states(notebook: nbformat.NotebookNode) -> list[dict[str, Any]]:
    return [model.get("state", {}) for model in notebook.metadata.get("widgets", {}).get(
        "application/vnd.jupyter.widget-state+json", {}).get("state", {}).values()]


def text(notebook: nbformat.NotebookNode) -> str:
    # What HTML widgets (the live views) show, their tags taken out.
    parts = [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html.unescape(str(s["value"]))))
             for s in widget_states(notebook)
             if s.get("_model_name") == "HTMLModel" and s.get("value")]
    for out in outputs(notebook):
        if out.get("output_type") == "stream":
            parts.append(out["text"])
        elif "data" in out:
            parts.append(str(out["data"].get("text/plain", "")))
            parts.append(str(out["data"].get("text/html", "")))
    return "\n".join(parts)


def figures(notebook: nbformat.NotebookNode) -> list[dict[str, Any]]:
    """Plotly figures shown, static ones and live ones (``FigureWidget``)."""
    shown = [out["data"][PLOTLY] for out in outputs(notebook) if PLOTLY in out.get("data", {})]
    return shown + [{"data": s["_widget_data"], "layout": s["_widget_layout"]}
                    for s in widget_states(notebook) if "_widget_layout" in s]


def test_there_are_admin_notebooks_and_dashboards() -> None:
    assert {p.stem for p in ADMIN} >= {"usage_review", "key_pool", "housekeeping"}
    assert {p.stem for p in DASHBOARDS} == {"class_activity", "student_work", "lesson_progress"}


@pytest.mark.parametrize("path", ADMIN, ids=lambda p: p.stem)
def test_admin_notebook_runs_top_to_bottom(
    path: Path, gateway: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    notebook = run(path, gateway, gateway.tokens["admin"], monkeypatch, tmp_path)
    assert not [o for o in outputs(notebook) if o.get("output_type") == "error"]
    if path.stem == "usage_review":
        titles = {f["layout"]["title"]["text"] for f in figures(notebook)}
        assert "Top 10 users by cost (USD)" in titles
        assert "Latency by model (p50, p95, p99)" in titles
        assert "When the classroom is busy" in titles
        assert any("by school and model" in t for t in titles)
        assert "school_b" in text(notebook) and "projected for the month" in text(notebook)
    if path.stem == "housekeeping":
        assert "runs" in text(notebook) and "Nothing to change." in text(notebook)
    if path.stem == "key_pool":
        assert "key(s) in rotation" in text(notebook) or "no key pool API" in text(notebook)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_dashboard_runs_for_a_teacher(
    path: Path, gateway: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    notebook = run(path, gateway, gateway.tokens["teacher_a"], monkeypatch, tmp_path,
                   CLASSROOM_STUDENT="stu_a")
    assert figures(notebook), "a dashboard shows at least one chart"
    shown = text(notebook)
    assert "stu_b" not in shown and "school_b" not in shown
    if path.stem == "lesson_progress":
        heatmap = figures(notebook)[0]
        assert "01_first_chat" in str(heatmap["data"])
    if path.stem == "student_work":
        assert "stu_a:" in shown


def test_class_dashboard_shows_a_student_only_their_own_numbers(
    gateway: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = REPO / "notebooks" / "dashboards" / "class_activity.ipynb"
    notebook = run(path, gateway, gateway.tokens["student_a"], monkeypatch, tmp_path)
    shown = text(notebook)
    assert "running now 1" in shown  # stu_a's own live call, not the class's
    assert "stu_a2" not in shown and "teach_a" not in shown
    engine = make_engine(f"sqlite:///{gateway.data_dir / 'gateway.sqlite'}")
    with engine.connect() as connection:
        assert connection.execute(select(runs.c.id).where(runs.c.status == "running")).all()
    engine.dispose()
