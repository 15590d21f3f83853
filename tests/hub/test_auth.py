"""ClassroomAuthenticator: sign-in, groups, refresh and the allow check."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
from argon2 import PasswordHasher
from tornado import web

from hub.accounts import AccountStore
from hub.auth import DISABLED_MESSAGE, ClassroomAuthenticator

from .conftest import TENANTS_DIR

PASSWORD = "correct horse battery"


@pytest.fixture
def authenticator(data_dir: Path, store: AccountStore) -> ClassroomAuthenticator:
    store.add("stu", PASSWORD, tenant="school_a", role="student")
    store.add("tina", PASSWORD, tenant="school_a", role="teacher")
    store.add("root", PASSWORD, tenant="default", role="admin")
    store.add("vic", PASSWORD, tenant="school_b", role="viewer")
    return ClassroomAuthenticator(data_dir=str(data_dir), tenants_dir=str(TENANTS_DIR))


def login(auth: ClassroomAuthenticator, username: str, password: str) -> dict | None:
    return asyncio.run(
        auth.get_authenticated_user(None, {"username": username, "password": password})
    )


def refresh(auth: ClassroomAuthenticator, username: str) -> bool | dict:
    return asyncio.run(auth.refresh_user(SimpleNamespace(name=username)))


def test_defaults_make_the_accounts_store_the_allow_list(
    authenticator: ClassroomAuthenticator,
) -> None:
    assert authenticator.manage_groups is True
    assert authenticator.refresh_pre_spawn is True
    assert authenticator.auth_refresh_age == 60
    assert authenticator.auth_refresh_strict is True
    assert authenticator.allow_all is False
    assert authenticator.allow_existing_users is False
    assert authenticator.any_allow_config is True  # no "nobody can login" warning


@pytest.mark.parametrize(
    ("username", "groups", "admin"),
    [
        ("stu", ["tenant-school_a", "role-student"], False),
        ("tina", ["tenant-school_a", "role-teacher", "teachers-school_a"], False),
        ("root", ["tenant-default", "role-admin"], True),
        ("vic", ["tenant-school_b", "role-viewer"], False),
    ],
)
def test_login_returns_groups_of_school_and_role(
    authenticator: ClassroomAuthenticator, username: str, groups: list[str], admin: bool
) -> None:
    model = login(authenticator, username, PASSWORD)

    assert model is not None
    assert model["name"] == username
    assert model["groups"] == groups
    assert model["admin"] is admin


def test_username_is_trimmed_and_lower_cased(authenticator: ClassroomAuthenticator) -> None:
    model = login(authenticator, "  Stu ", PASSWORD)
    assert model is not None and model["name"] == "stu"


def test_unknown_user_and_wrong_password_are_refused_alike(
    authenticator: ClassroomAuthenticator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "Sup3r-Secret-Guess"

    assert login(authenticator, "stu", secret) is None
    assert login(authenticator, "nobody", secret) is None

    messages = [r.getMessage() for r in caplog.records]
    assert "Failed login for 'stu'" in messages
    assert "Failed login for 'nobody'" in messages
    assert not any(secret in m for m in messages)


def test_empty_form_is_refused(authenticator: ClassroomAuthenticator) -> None:
    assert asyncio.run(authenticator.get_authenticated_user(None, {})) is None


def test_disabled_account_gets_a_readable_403(
    authenticator: ClassroomAuthenticator, store: AccountStore
) -> None:
    store.disable("stu")
    with pytest.raises(web.HTTPError) as refused:
        login(authenticator, "stu", PASSWORD)
    assert refused.value.status_code == 403
    assert refused.value.log_message == DISABLED_MESSAGE
    # the wrong password still gets the generic refusal, not the disabled message
    assert login(authenticator, "stu", "wrong password") is None


def test_account_of_a_school_without_tenant_file_is_refused(
    data_dir: Path, fast_hasher: PasswordHasher
) -> None:
    # A store without the tenant list accepts any well-formed school id.
    AccountStore(data_dir / "accounts.sqlite", hasher=fast_hasher).add(
        "ghost", PASSWORD, tenant="closed_school"
    )
    auth = ClassroomAuthenticator(data_dir=str(data_dir), tenants_dir=str(TENANTS_DIR))
    with pytest.raises(web.HTTPError, match="closed_school"):
        login(auth, "ghost", PASSWORD)
    assert refresh(auth, "ghost") is False
    assert auth.check_allowed("ghost") is False


def test_refresh_keeps_groups_in_sync_with_the_store(
    authenticator: ClassroomAuthenticator, store: AccountStore
) -> None:
    assert refresh(authenticator, "stu") == {
        "name": "stu",
        "groups": ["tenant-school_a", "role-student"],
        "admin": False,
    }
    store.update("stu", tenant="school_b", role="teacher")
    assert refresh(authenticator, "stu")["groups"] == [
        "tenant-school_b",
        "role-teacher",
        "teachers-school_b",
    ]
    store.update("stu", role="admin")
    assert refresh(authenticator, "stu")["admin"] is True


def test_refresh_forces_login_when_account_is_disabled_or_gone(
    authenticator: ClassroomAuthenticator, store: AccountStore
) -> None:
    store.disable("stu")
    assert refresh(authenticator, "stu") is False
    store.enable("stu")
    assert refresh(authenticator, "stu") is not False
    store.delete("stu")
    assert refresh(authenticator, "stu") is False


def test_check_allowed_is_exactly_the_enabled_accounts(
    authenticator: ClassroomAuthenticator, store: AccountStore
) -> None:
    assert authenticator.check_allowed("stu") is True
    assert authenticator.check_allowed("nobody") is False
    store.disable("tina")
    assert authenticator.check_allowed("tina") is False


def test_validate_username_follows_account_rules(authenticator: ClassroomAuthenticator) -> None:
    assert authenticator.validate_username("j.doe-2")
    assert not authenticator.validate_username("Not Valid")
    assert not authenticator.validate_username("9lives")


def test_missing_data_dir_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="data_dir must be set"):
        ClassroomAuthenticator().check_allowed("stu")


def test_repeated_wrong_passwords_lock_the_account_and_the_lock_is_logged(
    authenticator: ClassroomAuthenticator, store: AccountStore, caplog: pytest.LogCaptureFixture
) -> None:
    authenticator.lockout_threshold = 3
    authenticator.lockout_minutes = 15
    caplog.set_level(logging.WARNING)

    assert login(authenticator, "stu", "wrong-guess-1") is None
    assert login(authenticator, "stu", "wrong-guess-2") is None
    with pytest.raises(web.HTTPError) as locked:
        login(authenticator, "stu", "wrong-guess-3")
    assert locked.value.status_code == 403
    assert "locked for 15 more minutes" in locked.value.log_message

    # Even the right password is refused while the lock lasts.
    with pytest.raises(web.HTTPError, match="locked"):
        login(authenticator, "stu", PASSWORD)
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("Account 'stu' locked until") for m in messages)
    assert "Login refused for locked account 'stu'" in messages
    # Other accounts are not affected.
    assert login(authenticator, "tina", PASSWORD) is not None

    store.unlock("stu")
    assert login(authenticator, "stu", PASSWORD) is not None
    assert store.get("stu").locked_until is None


def test_lock_expires_by_itself(authenticator: ClassroomAuthenticator, store: AccountStore) -> None:
    authenticator.lockout_threshold = 2
    for guess in ("wrong-guess-1", "wrong-guess-2"):
        try:
            login(authenticator, "stu", guess)
        except web.HTTPError:
            pass
    assert store.get("stu").locked_until is not None
    # Pretend the lock ran out: set it to the past.
    import sqlite3

    with sqlite3.connect(store.path) as conn:
        conn.execute(
            "UPDATE accounts SET locked_until = '2000-01-01T00:00:00+00:00' WHERE username='stu'"
        )
    assert login(authenticator, "stu", PASSWORD) is not None
    assert store.get("stu").locked_until is None


def test_lockout_zero_turns_it_off(
    authenticator: ClassroomAuthenticator, store: AccountStore
) -> None:
    authenticator.lockout_threshold = 0
    for n in range(7):
        assert login(authenticator, "stu", f"wrong-guess-{n}") is None
    assert login(authenticator, "stu", PASSWORD) is not None


def test_deleting_the_hub_user_disables_the_account(
    authenticator: ClassroomAuthenticator, store: AccountStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    authenticator.delete_user(SimpleNamespace(name="stu"))
    assert store.get("stu").disabled
    assert authenticator.check_allowed("stu") is False
    with pytest.raises(web.HTTPError) as refused:
        login(authenticator, "stu", PASSWORD)
    assert refused.value.log_message == DISABLED_MESSAGE
    assert "Account 'stu' disabled: its hub user was deleted" in caplog.messages
    # A hub-only user (no account) is simply gone.
    authenticator.delete_user(SimpleNamespace(name="hubonly"))
