"""Safe views, and each role's notebooks in its own lab, in a real browser.

A student plants script-bearing text in every field they control (prompts, so
replies too, conversation titles and messages, a model name that comes back in
the history) and a teacher plants it in a published dashboard's title and a
display name. Then the teacher and the admin sign in as a new teacher and admin
would: the home page says where to start; their own lab holds ``dashboards/``
(and ``admin/``); each notebook there runs top to bottom (Run All) with no
traceback, draws its charts and shows the student's fresh calls; the hub
pages show the titles. On every
page no payload ran (the flag each would set stays unset, no element carries a
planted handler) and the payload is on the page as text. The student's lab gets
neither folder. "Class activity now" is live: in Voila a fresh call shows up with
no cell run again, the pause and resume buttons act at once (the gateway refuses,
then serves, the student), and in JupyterLab the page asks for fresh numbers
while it is open and nothing asks once it is closed. The accounts page: a
teacher imports a roster (all or nothing, problems by line, passwords as a
one-time CSV download), disables, enables and resets their students and is
refused making admins or touching another school; an admin changes a school
and a role; the store and the audit log are the CLI's. A teacher publishes a
lesson from their lab; it arrives in a running student lab on request and the
student opens it; withdrawn, it is no longer offered and the student's copy
stays. One hub for the module; screenshots go to test-artifacts/.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests

from hub.accounts import ACCOUNTS_FILE, AccountStore
from tests.support.hub import Hub
from tests.support.lab_ui import (
    in_kernel,
    kernel_of,
    payloads,
    run_all,
    script_ran,
    shut_down_kernels,
    sign_in,
)
from tests.support.procs import ARTIFACTS, REPO, wait_until

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
    headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
    return requests.request(method, hub.gateway_url + path, timeout=60, headers=headers,
                            **kwargs)


@pytest.fixture(scope="module")
def planted(hub: Hub, admin_token: str) -> Iterator[Planted]:
    roster = hub.data_dir.parent / "safe-views-roster.csv"
    roster.write_text(ROSTER)
    out = hub.classroom("accounts", "import", str(roster))
    assert "2 created" in out.stdout, out.stdout
    student = hub.token_for(hub.login("sv_student", PASSWORDS["sv_student"]), "sv_student")
    teacher = hub.token_for(hub.login("sv_teacher", PASSWORDS["sv_teacher"]), "sv_teacher")

    # The student: prompts (mock/echo sends each back as the reply), a conversation, each
    # call from a lesson whose file name is a payload too (the lesson-progress dashboard).
    where = {"X-Classroom-Notebook": quote(f"lessons/{payloads('notebook')[0]}.ipynb"),
             "X-Classroom-Cell": "cell-07", "X-Classroom-Cell-Position": "3/9"}
    for text in payloads("prompt"):
        reply = gateway(hub, student, "POST", "/v1/chat/completions", headers=where, json={
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


def arrive(page: Any, hub: Hub, user: str, password: str, token: str,
           school: bool = True) -> tuple[str, str]:
    """Sign in as a new user would, read the hub pages, and have the lab running."""
    sign_in(page, hub, user, password, "/hub/home")
    role, advice = check_hub_pages(page, hub, user, school)
    hub.start_server(token, user)
    hub.remember_children()
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
    role, advice = arrive(page, hub, "sv_teacher", PASSWORDS["sv_teacher"], planted.teacher_token)
    assert role == "teacher" and "Class activity now" in advice and "dashboards/" in advice
    assert set(DASHBOARDS) <= contents(hub, planted.teacher_token, "sv_teacher", "dashboards")
    assert "admin" not in contents(hub, planted.teacher_token, "sv_teacher")

    ran = run_every(page, hub, "sv_teacher", planted.teacher_token, "dashboards", DASHBOARDS)
    work = ran["student_work.ipynb"].text
    assert "sv_student:" in work and TITLE in work  # the conversation title, as text
    assert SHOWN in work  # a planted prompt in the table of calls, as text
    assert "Signed in as sv_teacher" in ran["class_activity.ipynb"].text
    assert "sv_student" in ran["lesson_progress.ipynb"].text



def test_admin_finds_admin_notebooks_and_dashboards_and_no_student_text_runs(
    planted: Planted, page: Any
) -> None:
    hub = planted.hub
    role, advice = arrive(page, hub, hub.admin_user, hub.admin_password, planted.admin_token,
                          school=False)
    assert role == "admin" and "usage review" in advice and "admin/" in advice
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
    role, advice = arrive(page, hub, "sv_student", PASSWORDS["sv_student"], planted.admin_token)
    assert role == "student" and "lessons/01_first_chat.ipynb" in advice
    home = contents(hub, planted.admin_token, "sv_student")
    assert "lessons" in home and not {"admin", "dashboards"} & home


# -- live: class activity refreshes itself, its buttons act, and it stops with the page ------


def window_requests(page: Any) -> int:
    """The "requests / min" card's "N in the window"."""
    note = page.locator(".classroom-card", has_text="requests / min").first.inner_text()
    return int(note.rsplit("\n", 1)[-1].split()[0])


