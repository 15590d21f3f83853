"""Teachers' own lessons: ``classroom.lessons.publish`` against a real gateway puts the
lesson in the school's ``published/<tenant>/lessons/``, audited; only teachers of that
school (and admins) publish or withdraw; a lab gets it in ``~/lessons`` at its start and
on ``classroom.lessons.update()``, never over a student's edited copy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from classroom import GatewayClient
from classroom import lessons as lesson_api

from hub import homes

LESSON = {"cells": [{"cell_type": "markdown", "id": "a1", "metadata": {},
                     "source": ["# Prompt patterns\n", "A lesson by Ms Kim."]},
                    {"cell_type": "code", "id": "b2", "metadata": {}, "execution_count": 3,
                     "outputs": [{"output_type": "stream", "name": "stdout", "text": "mine"}],
                     "source": ["print('hi')"]}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


@pytest.fixture(scope="module")
def gateway(start_gateway: Any) -> Any:
    return start_gateway()


def client(gateway: Any, who: str) -> GatewayClient:
    return GatewayClient(gateway.url, gateway.tokens[who])


def test_a_teacher_publishes_and_withdraws_a_lesson(
    gateway: Any, tmp_path: Path, clean_env: Any
) -> None:
    source = tmp_path / "prompt_patterns.ipynb"
    source.write_text(json.dumps(LESSON))
    done = lesson_api.publish(source, client=client(gateway, "teacher_a"))
    assert (done.tenant, done.name, done.title) == ("school_a", "prompt_patterns.ipynb",
                                                    "Prompt patterns")
    assert done.url == "/hub/user-redirect/lab/tree/lessons/prompt_patterns.ipynb"
    stored = gateway.data_dir / "published" / "school_a" / "lessons" / "prompt_patterns.ipynb"
    assert json.loads(stored.read_text())["cells"][1]["outputs"] == []  # the teacher's outputs
    assert [i["name"] for i in lesson_api.published(client=client(gateway, "student_a"))] == [
        "prompt_patterns.ipynb"]
    assert lesson_api.published(client=client(gateway, "student_b")) == []
    # Dashboards and lessons stay apart.
    dashboards = client(gateway, "student_a").get("/api/dashboards/published")["items"]
    assert "prompt_patterns.ipynb" not in {d["name"] for d in dashboards}

    lesson_api.withdraw("prompt_patterns.ipynb", client=client(gateway, "teacher_a"))
    assert not stored.exists()
    audit = client(gateway, "admin").get("/api/audit", params={"action": "lesson."})["items"]
    assert [(a["action"], a["actor"]) for a in audit][:2] == [
        ("lesson.withdraw", "teach_a"), ("lesson.publish", "teach_a")]


@pytest.mark.parametrize("who, tenant", [("student_a", None), ("teacher_b", "school_a")])
def test_only_a_teacher_of_the_school_publishes(gateway: Any, who: str, tenant: str | None) -> None:
    body: dict[str, Any] = {"name": "x.ipynb", "notebook": LESSON}
    if tenant:
        body["tenant"] = tenant
    refused = httpx.post(f"{gateway.url}/api/lessons/published", json=body, timeout=30,
                         headers={"Authorization": f"Bearer {gateway.tokens[who]}"})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    assert not (gateway.data_dir / "published" / "school_a" / "lessons" / "x.ipynb").exists()


def test_a_lab_gets_published_lessons_at_start_and_on_update(tmp_path: Path) -> None:
    school = tmp_path / "published" / "school_a"
    (school / "lessons").mkdir(parents=True)
    (school / "lessons" / "prompt_patterns.ipynb").write_text('{"v": 1}')
    home = tmp_path / "home" / "stu"
    home.mkdir(parents=True)

    report = homes.prepare(home, None, school)  # what every lab start does
    mine = home / "lessons" / "prompt_patterns.ipynb"
    assert report["linked"] and str(mine) in report["copied"]
    mine.write_text('{"edited": true}')

    (school / "lessons" / "second.ipynb").write_text('{"v": 2}')
    (school / "lessons" / "prompt_patterns.ipynb").write_text('{"v": 3}')
    assert lesson_api.update(home) == ["lessons/second.ipynb"]  # in a running lab
    assert mine.read_text() == '{"edited": true}'
    assert lesson_api.update(home) == []


def test_update_copies_the_schools_lessons_when_the_gateway_cannot_be_reached(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    school = tmp_path / "published" / "school_a"
    (school / "lessons").mkdir(parents=True)
    (school / "lessons" / "loops.ipynb").write_text('{"v": 1}')
    home = tmp_path / "home" / "stu"
    home.mkdir(parents=True)
    homes.prepare(home, None, school)
    (school / "lessons" / "later.ipynb").write_text('{"v": 2}')

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    down = GatewayClient("http://gateway.test", "tok", transport=httpx.MockTransport(refuse))
    assert lesson_api.update(home, client=down) == ["lessons/later.ipynb"]
    assert (home / "lessons" / "later.ipynb").read_text() == '{"v": 2}'
    assert "could not be fetched now" in capsys.readouterr().out
