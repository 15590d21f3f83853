"""The classroom's hub pages on a real hub: branding, logos, passwords, lockout,
roster import through the running hub, deletion in the admin panel, dashboards list."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from gateway.published import publish
from tests.support.hub import Hub, start_hub
from tests.support.procs import ARTIFACTS

pytestmark = pytest.mark.e2e

ROSTER = """username,display_name,tenant,role,password
pg_stu,Page Student,school_a,student,page-student-pass-1
pg_teach,Page Teacher,school_a,teacher,page-teacher-pass-1
pg_stu_b,Other Student,school_b,student,page-other-pass-1
pg_victim,Locked Student,school_a,student,page-victim-pass-1
pg_gone,Deleted Student,school_b,student,page-gone-pass-1
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    started = start_hub(tmp_path_factory.mktemp("pages") / "data")
    try:
        roster = started.data_dir.parent / "roster.csv"
        roster.write_text(ROSTER)
        out = started.classroom("accounts", "import", str(roster))
        assert "5 created" in out.stdout and "Hub: 5 user(s)" in out.stdout, out.stdout
        yield started
    finally:
        started.stop()
        logs = ARTIFACTS / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        (logs / "hub-pages-hub.log").write_text(started.log())


@pytest.fixture(scope="module")
def admin_token(hub: Hub) -> str:
    return hub.token_for(hub.login(hub.admin_user, hub.admin_password), hub.admin_user)


def api(hub: Hub, token: str, method: str, path: str, **kwargs: object) -> requests.Response:
    return requests.request(
        method, hub.api + path, headers={"Authorization": f"token {token}"}, timeout=30,
        **kwargs,  # type: ignore[arg-type]
    )


def title(html: str) -> str:
    match = re.search(r"<title>(.*?)</title>", html, re.S)
    return match.group(1).strip() if match else ""


def post_form(session: requests.Session, url: str, data: dict[str, str]) -> requests.Response:
    return session.post(url, data={**data, "_xsrf": session.cookies.get("_xsrf", "")}, timeout=30)


def test_roster_import_made_hub_users_with_school_groups(hub: Hub, admin_token: str) -> None:
    users = {u["name"]: set(u["groups"]) for u in api(hub, admin_token, "GET", "/users").json()}
    assert users["pg_stu"] == {"tenant-school_a", "role-student"}
    assert users["pg_teach"] == {"tenant-school_a", "role-teacher", "teachers-school_a"}
    assert users["pg_stu_b"] == {"tenant-school_b", "role-student"}
    groups = {g["name"] for g in api(hub, admin_token, "GET", "/groups").json()}
    assert {"tenant-default", "tenant-school_a", "tenant-school_b"} <= groups


def test_reimport_moves_a_student_and_the_hub_follows(hub: Hub, admin_token: str) -> None:
    roster = hub.data_dir.parent / "move.csv"
    roster.write_text(
        "username,display_name,tenant,role\npg_gone,Deleted Student,school_a,student\n"
    )
    out = hub.classroom("accounts", "import", str(roster))
    assert "1 updated" in out.stdout
    model = api(hub, admin_token, "GET", "/users/pg_gone").json()
    assert set(model["groups"]) == {"tenant-school_a", "role-student"}


def test_login_page_is_branded_for_the_school_in_the_url(hub: Hub) -> None:
    page = requests.get(hub.url + "/hub/login?tenant=school_b", timeout=30)
    page.encoding = "utf-8"
    assert page.status_code == 200
    assert title(page.text) == "SSA · AI Classroom"
    assert "Seoul Science Academy — AI Classroom" in page.text
    assert "/hub/classroom/logo/school_b" in page.text
    assert "#b4451f" in page.text
    assert "tenant=school_b" in page.text  # a failed sign-in comes back here
    assert "Choose your school" not in page.text


def test_plain_login_page_offers_a_school_picker(hub: Hub) -> None:
    page = requests.get(hub.url + "/hub/login", timeout=30)
    page.encoding = "utf-8"
    assert "Choose your school" in page.text
    assert 'data-tenant="school_a"' in page.text and 'data-tenant="school_b"' in page.text
    assert "Hanbit High School" in page.text
    # An unknown school falls back to the picker instead of failing.
    unknown = requests.get(hub.url + "/hub/login?tenant=<script>", timeout=30)
    assert unknown.status_code == 200 and "Choose your school" in unknown.text


def test_logos_are_served_as_images_and_nothing_else(hub: Hub) -> None:
    logo = requests.get(hub.url + "/hub/classroom/logo/school_a", timeout=30)
    assert logo.status_code == 200
    assert logo.headers["content-type"] == "image/svg+xml"
    assert logo.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'none'" in logo.headers["content-security-policy"]
    assert logo.content.lstrip().startswith(b"<")
    for bad in ("nope", "..", "school_a.json", "%2e%2e%2fschool_a"):
        assert requests.get(hub.url + f"/hub/classroom/logo/{bad}", timeout=30).status_code == 404


