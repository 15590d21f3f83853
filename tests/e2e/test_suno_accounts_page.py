"""Suno accounts on the hub's accounts page, in a real classroom (hub, proxy, gateway):
an admin assigns one to a student there, the gateway records it and audits it, the
student sees it (and only theirs), and a teacher neither sees nor changes assignments."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import running_hub
from tests.support import secrets
from tests.support.hub import Hub

PASSWORD = "suno-page-pw-9061"
PEOPLE = {"sp_student": "sp-student-pass-1234", "sp_other": "sp-other-pass-1234",
          "sp_teacher": "sp-teacher-pass-1234"}


@pytest.fixture(scope="module")
def hub(reachable_tmp: Path) -> Iterator[Hub]:
    secrets.remember(PASSWORD, *PEOPLE.values())
    accounts = [{"id": 0, "email": "", "password": "", "memo": "배정 없음"},
                {"id": 5, "email": "band@example.com", "password": PASSWORD,
                 "memo": "<i>Room 7</i>"}]
    with running_hub(reachable_tmp, "suno", CLASSROOM_SUNO_ACCOUNTS_JSON=json.dumps(
            accounts, ensure_ascii=False)) as started:
        roster = started.data_dir.parent / "suno-roster.csv"
        roster.write_text("username,display_name,tenant,role,password\n" + "".join(
            f"{name},{name},school_a,{'teacher' if name == 'sp_teacher' else 'student'},"
            f"{password}\n" for name, password in PEOPLE.items()))
        started.classroom("accounts", "import", str(roster))
        yield started


def page_session(hub: Hub, who: str, password: str) -> tuple[requests.Session, str, str]:
    session = hub.login(who, password)
    page = session.get(hub.url + "/hub/classroom/accounts", timeout=30)
    assert page.status_code == 200, page.text[:500]
    xsrf = session.cookies.get("_xsrf", path="/hub/") or session.cookies.get("_xsrf", "")
    return session, xsrf, page.text


def row_of(page: str, username: str) -> str:
    found = re.search(r'<tr class="classroom-account" data-username="' + username +
                      r'">(.*?)</tr>', page, re.S)
    assert found, f"no row for {username}"
    return found.group(1)


def as_user(hub: Hub, who: str, password: str) -> dict[str, str]:
    token = hub.token_for(hub.login(who, password), who)
    return {"Authorization": f"Bearer {token}"}


def test_an_admin_assigns_a_suno_account_on_the_page(hub: Hub) -> None:
    session, xsrf, page = page_session(hub, hub.admin_user, hub.admin_password)
    row = row_of(page, "sp_student")
    assert 'name="suno_account"' in row and "band@example.com" in row
    assert "&lt;i&gt;Room 7&lt;/i&gt;" in row and "<i>Room 7</i>" not in row  # escaped
    assert PASSWORD not in page

    done = session.post(hub.url + "/hub/classroom/accounts", timeout=30, data={
        "_xsrf": xsrf, "action": "suno", "username": "sp_student", "suno_account": "5"})
    assert done.status_code == 200 and "sp_student now has Suno account 5." in done.text
    assert "Suno: band@example.com" in row_of(done.text, "sp_student")
    assert PASSWORD not in done.text

    student = as_user(hub, "sp_student", PEOPLE["sp_student"])
    mine = requests.get(hub.gateway_url + "/api/suno/me", headers=student, timeout=30).json()
    assert mine["assigned"] and mine["account"]["email"] == "band@example.com"
    other = as_user(hub, "sp_other", PEOPLE["sp_other"])
    theirs = requests.get(hub.gateway_url + "/api/suno/me", headers=other, timeout=30).json()
    assert theirs["assigned"] is False
    admin = as_user(hub, hub.admin_user, hub.admin_password)
    audit = requests.get(hub.gateway_url + "/api/audit", headers=admin, timeout=30,
                         params={"action": "suno."}).json()["items"]
    assert [(e["actor"], e["action"], e["target"]) for e in audit] == [
        (hub.admin_user, "suno.assign", "sp_student")]


def test_a_teacher_neither_sees_nor_assigns_suno_accounts(hub: Hub) -> None:
    session, xsrf, page = page_session(hub, "sp_teacher", PEOPLE["sp_teacher"])
    assert "suno_account" not in page and "band@example.com" not in page
    refused = session.post(hub.url + "/hub/classroom/accounts", timeout=30, data={
        "_xsrf": xsrf, "action": "suno", "username": "sp_other", "suno_account": "5"})
    assert refused.status_code == 403
    teacher = as_user(hub, "sp_teacher", PEOPLE["sp_teacher"])
    for path in ("/api/suno/accounts", "/api/suno/assignments"):
        answer = requests.get(hub.gateway_url + path, headers=teacher, timeout=30)
        assert answer.status_code == 403 and "band@example.com" not in answer.text
