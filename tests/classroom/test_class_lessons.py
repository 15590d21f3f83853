"""A lesson published to one class (the hub group ``class-<school>-<label>``): its members
get it (at lab start from the hub, and on ``classroom.lessons.update()`` from the gateway),
students of the school outside the class do not, and never another school; audited;
stored where labs cannot read it."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from classroom import GatewayClient
from classroom import lessons as lesson_api

from gateway.published import PublishError, class_lessons, classes_of, clean_class
from hub import homes

LESSON = {"cells": [{"cell_type": "markdown", "id": "a1", "metadata": {},
                     "source": ["# Only for 7b\n"]}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
PEOPLE = {
    "tok-in-7b": {"name": "in_7b", "tenant": "school_a", "role": "student",
                  "groups": ["class-school_a-7b"]},
    "tok-in-8c": {"name": "in_8c", "tenant": "school_a", "role": "student",
                  "groups": ["class-school_a-8c", "class-school_b-7b"]},
    "tok-out": {"name": "outside", "tenant": "school_a", "role": "student"},
    "tok-b-7b": {"name": "b_7b", "tenant": "school_b", "role": "student",
                 "groups": ["class-school_b-7b"]},
    "tok-teach-a": {"name": "t_a", "tenant": "school_a", "role": "teacher"},
    "tok-teach-b": {"name": "t_b", "tenant": "school_b", "role": "teacher"},
    "tok-admin": {"name": "boss", "tenant": "default", "role": "admin"},
}


@pytest.fixture(scope="module")
def gateway(start_gateway: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    tokens = tmp_path_factory.mktemp("class-tokens") / "tokens.json"
    tokens.write_text(json.dumps({"tokens": PEOPLE}))
    return start_gateway(CLASSROOM_AUTH_TOKENS_FILE=str(tokens))


def as_(gateway: Any, token: str) -> GatewayClient:
    return GatewayClient(gateway.url, token)


def status(gateway: Any, token: str, method: str, path: str, **kw: Any) -> tuple[int, Any]:
    try:
        response = as_(gateway, token).request(method, path, **kw)
    except Exception as error:  # GatewayError: its status and code
        return getattr(error, "status", None) or 0, getattr(error, "code", None)
    return response.status_code, response.json() if response.content else None


def test_a_class_lesson_reaches_its_class_only(gateway: Any, tmp_path: Path,
                                               clean_env: Any) -> None:
    source = tmp_path / "only_7b.ipynb"
    source.write_text(json.dumps(LESSON))
    done = lesson_api.publish(source, group="class-school_a-7b",
                              client=as_(gateway, "tok-teach-a"))
    assert (done.tenant, done.name) == ("school_a", "only_7b.ipynb")
    school = gateway.data_dir / "published" / "school_a"
    stored = school / "classes" / "7b" / "only_7b.ipynb"
    assert stored.is_file() and not (school / "lessons" / "only_7b.ipynb").exists()
    if os.geteuid() == 0:  # labs (other OS users) cannot even list it
        assert stat.S_IMODE((school / "classes").stat().st_mode) == 0o700

    def names(token: str) -> set[tuple[str, Any]]:
        return {(i["name"], i["class"]) for i in lesson_api.published(client=as_(gateway, token))}

    assert names("tok-in-7b") == {("only_7b.ipynb", "7b")}
    assert names("tok-out") == names("tok-in-8c") == names("tok-b-7b") == set()
    assert names("tok-teach-a") == {("only_7b.ipynb", "7b")}  # teachers see every class's
    path = "/api/lessons/published/only_7b.ipynb/notebook"
    code, body = status(gateway, "tok-in-7b", "GET", path, params={"group": "7b"})
    assert code == 200 and body["notebook"]["cells"][0]["source"] == ["# Only for 7b\n"]
    for outsider in ("tok-out", "tok-in-8c"):  # exactly like a lesson that does not exist
        assert status(gateway, outsider, "GET", path, params={"group": "7b"}) == (404, "not_found")
    # school_b's 7b is another class: its member is refused school_a's, and sees none of it.
    assert status(gateway, "tok-b-7b", "GET", path, params={"group": "7b", "tenant": "school_a"}
                  )[0] == 403

    # In a running lab: the member's update() brings it, never over their copy; nobody else's.
    member, other = tmp_path / "member", tmp_path / "other"
    assert lesson_api.update(member, client=as_(gateway, "tok-in-7b")) == ["lessons/only_7b.ipynb"]
    (member / "lessons" / "only_7b.ipynb").write_text("my edits")
    assert lesson_api.update(member, client=as_(gateway, "tok-in-7b")) == []
    assert (member / "lessons" / "only_7b.ipynb").read_text() == "my edits"
    assert lesson_api.update(other, client=as_(gateway, "tok-out")) == []
    # At lab start: the hub reads the class folder for the user's groups and hands it over.
    given = class_lessons(school, "school_a", ["tenant-school_a", "class-school_a-7b"])
    assert list(given) == ["only_7b.ipynb"]
    assert class_lessons(school, "school_a", ["class-school_b-7b", "class-school_a-8c"]) == {}

    lesson_api.withdraw("only_7b.ipynb", group="7b", client=as_(gateway, "tok-teach-a"))
    assert not stored.exists() and names("tok-in-7b") == set()
    audit = as_(gateway, "tok-admin").get("/api/audit", params={"action": "lesson."})["items"]
    assert [(a["action"], a["actor"], json.loads(a["details"] or "{}").get("class")
             if isinstance(a["details"], str) else (a["details"] or {}).get("class"))
            for a in audit][:2] == [("lesson.withdraw", "t_a", "7b"),
                                    ("lesson.publish", "t_a", "7b")]


@pytest.mark.parametrize("token,body,expected", [
    ("tok-teach-b", {"tenant": "school_a", "group": "7b"}, (403, "forbidden")),
    ("tok-in-7b", {"group": "7b"}, (403, "forbidden")),
    ("tok-teach-a", {"group": "7B!"}, (400, "invalid_request")),
    ("tok-teach-a", {"group": "class-school_b-7b"}, (400, "invalid_request")),
])
def test_only_the_schools_teachers_publish_to_its_classes(gateway: Any, token: str,
                                                          body: dict, expected: tuple) -> None:
    sent = {"name": "x.ipynb", "notebook": LESSON, **body}
    assert status(gateway, token, "POST", "/api/lessons/published", json=sent) == expected
    assert status(gateway, "tok-teach-a", "POST", "/api/dashboards/published", json={
        "name": "d.ipynb", "notebook": LESSON, "group": "7b"}) == (400, "invalid_request")


def test_class_names_and_the_hand_over(tmp_path: Path) -> None:
    assert clean_class("school_a", "class-school_a-7b") == clean_class("school_a", "7b") == "7b"
    for bad in ("", "7B", "../x", "class-school_b-7b", "a" * 41):
        with pytest.raises(PublishError):
            clean_class("school_a", bad)
    assert classes_of(["class-school_a-7b", "class-school_a-BAD", "tenant-school_a",
                       "class-school_b-9"], "school_a") == ["7b"]
    home = tmp_path / "home"
    (home / "lessons").mkdir(parents=True)
    (home / "lessons" / "kept.ipynb").write_text("mine")
    (home / "lessons" / "link.ipynb").symlink_to(tmp_path / "elsewhere")
    written, warnings = homes.write_missing(
        {"kept.ipynb": b"new", "link.ipynb": b"new", "fresh.ipynb": b"{}", "../x.ipynb": b"{}"},
        home)
    assert [p.name for p in written] == ["fresh.ipynb"] and warnings == []
    assert (home / "lessons" / "kept.ipynb").read_text() == "mine"
    assert not (tmp_path / "elsewhere").exists()
