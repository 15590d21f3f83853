"""Exact lesson progress: every door records the notebook and cell a call came from
(runs.notebook, runs.cell, runs.cell_position, runs.cell_count), ``/api/usage`` groups by
notebook, and ``/api/lessons/progress`` says who ran which lesson, how far and when;
on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from gateway.history.models import runs
from tests.conftest import both_databases  # noqa: F401  (every test on SQLite and PostgreSQL)
from tests.gateway.policy.test_every_door import DOORS, bearer, doors  # noqa: F401

HI = [{"role": "user", "content": "hi"}]


def origin(notebook: str, cell: str | None = None, position: str | None = None
           ) -> dict[str, str]:
    headers = {"X-Classroom-Notebook": quote(notebook, safe="/")}
    if cell:
        headers["X-Classroom-Cell"] = cell
    if position:
        headers["X-Classroom-Cell-Position"] = position
    return headers


def last_run(client: TestClient, **where: str) -> dict[str, Any]:
    services = client.app.app.state.services  # type: ignore[attr-defined]
    query = select(runs).where(*[getattr(runs.c, k) == v for k, v in where.items()])
    with services.history.engine.connect() as connection:
        row = connection.execute(query.order_by(runs.c.id.desc()).limit(1)).mappings().first()
    assert row is not None, where
    return dict(row)


def chat(client: TestClient, token: str, headers: dict[str, str], model: str = "mock/echo"
         ) -> int:
    response = client.post("/v1/chat/completions", json={"model": model, "messages": HI},
                           headers={"Authorization": f"Bearer {token}", **headers})
    return response.status_code


@pytest.mark.parametrize("door", list(DOORS))
def test_every_door_records_where_the_call_came_from(doors: TestClient, door: str) -> None:  # noqa: F811
    notebook = f"lessons/{door} <b>été</b>.ipynb"
    headers = {**bearer("everything"), **origin(notebook, "cell-07", "3/9")}
    response = DOORS[door][1](doors, headers)
    assert response.status_code in (200, 202), response.text
    if response.status_code == 202:  # a job: its run is started by the job worker
        doors.get(f"/api/jobs/{response.json()['id']}", headers=bearer("everything"))
    run = last_run(doors, user="stu_everything", notebook=notebook)
    assert (run["cell"], run["cell_position"], run["cell_count"]) == ("cell-07", 3, 9)


def test_odd_headers_are_dropped_and_the_call_still_runs(gateway_client: TestClient,
                                                         tokens: dict[str, str]) -> None:
    token = tokens["student_a"]
    for bad in ({"X-Classroom-Notebook": "../../etc/passwd", "X-Classroom-Cell": "c1"},
                {"X-Classroom-Notebook": "x" * 5000},
                {"X-Classroom-Notebook": "a%0Ab.ipynb"}):
        assert chat(gateway_client, token, bad) == 200
        run = last_run(gateway_client, user="stu_a")
        assert (run["notebook"], run["cell"]) == (None, None), bad
    assert chat(gateway_client, token, origin("n.ipynb", "<script>", "2/1")) == 200
    run = last_run(gateway_client, user="stu_a")
    assert (run["notebook"], run["cell"], run["cell_position"]) == ("n.ipynb", None, None)


def test_lesson_progress_says_who_ran_which_lesson_how_far_and_when(
        gateway_client: TestClient, tokens: dict[str, str], database: str) -> None:
    a, a2, b = tokens["student_a"], tokens["student_a2"], tokens["student_b"]
    one, two = "lessons/01_first_chat.ipynb", "lessons/02_parameters_and_sampling.ipynb"
    for cell, position in (("cell-03", "1/8"), ("cell-11", "5/8"), ("cell-07", "3/8")):
        assert chat(gateway_client, a, origin(one, cell, position)) == 200
    # Refused (not in the school's list) still counts: a call from that cell, an error.
    assert chat(gateway_client, a, origin(two, "c-1", "2/4"), model="gpt-nonexistent") != 200
    assert chat(gateway_client, a, origin("scratch/mine.ipynb", "c-9", "1/1")) == 200
    assert chat(gateway_client, a, {}) == 200
    assert chat(gateway_client, a2, origin(one)) == 200  # outside a cell (a widget's button)
    assert chat(gateway_client, b, origin(one, "cell-22", "8/8")) == 200

    def progress(token: str, **params: str) -> list[dict[str, Any]]:
        response = gateway_client.get("/api/lessons/progress", params=params,
                                      headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.text
        return response.json()["items"]

    rows = progress(tokens["teacher_a"])
    by = {(r["user"], r["lesson"]): r for r in rows}
    assert set(by) == {("stu_a", one), ("stu_a", two), ("stu_a2", one)}  # school_a, lessons/
    first = by[("stu_a", one)]
    assert (first["calls"], first["errors"]) == (3, 0)
    assert (first["last_cell"], first["last_position"]) == ("cell-07", 3)
    assert (first["furthest_position"], first["cells"], first["fraction"]) == (5, 8, 5 / 8)
    assert first["first_at"] <= first["last_at"]
    second = by[("stu_a", two)]
    assert (second["calls"], second["errors"], second["last_position"]) == (1, 1, 2)
    outside = by[("stu_a2", one)]
    assert (outside["calls"], outside["last_cell"], outside["fraction"]) == (1, None, None)

    assert {r["user"] for r in progress(a)} == {"stu_a"}  # a student: themselves only
    assert [r["user"] for r in progress(tokens["admin"], tenant="school_b")] == ["stu_b"]
    refused = gateway_client.get("/api/lessons/progress", params={"tenant": "school_b"},
                                 headers={"Authorization": f"Bearer {tokens['teacher_a']}"})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"

    usage = gateway_client.get("/api/usage", params={"group_by": "notebook"},
                               headers={"Authorization": f"Bearer {tokens['teacher_a']}"})
    assert usage.status_code == 200, usage.text
    counts = {r["notebook"]: r["requests"] for r in usage.json()["rows"]}
    assert counts == {one: 4, two: 1, "scratch/mine.ipynb": 1, "(none)": 1}
    only = gateway_client.get("/api/usage", params={"group_by": "user", "notebook": one},
                              headers={"Authorization": f"Bearer {tokens['teacher_a']}"})
    assert {r["user"]: r["requests"] for r in only.json()["rows"]} == {"stu_a": 3, "stu_a2": 1}
