"""Who may do what on the accounts page (``hub.accounts_page.Manager``); the page itself
is driven in a real browser in tests/e2e/test_safe_views.py."""

from __future__ import annotations

from datetime import UTC, datetime

from hub.accounts import Account
from hub.accounts_page import Manager


def account(tenant: str, role: str) -> Account:
    now = datetime.now(UTC)
    return Account("x", "", tenant, role, "hash", False, now, now)


def test_a_teacher_manages_only_their_own_schools_students() -> None:
    teacher = Manager("t", False, "school_a")
    assert teacher.may_manage(account("school_a", "student"))
    assert not teacher.may_manage(account("school_b", "student"))
    assert not teacher.may_manage(account("school_a", "teacher"))
    assert not teacher.may_manage(account("school_a", "admin"))
    assert teacher.refusal("school_a", "student") is None
    assert "own school" in (teacher.refusal("school_b", "student") or "")
    assert "students only" in (teacher.refusal("school_a", "admin") or "")
    assert "students only" in (teacher.refusal("school_a", "teacher") or "")


def test_an_admin_manages_everyone() -> None:
    admin = Manager("a", True, None)
    for tenant, role in [("school_a", "teacher"), ("school_b", "admin"), ("default", "viewer")]:
        assert admin.may_manage(account(tenant, role)) and admin.refusal(tenant, role) is None
