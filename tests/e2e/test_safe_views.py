"""Safe views, and each role's notebooks in its own lab, in a real browser.

A student plants script-bearing text in every field they control (prompts, so
replies too, conversation titles and messages, a model name that comes back in
the history) and a teacher plants it in a published dashboard's title and a
display name. Then the teacher and the admin sign in as a new teacher and admin
would: the home page says where to start; their own lab holds ``dashboards/``
(and ``admin/``); each notebook there runs top to bottom (Run All) with no
traceback, draws its charts and shows the student's fresh calls, and the
student-work dashboard also in Voila; the hub pages show the titles. On every
page no payload ran (the flag each would set stays unset, no element carries a
planted handler) and the payload is on the page as text. The student's lab gets
neither folder. One hub for the module; screenshots go to test-artifacts/.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from tests.support.hub import Hub
from tests.support.lab_ui import outputs, payloads, run_all, script_ran, sign_in
from tests.support.procs import ARTIFACTS, REPO

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

ROSTER = """username,display_name,tenant,role,password
sv_teacher,"Ms <img src=x onerror=""window.__cx='name'""> Kim",school_a,teacher,sv-teacher-pass-1
sv_student,"<script>window.__cx='name2'</script>Sam",school_a,student,sv-student-pass-1
"""
PASSWORDS = {"sv_teacher": "sv-teacher-pass-1", "sv_student": "sv-student-pass-1"}
TITLE = "<img src=x onerror=\"window.__cx='title'\"><svg onload=\"window.__cx='t2'\">Quiz"
SHOWN = "<img src=x onerror="  # what must be on the page as text wherever a payload is shown
DASHBOARDS = sorted(p.name for p in (REPO / "notebooks" / "dashboards").glob("*.ipynb"))
ADMIN_NOTEBOOKS = sorted(p.name for p in (REPO / "notebooks" / "admin").glob("*.ipynb"))
# Charts each notebook draws from a fresh classroom with one student's calls in it.
MIN_PLOTS = {"class_activity.ipynb": 2, "student_work.ipynb": 1, "lesson_progress.ipynb": 1,
             "usage_review.ipynb": 4, "housekeeping.ipynb": 1, "key_pool.ipynb": 0,
             "load_tests.ipynb": 0}


@dataclass
class Planted:
    hub: Hub
    student_token: str
    teacher_token: str
    admin_token: str
    published: str


def gateway(hub: Hub, token: str, method: str, path: str, **kwargs: Any) -> requests.Response:
    return requests.request(method, hub.gateway_url + path, timeout=60,
                            headers={"Authorization": f"Bearer {token}"}, **kwargs)


@pytest.fixture(scope="module")
def planted(hub: Hub, admin_token: str) -> Iterator[Planted]:
    roster = hub.data_dir.parent / "safe-views-roster.csv"
    roster.write_text(ROSTER)
    out = hub.classroom("accounts", "import", str(roster))
    assert "2 created" in out.stdout, out.stdout
    student = hub.token_for(hub.login("sv_student", PASSWORDS["sv_student"]), "sv_student")
    teacher = hub.token_for(hub.login("sv_teacher", PASSWORDS["sv_teacher"]), "sv_teacher")

    # The student: prompts (mock/echo sends each back as the reply), a conversation.
    for text in payloads("prompt"):
        reply = gateway(hub, student, "POST", "/v1/chat/completions", json={
            "model": "mock/echo", "messages": [{"role": "user", "content": text}]})
        assert reply.status_code == 200, reply.text
        assert reply.json()["choices"][0]["message"]["content"] == text
    conversation = gateway(hub, student, "POST", "/api/conversations",
                           json={"title": TITLE, "model": "mock/echo"})
    assert conversation.status_code == 201, conversation.text
    parent = None
    for text in payloads("message"):
        added = gateway(hub, student, "POST", f"/api/conversations/{conversation.json()['id']}"
                        "/messages", json={"role": "user", "content": text,
                                           "parent_message_id": parent})
        assert added.status_code == 201, added.text
        parent = added.json()["id"]
    # A model name is the student's text too; the refusal is a clear error, never a 500.
    refused = gateway(hub, student, "POST", "/v1/chat/completions", json={
        "model": "mock/<img src=x onerror=\"window.__cx='model'\">",
        "messages": [{"role": "user", "content": "hi"}]})
    assert 400 <= refused.status_code < 500, refused.text

    # The teacher: a dashboard whose title (its first heading) is a payload.
    notebook = json.loads((REPO / "notebooks" / "dashboards" / "class_activity.ipynb").read_text())
    notebook["cells"][0]["source"] = [f"# {TITLE}\n", "A quiz."]
    published = gateway(hub, teacher, "POST", "/api/dashboards/published",
                        json={"name": "quiz.ipynb", "notebook": notebook})
    assert published.status_code == 201, published.text
    assert published.json()["title"] == TITLE
    yield Planted(hub, student, teacher, admin_token, "quiz.ipynb")
    for user in ("sv_teacher", "sv_student", hub.admin_user):
        shut_down_kernels(hub, admin_token, user)


def shut_down_kernels(hub: Hub, token: str, user: str) -> None:
    """Voila and closed tabs leave kernels running: stop them by id."""
    url = f"{hub.url}/user/{user}/api/kernels"
    headers = {"Authorization": f"token {token}"}
    try:
        kernels = requests.get(url, headers=headers, timeout=30)
        for kernel in kernels.json() if kernels.ok else []:
            requests.delete(f"{url}/{kernel['id']}", headers=headers, timeout=30)
    except requests.RequestException:
        pass


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def assert_safe(page: Any, where: str) -> None:
    traces = script_ran(page)
    if traces:
        shot(page, f"xss_{where.replace('/', '_')}.png")
    assert traces == [], f"{where}: a planted payload became markup: {traces}"


def contents(hub: Hub, token: str, user: str, path: str = "") -> set[str]:
    listing = requests.get(f"{hub.url}/user/{user}/api/contents/{path}", timeout=30,
                           headers={"Authorization": f"token {token}"})
    listing.raise_for_status()
    return {item["name"] for item in listing.json()["content"]}


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        yield context.new_page()
    finally:
        context.close()


def check_hub_pages(page: Any, hub: Hub, who: str, school: bool = True) -> tuple[str, str]:
    """Home (where to start, for the role) and the school's dashboards (a payload title)."""
    page.goto(hub.url + "/hub/home", wait_until="domcontentloaded")
    start = page.locator("#classroom-start")
    role, advice = start.get_attribute("data-role"), start.inner_text()
    assert_safe(page, f"{who}/hub/home")
    shot(page, f"{who}_home.png")
    page.goto(hub.url + "/hub/classroom/dashboards", wait_until="domcontentloaded")
    if school:
        link = page.locator("a.classroom-dashboard-link[data-name='quiz.ipynb']")
        assert link.inner_text() == TITLE  # the title, as text
    assert_safe(page, f"{who}/hub/classroom/dashboards")
    return role, advice


