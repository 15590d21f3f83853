"""Teachers and admins on a real classroom: roster import, a teacher's hub rights over
their own school only, publishing a dashboard from a teacher's lab, a student opening
it through the hub page rendered by Voila, and the admin panel's school groups.
One hub for the whole module; screenshots go to test-artifacts/."""

from __future__ import annotations

import asyncio
import csv
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
import requests

from tests.support.hub import Hub
from tests.support.kernel import RemoteKernel
from tests.support.lab_ui import shut_down_kernels
from tests.support.procs import ARTIFACTS, REPO

pytestmark = pytest.mark.e2e

DASHBOARD = REPO / "notebooks" / "dashboards" / "class_activity.ipynb"
ROSTER = """username,display_name,tenant,role,password
ta_teacher,Tina Teacher,school_a,teacher,tina-teaches-well-1
ta_student,Sam Student,school_a,student,
tb_student,Bo Other,school_b,student,
"""


@dataclass
class Classroom:
    hub: Hub
    passwords: dict[str, str]
    teacher_token: str
    admin_token: str


def api(hub: Hub, token: str, method: str, path: str, **kwargs: object) -> requests.Response:
    return requests.request(method, hub.api + path, headers={"Authorization": f"token {token}"},
                            timeout=60, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def classroom(hub: Hub, admin_token: str) -> Iterator[Classroom]:
    roster = hub.data_dir.parent / "roster.csv"
    roster.write_text(ROSTER)
    handout = hub.data_dir.parent / "handout.csv"
    out = hub.classroom("accounts", "import", str(roster), "--credentials", str(handout))
    assert "3 created" in out.stdout and "Hub: 3 user(s)" in out.stdout, out.stdout
    with handout.open() as file:
        passwords = {row["username"]: row["password"] for row in csv.DictReader(file)}
    passwords["ta_teacher"] = "tina-teaches-well-1"
    session = hub.login("ta_teacher", passwords["ta_teacher"])
    token = hub.token_for(session, "ta_teacher", note="teacher e2e")
    yield Classroom(hub, passwords, token, admin_token)
    # Voila leaves its kernel running: delete every kernel of the labs started here.
    for user in ("ta_teacher", "ta_student", "tb_student"):
        shut_down_kernels(hub, admin_token, user)


def open_server(session: requests.Session, url: str) -> requests.Response:
    """Open someone's server as a browser does: the hub asks to authorize access once."""
    response = session.get(url, timeout=60)
    if "/hub/api/oauth2/authorize" in response.url and response.status_code == 200:
        scopes = re.findall(r'name="scopes" value="([^"]*)"', response.text)
        response = session.post(response.url, timeout=60, data={
            "_xsrf": session.cookies.get("_xsrf", path="/hub/") or "",
            "scopes": scopes,
        })
    return response


def shot(page: object, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)  # type: ignore[attr-defined]


# -- hub API: what a teacher may do -----------------------------------------------------


def test_teacher_lists_only_own_school(classroom: Classroom) -> None:
    hub, token = classroom.hub, classroom.teacher_token
    names = {u["name"] for u in api(hub, token, "GET", "/users").json()}
    assert {"ta_teacher", "ta_student"} <= names
    assert "tb_student" not in names and "admin" not in names
    assert api(hub, token, "GET", "/users/tb_student").status_code in (403, 404)
    groups = {g["name"] for g in api(hub, token, "GET", "/groups").json()}
    assert "tenant-school_a" in groups and "tenant-school_b" not in groups
    admin_page = requests.get(hub.url + "/hub/admin", timeout=30,
                              headers={"Authorization": f"token {token}"})
    assert admin_page.status_code == 200


def test_teacher_starts_opens_and_stops_own_students_server_only(classroom: Classroom) -> None:
    hub, token = classroom.hub, classroom.teacher_token
    assert api(hub, token, "POST", "/users/tb_student/server").status_code in (403, 404)
    assert api(hub, token, "DELETE", "/users/tb_student/server").status_code in (403, 404)
    hub.start_server(token, "ta_student")
    # Opening a server is the browser's OAuth round trip through the hub, which resolves
    # the group filter (a token with only `access:servers!group=...` cannot, by design).
    browser_like = hub.login("ta_teacher", classroom.passwords["ta_teacher"])
    opened = open_server(browser_like, f"{hub.url}/user/ta_student/lab")
    assert opened.status_code == 200 and opened.url.startswith(f"{hub.url}/user/ta_student/")
    hub.start_server(classroom.admin_token, "tb_student")
    other = open_server(browser_like, f"{hub.url}/user/tb_student/lab")
    assert other.status_code in (403, 404)
    assert not other.url.startswith(f"{hub.url}/user/tb_student/lab")
    hub.stop_server(token, "ta_student")
    hub.stop_server(classroom.admin_token, "tb_student")


# -- publishing and opening a dashboard ----------------------------------------------------


@pytest.mark.browser
def test_teacher_signs_in_on_the_branded_page_and_publishes(
    classroom: Classroom, browser: object
) -> None:
    hub = classroom.hub
    context = browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    try:
        page.goto(hub.url + "/hub/login?tenant=school_a", wait_until="domcontentloaded")
        assert page.title() == "Hanbit · AI Classroom"
        assert page.locator("h1.classroom-page-title").inner_text().startswith("Hanbit High School")
        assert page.locator("img.classroom-login-logo").evaluate("img => img.naturalWidth") > 0
        shot(page, "teacher_branded_login.png")
        page.fill("input[name=username]", "ta_teacher")
        page.fill("input[name=password]", classroom.passwords["ta_teacher"])
        page.click("[type=submit]")
        page.wait_for_url("**/user/ta_teacher/lab**", timeout=120_000)
    finally:
        context.close()
    hub.remember_children()

    async def publish_from_the_lab() -> str:
        kernel = RemoteKernel(f"{hub.url}/user/ta_teacher", classroom.teacher_token)
        await kernel.start()
        try:
            result = await kernel.execute(
                "import classroom.publish as p\n"
                f"done = p.publish({str(DASHBOARD)!r})\n"
                "print(done.tenant, done.name, done.url)"
            )
        finally:
            await kernel.shutdown()
        return result.text

    # Playwright's sync API owns this thread's event loop: run the kernel client beside it.
    with ThreadPoolExecutor(1) as pool:
        printed = pool.submit(asyncio.run, publish_from_the_lab()).result(timeout=300)
    assert printed.split() == [
        "school_a", "class_activity.ipynb",
        "/hub/user-redirect/voila/render/published/class_activity.ipynb",
    ]
    assert (hub.data_dir / "published" / "school_a" / "class_activity.ipynb").is_file()
    audit = requests.get(hub.gateway_url + "/api/audit", params={"action": "dashboard."},
                         headers={"Authorization": f"Bearer {classroom.teacher_token}"},
                         timeout=30).json()
    assert audit["items"][0]["actor"] == "ta_teacher"


@pytest.mark.browser
def test_student_opens_the_dashboard_rendered_by_voila(
    classroom: Classroom, browser: object, admin_token: str
) -> None:
    hub = classroom.hub
    context = browser.new_context(viewport={"width": 1280, "height": 1000})  # type: ignore[attr-defined]
    page = context.new_page()
    try:
        page.goto(hub.url + "/hub/login?tenant=school_a&next=/hub/classroom/dashboards",
                  wait_until="domcontentloaded")
        page.fill("input[name=username]", "ta_student")
        page.fill("input[name=password]", classroom.passwords["ta_student"])
        page.click("[type=submit]")
        link = page.locator("a.classroom-dashboard-link[data-name='class_activity.ipynb']")
        link.wait_for(timeout=30_000)
        assert link.inner_text() == "Class activity now"
        shot(page, "student_dashboards_list.png")
        link.click()
        # The student's own server starts (implicit spawn), then Voila runs the notebook.
        page.wait_for_url("**/user/ta_student/voila/render/published/class_activity.ipynb*",
                          timeout=180_000)
        page.locator(".js-plotly-plot").first.wait_for(timeout=180_000)
        assert page.locator(".js-plotly-plot").count() >= 2
        body = page.locator("body").inner_text()
        assert "Class activity now" in body and "Signed in as ta_student" in body
        shot(page, "student_voila_dashboard.png")
    finally:
        context.close()
    hub.remember_children()

    # ~/published is the school's and read-only from the lab.
    headers = {"Authorization": f"token {admin_token}"}
    listing = requests.get(f"{hub.url}/user/ta_student/api/contents/published",
                           headers=headers, timeout=30).json()
    assert [item["name"] for item in listing["content"]] == ["class_activity.ipynb"]
    refused = requests.put(
        f"{hub.url}/user/ta_student/api/contents/published/class_activity.ipynb",
        headers=headers, timeout=30,
        json={"type": "notebook", "format": "json",
              "content": {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}},
    )
    assert refused.status_code == 403


@pytest.mark.browser
def test_student_of_another_school_does_not_see_it(classroom: Classroom, browser: object) -> None:
    hub = classroom.hub
    context = browser.new_context(viewport={"width": 1280, "height": 800})  # type: ignore[attr-defined]
    page = context.new_page()
    try:
        page.goto(hub.url + "/hub/login?tenant=school_b&next=/hub/classroom/dashboards",
                  wait_until="domcontentloaded")
        assert page.title() == "SSA · AI Classroom"
        page.fill("input[name=username]", "tb_student")
        page.fill("input[name=password]", classroom.passwords["tb_student"])
        page.click("[type=submit]")
        page.locator("#no-dashboards").wait_for(timeout=30_000)
        assert page.locator("a.classroom-dashboard-link").count() == 0
        assert "Seoul Science Academy" in page.locator(".classroom-school-name").inner_text()
        shot(page, "other_school_dashboards.png")
    finally:
        context.close()


@pytest.mark.browser
def test_admin_panel_shows_the_school_groups(classroom: Classroom, browser: object) -> None:
    hub = classroom.hub
    context = browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    try:
        page.goto(hub.url + "/hub/login?next=/hub/admin", wait_until="domcontentloaded")
        page.fill("input[name=username]", hub.admin_user)
        page.fill("input[name=password]", hub.admin_password)
        page.click("[type=submit]")
        page.wait_for_url("**/hub/admin**", timeout=60_000)
        page.goto(hub.url + "/hub/admin#/groups", wait_until="domcontentloaded")
        for group in ("tenant-school_a", "tenant-school_b", "teachers-school_a"):
            page.get_by_text(group, exact=True).first.wait_for(timeout=30_000)
        shot(page, "admin_panel_groups.png")
    finally:
        context.close()