def test_home_page_shows_the_users_school(hub: Hub) -> None:
    session = hub.login("pg_stu", "page-student-pass-1")
    home = session.get(hub.url + "/hub/home", timeout=30)
    home.encoding = "utf-8"
    assert title(home.text) == "Hanbit · AI Classroom"
    assert "Hanbit High School — AI Classroom" in home.text
    assert "/hub/classroom/logo/school_a" in home.text
    assert "/hub/classroom/dashboards" in home.text


def test_user_changes_own_password(hub: Hub) -> None:
    session = hub.login("pg_stu_b", "page-other-pass-1")
    url = hub.url + "/hub/classroom/password"
    mismatch = post_form(session, url, {"current": "page-other-pass-1", "new": "brand-new-pass-1",
                                        "confirm": "brand-new-pass-2"})
    assert mismatch.status_code == 400 and "not the same" in mismatch.text
    wrong = post_form(session, url, {"current": "not-my-password", "new": "brand-new-pass-1",
                                     "confirm": "brand-new-pass-1"})
    assert wrong.status_code == 403 and "not right" in wrong.text
    common = post_form(session, url, {"current": "page-other-pass-1", "new": "password123",
                                      "confirm": "password123"})
    assert common.status_code == 400 and "common" in common.text
    done = post_form(session, url, {"current": "page-other-pass-1", "new": "brand-new-pass-1",
                                    "confirm": "brand-new-pass-1"})
    assert done.status_code == 200 and "has been changed" in done.text
    hub.login("pg_stu_b", "brand-new-pass-1")
    with pytest.raises(AssertionError):
        hub.login("pg_stu_b", "page-other-pass-1")


def test_only_admins_reset_someone_elses_password(hub: Hub) -> None:
    url = hub.url + "/hub/classroom/password"
    teacher = hub.login("pg_teach", "page-teacher-pass-1")
    assert "Reset someone" not in teacher.get(url, timeout=30).text
    refused = post_form(teacher, url, {"action": "reset", "username": "pg_stu", "new": ""})
    assert refused.status_code == 403

    admin = hub.login(hub.admin_user, hub.admin_password)
    reset = post_form(admin, url, {"action": "reset", "username": "pg_stu", "new": ""})
    assert reset.status_code == 200
    generated = re.search(r'id="reset-generated">([^<]+)<', reset.text)
    assert generated, reset.text[-2000:]
    hub.login("pg_stu", generated.group(1))
    # Put the documented password back for the other tests.
    again = post_form(admin, url, {"action": "reset", "username": "pg_stu",
                                   "new": "page-student-pass-1"})
    assert "has been reset" in again.text


def test_failed_logins_lock_the_account_and_the_lock_is_logged(hub: Hub) -> None:
    session = requests.Session()
    session.get(hub.url + "/hub/login", timeout=30)
    for attempt in range(5):
        response = session.post(
            hub.url + "/hub/login",
            data={"username": "pg_victim", "password": f"wrong-{attempt}",
                  "_xsrf": session.cookies.get("_xsrf", "")},
            allow_redirects=False, timeout=30,
        )
        assert response.status_code in (200, 403)
    assert "locked" in response.text
    with pytest.raises(AssertionError):
        hub.login("pg_victim", "page-victim-pass-1")
    assert "Account 'pg_victim' locked until" in hub.log()
    hub.classroom("accounts", "unlock", "pg_victim")
    hub.login("pg_victim", "page-victim-pass-1")


def test_user_deleted_in_the_admin_panel_cannot_log_in(hub: Hub, admin_token: str) -> None:
    hub.login("pg_gone", "page-gone-pass-1")
    assert api(hub, admin_token, "DELETE", "/users/pg_gone").status_code == 204
    with pytest.raises(AssertionError):
        hub.login("pg_gone", "page-gone-pass-1")
    listing = hub.classroom("accounts", "list").stdout
    assert re.search(r"pg_gone .* disabled", listing)


def test_dashboards_page_lists_only_the_users_school(hub: Hub) -> None:
    notebook = (
        '{"cells": [{"cell_type": "markdown", "metadata": {}, "source": ["# Class pulse"]}],'
        ' "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'
    )
    publish(hub.data_dir, "school_a", "pulse.ipynb", notebook)
    own = hub.login("pg_stu", "page-student-pass-1").get(
        hub.url + "/hub/classroom/dashboards", timeout=30
    )
    assert "Class pulse" in own.text
    assert "/hub/user-redirect/voila/render/published/pulse.ipynb" in own.text
    other = hub.login("pg_stu_b", "brand-new-pass-1").get(
        hub.url + "/hub/classroom/dashboards", timeout=30
    )
    assert "pulse.ipynb" not in other.text and "Nothing has been published" in other.text


def test_published_folder_is_read_only_on_disk(hub: Hub) -> None:
    folder: Path = hub.data_dir / "published" / "school_a"
    if os.geteuid() == 0:
        # Labs isolated: root's folder, opened to the school's group alone (docs/isolation.md).
        assert folder.stat().st_uid == 0 and folder.stat().st_mode & 0o027 == 0
    else:
        assert oct(folder.stat().st_mode & 0o777) == "0o555"
    assert oct((folder / "pulse.ipynb").stat().st_mode & 0o777) == "0o444"