def test_class_activity_is_live_and_stops_asking_when_the_page_is_closed(
    planted: Planted, page: Any
) -> None:
    hub, token = planted.hub, planted.teacher_token
    sign_in(page, hub, "sv_teacher", PASSWORDS["sv_teacher"], "/hub/home")
    page.goto(f"{hub.url}/user/sv_teacher/voila/render/dashboards/class_activity.ipynb",
              wait_until="commit", timeout=180_000)
    page.locator(".classroom-card", has_text="requests / min").wait_for(timeout=180_000)
    before = window_requests(page)
    fresh = gateway(hub, planted.student_token, "POST", "/v1/chat/completions", json={
        "model": "mock/echo", "messages": [{"role": "user", "content": "a fresh call"}]})
    assert fresh.status_code == 200
    # Nothing runs again: the page's own refresh brings the call in.
    page.locator(".classroom-card", has_text=f"{before + 1} in the window").wait_for(
        timeout=60_000)
    assert_safe(page, "sv_teacher/voila/class_activity")
    shot(page, "teacher_live_class_activity.png")

    page.get_by_role("button", name="Pause the whole class").click()
    page.locator(".classroom-pause-result", has_text="Paused the whole class").wait_for()
    assert "the whole class of school_a" in page.locator(".classroom-pauses").inner_text()
    refused = gateway(hub, planted.student_token, "POST", "/v1/chat/completions", json={
        "model": "mock/echo", "messages": [{"role": "user", "content": "may I?"}]})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "paused_by_teacher"
    page.get_by_role("button", name="Resume the whole class").click()
    page.locator(".classroom-pause-result", has_text="Resumed the whole class.").wait_for()
    assert gateway(hub, planted.student_token, "POST", "/v1/chat/completions", json={
        "model": "mock/echo", "messages": [{"role": "user", "content": "now?"}]}
    ).status_code == 200
    shot(page, "teacher_live_paused_and_resumed.png")

    # In JupyterLab: the page asks while it is open, and nothing asks once it is closed.
    path = "dashboards/class_activity.ipynb"
    run_all(page, hub, "sv_teacher", token, path)
    kernel = (kernel_of(hub, "sv_teacher", token, path) or {})["id"]
    probe = "import time; print(activity.ticks, time.monotonic() - activity.last_tick_at)"

    def asked() -> tuple[int, float]:
        ticks, quiet = in_kernel(hub, "sv_teacher", token, probe, kernel).split()
        return int(ticks), float(quiet)

    wait_until(lambda: asked()[0] >= 2, 120, "the open page asking for fresh numbers")
    page.goto("about:blank")
    # Condition, not a sleep: no ask for four intervals (never true while a page asks).
    wait_until(lambda: asked()[1] > 12, 120, "the closed page to stop asking")
    ticks = asked()[0]
    wait_until(lambda: asked()[1] > 15, 120, "three more quiet seconds")
    assert asked()[0] == ticks
    shut_down_kernels(hub, token, "sv_teacher")


# -- accounts without a terminal ---------------------------------------------------------


def store(hub: Hub) -> AccountStore:
    """The accounts store the page and the CLI share, read from outside the hub."""
    return AccountStore(hub.data_dir / ACCOUNTS_FILE)


def upload(page: Any, name: str, text: str) -> None:
    page.set_input_files("#accounts-import input[type=file]", files=[
        {"name": name, "mimeType": "text/csv", "buffer": text.encode()}])
    page.click("#accounts-import [type=submit]")
    page.wait_for_load_state("domcontentloaded")