def run_every(page: Any, hub: Hub, user: str, token: str, folder: str,
              names: list[str]) -> dict[str, Any]:
    ran = {}
    for name in names:
        result = run_all(page, hub, user, token, f"{folder}/{name}")
        shot(page, f"{user}_{folder}_{name.removesuffix('.ipynb')}.png")
        assert "Traceback" not in result.stderr, f"{folder}/{name}:\n{result.stderr[-3000:]}"
        assert result.plots >= MIN_PLOTS[name], f"{folder}/{name}: {result.plots} chart(s)"
        assert_safe(page, f"{user}/{folder}/{name}")
        ran[name] = result
        shut_down_kernels(hub, token, user)
    return ran


def test_teacher_finds_the_dashboards_in_their_lab_and_no_student_text_runs(
    planted: Planted, page: Any
) -> None:
    hub = planted.hub
    sign_in(page, hub, "sv_teacher", PASSWORDS["sv_teacher"], "/hub/home")
    role, advice = check_hub_pages(page, hub, "teacher")
    assert role == "teacher" and "Class activity now" in advice and "dashboards/" in advice
    hub.start_server(planted.teacher_token, "sv_teacher")
    hub.remember_children()
    assert set(DASHBOARDS) <= contents(hub, planted.teacher_token, "sv_teacher", "dashboards")
    assert "admin" not in contents(hub, planted.teacher_token, "sv_teacher")

    ran = run_every(page, hub, "sv_teacher", planted.teacher_token, "dashboards", DASHBOARDS)
    work = ran["student_work.ipynb"].text
    assert "sv_student:" in work and TITLE in work  # the conversation title, as text
    assert SHOWN in work  # a planted prompt in the table of calls, as text
    assert "Signed in as sv_teacher" in ran["class_activity.ipynb"].text
    assert "sv_student" in ran["lesson_progress.ipynb"].text

    # The same dashboard in Voila, as the teacher would publish it.
    # Voila sends the page as the cells run: it may take a while to arrive.
    page.goto(f"{hub.url}/user/sv_teacher/voila/render/dashboards/student_work.ipynb",
              wait_until="commit", timeout=180_000)
    page.get_by_text(TITLE).first.wait_for(timeout=180_000)
    voila = outputs(page)
    assert "Traceback" not in voila.stderr and voila.plots >= 1
    assert_safe(page, "sv_teacher/voila/student_work")
    shot(page, "teacher_voila_student_work.png")


def test_admin_finds_admin_notebooks_and_dashboards_and_no_student_text_runs(
    planted: Planted, page: Any
) -> None:
    hub = planted.hub
    sign_in(page, hub, hub.admin_user, hub.admin_password, "/hub/home")
    role, advice = check_hub_pages(page, hub, "admin", school=False)
    assert role == "admin" and "usage review" in advice and "admin/" in advice
    hub.start_server(planted.admin_token, hub.admin_user)
    hub.remember_children()
    home = contents(hub, planted.admin_token, hub.admin_user)
    assert {"admin", "dashboards", "lessons"} <= home
    assert set(ADMIN_NOTEBOOKS) <= contents(hub, planted.admin_token, hub.admin_user, "admin")

    ran = run_every(page, hub, hub.admin_user, planted.admin_token, "admin", ADMIN_NOTEBOOKS)
    assert "sv_student" in ran["usage_review.ipynb"].text
    assert "dashboard.publish" in ran["housekeeping.ipynb"].text
    ran |= run_every(page, hub, hub.admin_user, planted.admin_token, "dashboards",
                     ["student_work.ipynb"])
    assert TITLE in ran["student_work.ipynb"].text


def test_the_student_gets_lessons_only_and_sees_the_title_as_text(
    planted: Planted, page: Any
) -> None:
    hub = planted.hub
    sign_in(page, hub, "sv_student", PASSWORDS["sv_student"], "/hub/home")
    role, advice = check_hub_pages(page, hub, "student")
    assert role == "student" and "lessons/01_first_chat.ipynb" in advice
    hub.start_server(planted.admin_token, "sv_student")
    hub.remember_children()
    home = contents(hub, planted.admin_token, "sv_student")
    assert "lessons" in home and not {"admin", "dashboards"} & home