def post_as(hub: Hub, who: str, password: str, form: dict[str, str]) -> requests.Response:
    """A form post to the accounts page as a browser would send it (xsrf included)."""
    session = hub.login(who, password)
    session.get(hub.url + "/hub/classroom/accounts", timeout=30)
    xsrf = session.cookies.get("_xsrf", path="/hub/") or session.cookies.get("_xsrf", "")
    return session.post(hub.url + "/hub/classroom/accounts", timeout=30,
                        data={"_xsrf": xsrf, **form})


BAD_ROSTER = """username,display_name,tenant,role
sv_new1,New One,school_a,student
sv_new2,New Two,school_b,student
sv_boss,Boss,school_a,admin
"""
GOOD_ROSTER = """username,display_name,tenant,role
sv_new1,New One,school_a,student
sv_new2,"<b onmouseover=""window.__cx='roster'"">New Two</b>",school_a,student
"""


def test_a_teacher_manages_their_students_on_the_accounts_page(
    planted: Planted, page: Any
) -> None:
    hub = planted.hub
    sign_in(page, hub, "sv_teacher", PASSWORDS["sv_teacher"], "/hub/classroom/accounts")
    page.locator("#classroom-accounts[data-manager=teacher]").wait_for()
    listed = page.locator("tr.classroom-account").evaluate_all(
        "rows => rows.map(r => r.dataset.username)")
    assert "sv_student" in listed and "sv_teacher" not in listed and hub.admin_user not in listed
    name = page.locator("tr[data-username=sv_student] .classroom-display-name").inner_text()
    assert name == "<script>window.__cx='name2'</script>Sam"  # the display name, as text
    assert_safe(page, "sv_teacher/hub/classroom/accounts")

    # All or nothing: problems by line, and no account made.
    upload(page, "class-3b.csv", BAD_ROSTER)
    problems = page.locator("#accounts-problems").inner_text()
    assert "class-3b.csv:3: teachers add students of their own school (school_a) only" in problems
    assert "class-3b.csv:4: teachers add students only, not a admin" in problems
    assert store(hub).get("sv_new1") is None

    upload(page, "class-3b.csv", GOOD_ROSTER)
    assert "Imported class-3b.csv: 2 created" in page.locator("#accounts-notice").inner_text()
    assert_safe(page, "sv_teacher/accounts import")
    with page.expect_download() as download:
        page.click("#accounts-download")
    handed_out = {row["username"]: row["password"] for row in
                  csv.DictReader(Path(download.value.path()).read_text().splitlines())}
    assert set(handed_out) == {"sv_new1", "sv_new2"}
    hub.login("sv_new1", handed_out["sv_new1"])  # the generated password works
    shot(page, "teacher_accounts_imported.png")

    # Disable, enable, reset: the store changes, and so does signing in.
    row = page.locator("tr[data-username=sv_new1]")
    row.get_by_role("button", name="Disable").click()
    page.locator("#accounts-notice", has_text="Disabled sv_new1.").wait_for()
    assert store(hub).get("sv_new1").disabled
    page.locator("tr[data-username=sv_new1]").get_by_role("button", name="Enable").click()
    page.locator("#accounts-notice", has_text="Enabled sv_new1.").wait_for()
    page.locator("tr[data-username=sv_new1]").get_by_role("button",
                                                          name="Reset password").click()
    new_password = page.locator("#accounts-generated code").inner_text()
    hub.login("sv_new1", new_password)
    assert new_password != handed_out["sv_new1"]

    # Refused: making an admin, another school's student, another school's account.
    for form in ({"action": "add", "username": "sv_evil", "role": "admin"},
                 {"action": "add", "username": "sv_evil", "tenant": "school_b"}):
        refused = post_as(hub, "sv_teacher", PASSWORDS["sv_teacher"], form)
        assert refused.status_code == 403, form
    assert store(hub).get("sv_evil") is None
    changed = post_as(hub, "sv_teacher", PASSWORDS["sv_teacher"],
                      {"action": "change", "username": "sv_new1", "role": "teacher"})
    assert changed.status_code == 403 and store(hub).get("sv_new1").role == "student"
    other = post_as(hub, "sv_teacher", PASSWORDS["sv_teacher"],
                    {"action": "disable", "username": hub.admin_user})
    assert other.status_code == 404 and not store(hub).get(hub.admin_user).disabled

    # The same audit log as the command line.
    def audited() -> set[str]:
        items = gateway(hub, planted.admin_token, "GET", "/api/audit",
                        params={"actor": "sv_teacher"}).json()["items"]
        return {f"{i['action']} {i['target']}" for i in items}

    wait_until(lambda: {"account.import class-3b.csv", "account.disable sv_new1",
                        "account.password_reset sv_new1"} <= audited(), 60, "the audit log")


def test_an_admin_changes_a_school_and_role_on_the_accounts_page(
    planted: Planted, page: Any
) -> None:
    hub = planted.hub
    sign_in(page, hub, hub.admin_user, hub.admin_password, "/hub/classroom/accounts")
    page.locator("#classroom-accounts[data-manager=admin]").wait_for()
    assert_safe(page, "admin/hub/classroom/accounts")
    row = page.locator("tr[data-username=sv_new2]")
    assert row.locator(".classroom-display-name").inner_text() == (
        "<b onmouseover=\"window.__cx='roster'\">New Two</b>")
    row.locator("select[name=tenant]").select_option("school_b")
    row.locator("select[name=role]").select_option("teacher")
    row.get_by_role("button", name="Change").click()
    page.locator("#accounts-notice", has_text="sv_new2 is now teacher at school_b").wait_for()
    moved = store(hub).get("sv_new2")
    assert (moved.tenant, moved.role) == ("school_b", "teacher")

    page.fill("#accounts-add input[name=username]", "sv_added")
    page.locator("#accounts-add select[name=tenant]").select_option("school_a")
    page.locator("#accounts-add select[name=role]").select_option("teacher")
    page.click("#accounts-add [type=submit]")
    assert "Added sv_added (teacher, school_a)." in page.locator("#accounts-notice").inner_text()
    hub.login("sv_added", page.locator("#accounts-generated code").inner_text())
    shot(page, "admin_accounts.png")


# -- teachers' own lessons ---------------------------------------------------------------

LESSON = {"cells": [{"cell_type": "markdown", "id": "a1", "metadata": {},
                     "source": ["# Prompt patterns\n", "A lesson of Ms Kim's own."]},
                    {"cell_type": "code", "id": "b2", "metadata": {}, "execution_count": None,
                     "outputs": [], "source": ["print('hello')"]}],
          "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
          "nbformat": 4, "nbformat_minor": 5}


def test_a_teacher_publishes_a_lesson_and_a_student_opens_it(
    planted: Planted, page: Any
) -> None:
    hub = planted.hub
    hub.start_server(planted.teacher_token, "sv_teacher")
    hub.start_server(planted.admin_token, "sv_student")
    saved = requests.put(f"{hub.url}/user/sv_teacher/api/contents/prompt_patterns.ipynb",
                         headers={"Authorization": f"token {planted.teacher_token}"},
                         json={"type": "notebook", "format": "json", "content": LESSON},
                         timeout=30)
    assert saved.status_code in (200, 201), saved.text
    url = in_kernel(hub, "sv_teacher", planted.teacher_token,
                     "import os, classroom.lessons as lessons\n"
                     "print(lessons.publish(os.path.expanduser('~/prompt_patterns.ipynb')).url)")
    assert url.strip() == "/hub/user-redirect/lab/tree/lessons/prompt_patterns.ipynb"

    # The student's lab is running: the lesson arrives on request, next to the others.
    student_token = planted.student_token
    copied = in_kernel(hub, "sv_student", student_token,
                        "import classroom.lessons as lessons; print(lessons.update())")
    assert "lessons/prompt_patterns.ipynb" in copied
    assert "prompt_patterns.ipynb" in contents(hub, planted.admin_token, "sv_student", "lessons")

    sign_in(page, hub, "sv_student", PASSWORDS["sv_student"], "/hub/home")
    page.goto(hub.url + url.strip(), wait_until="domcontentloaded")
    page.locator(".jp-Notebook", has_text="Prompt patterns").first.wait_for(timeout=120_000)
    assert "A lesson of Ms Kim's own." in page.locator(".jp-Notebook").first.text_content()
    shot(page, "student_opens_teacher_lesson.png")

    # Withdrawn: nobody gets it any more; the student's copy (their work) stays.
    withdrawn = gateway(hub, planted.teacher_token, "DELETE",
                        "/api/lessons/published/prompt_patterns.ipynb")
    assert withdrawn.status_code == 204
    assert gateway(hub, student_token, "GET", "/api/lessons/published").json()["items"] == []
    assert "prompt_patterns.ipynb" in contents(hub, planted.admin_token, "sv_student", "lessons")
    shut_down_kernels(hub, planted.admin_token, "sv_student")
