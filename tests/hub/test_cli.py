"""``classroom accounts`` (as a real subprocess) and the bootstrap admin of ``classroom run``."""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from hub.accounts import AccountStore
from hub.cli import ensure_admin, generate_password
from tests.support.procs import VENV_BIN

from .conftest import TENANTS_DIR

GENERATED = re.compile(r"^Generated password: (\S+)$", re.MULTILINE)


def classroom(data_dir: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "CLASSROOM_DATA_DIR": str(data_dir),
        "CLASSROOM_TENANTS_DIR": str(TENANTS_DIR),
        "COLUMNS": "120",
    }
    return subprocess.run(
        [str(VENV_BIN / "classroom"), *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def accounts(data_dir: Path) -> AccountStore:
    return AccountStore(data_dir / "accounts.sqlite")


def test_add_prints_a_generated_password_that_verifies(data_dir: Path) -> None:
    result = classroom(
        data_dir,
        "accounts",
        "add",
        "--tenant",
        "school_a",
        "--role",
        "teacher",
        "--display-name",
        "Tina Teacher",
        "tina",
    )

    assert result.returncode == 0, result.stderr
    match = GENERATED.search(result.stdout)
    assert match, result.stdout
    password = match.group(1)
    assert len(password) >= 14
    account = accounts(data_dir).verify("tina", password)
    assert account is not None
    assert (account.tenant, account.role, account.display_name) == (
        "school_a",
        "teacher",
        "Tina Teacher",
    )


def test_add_with_given_password_prints_no_password(data_dir: Path) -> None:
    result = classroom(data_dir, "accounts", "add", "--password", "chosen-secret", "stu")
    assert result.returncode == 0, result.stderr
    assert "chosen-secret" not in result.stdout
    assert GENERATED.search(result.stdout) is None
    assert accounts(data_dir).verify("stu", "chosen-secret").tenant == "default"


def test_errors_are_one_line_without_traceback(data_dir: Path) -> None:
    classroom(data_dir, "accounts", "add", "--password", "chosen-secret", "stu")

    duplicate = classroom(data_dir, "accounts", "add", "--password", "other-secret", "stu")
    bad_tenant = classroom(data_dir, "accounts", "add", "--tenant", "ghost", "bob")
    bad_name = classroom(data_dir, "accounts", "add", "Bob Smith")
    short = classroom(data_dir, "accounts", "reset-password", "--password", "short", "stu")
    missing = classroom(data_dir, "accounts", "disable", "nobody")

    assert (duplicate.returncode, bad_tenant.returncode, bad_name.returncode) == (1, 1, 1)
    assert (short.returncode, missing.returncode) == (1, 1)
    assert "already exists" in duplicate.stderr
    assert "no school 'ghost'" in bad_tenant.stderr
    assert "not valid" in bad_name.stderr
    assert "at least 8 characters" in short.stderr
    assert "no account 'nobody'" in missing.stderr
    for result in (duplicate, bad_tenant, bad_name, short, missing):
        assert "Traceback" not in result.stderr
        assert result.stderr.count("\n") == 1


def test_usage_errors_exit_2(data_dir: Path) -> None:
    no_name = classroom(data_dir, "accounts", "add")
    bad_role = classroom(data_dir, "accounts", "add", "--role", "principal", "bob")
    no_command = classroom(data_dir, "accounts")
    assert (no_name.returncode, bad_role.returncode, no_command.returncode) == (2, 2, 2)
    assert "invalid choice: 'principal'" in bad_role.stderr
    assert "Traceback" not in no_name.stderr + bad_role.stderr + no_command.stderr


def test_list_shows_a_filtered_table(data_dir: Path) -> None:
    classroom(
        data_dir, "accounts", "add", "--password", "password-1", "--tenant", "school_a", "ann"
    )
    classroom(
        data_dir, "accounts", "add", "--password", "password-2", "--tenant", "school_b", "ben"
    )
    classroom(data_dir, "accounts", "disable", "ben")

    everyone = classroom(data_dir, "accounts", "list")
    school_a = classroom(data_dir, "accounts", "list", "--tenant", "school_a")
    teachers = classroom(data_dir, "accounts", "list", "--role", "teacher")

    assert everyone.returncode == 0, everyone.stderr
    rows = {line.split()[0]: line.split() for line in everyone.stdout.splitlines()[1:]}
    assert rows["ann"][1:4] == ["school_a", "student", "active"]
    assert rows["ben"][1:4] == ["school_b", "student", "disabled"]
    assert "ann" in school_a.stdout and "ben" not in school_a.stdout
    assert teachers.stdout.strip() == "No accounts."


def test_disable_enable_reset_delete(data_dir: Path) -> None:
    classroom(data_dir, "accounts", "add", "--password", "first-secret", "stu")

    assert classroom(data_dir, "accounts", "disable", "stu").returncode == 0
    assert accounts(data_dir).verify("stu", "first-secret") is None
    assert classroom(data_dir, "accounts", "enable", "stu").returncode == 0
    assert accounts(data_dir).verify("stu", "first-secret") is not None

    reset = classroom(data_dir, "accounts", "reset-password", "stu")
    new_password = GENERATED.search(reset.stdout).group(1)
    assert accounts(data_dir).verify("stu", "first-secret") is None
    assert accounts(data_dir).verify("stu", new_password) is not None

    piped = classroom(
        data_dir, "accounts", "reset-password", "--password-stdin", "stu", stdin="from-stdin-1\n"
    )
    assert piped.returncode == 0, piped.stderr
    assert accounts(data_dir).verify("stu", "from-stdin-1") is not None

    assert classroom(data_dir, "accounts", "delete", "stu").returncode == 0
    assert accounts(data_dir).get("stu") is None


def test_run_refuses_a_bad_tenant_dir_without_starting(data_dir: Path, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "CLASSROOM_DATA_DIR": str(data_dir),
        "CLASSROOM_TENANTS_DIR": str(tmp_path / "nowhere"),
    }
    result = subprocess.run(
        [str(VENV_BIN / "classroom"), "run"], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert "tenants directory does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_generated_passwords_are_long_and_different() -> None:
    passwords = {generate_password() for _ in range(50)}
    assert len(passwords) == 50
    assert all(len(p) >= 14 for p in passwords)


@pytest.fixture
def admin_store(data_dir: Path, fast_hasher: PasswordHasher) -> AccountStore:
    return AccountStore(data_dir / "accounts.sqlite", tenants={"default"}, hasher=fast_hasher)


def test_bootstrap_admin_password_is_generated_once_and_reused(
    admin_store: AccountStore, data_dir: Path
) -> None:
    credentials = data_dir / "admin_credentials.txt"

    account, note = ensure_admin(admin_store, "admin", None, credentials)
    password = note.split()[0]
    again, note_again = ensure_admin(admin_store, "admin", None, credentials)

    assert (account.role, account.tenant) == ("admin", "default")
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    assert f"password: {password}" in credentials.read_text()
    assert note_again.split()[0] == password
    assert again.created_at == account.created_at
    assert admin_store.verify("admin", password) is not None


def test_bootstrap_admin_takes_the_environment_password(
    admin_store: AccountStore, data_dir: Path
) -> None:
    credentials = data_dir / "admin_credentials.txt"
    ensure_admin(admin_store, "admin", None, credentials)

    _, note = ensure_admin(admin_store, "admin", "from-the-environment", credentials)

    assert "from CLASSROOM_ADMIN_PASSWORD" in note
    assert admin_store.verify("admin", "from-the-environment") is not None
    hash_before = admin_store.get("admin").password_hash
    ensure_admin(admin_store, "admin", "from-the-environment", credentials)
    assert admin_store.get("admin").password_hash == hash_before  # unchanged: not rehashed


def test_bootstrap_admin_changed_by_hand_is_left_alone(
    admin_store: AccountStore, data_dir: Path
) -> None:
    credentials = data_dir / "admin_credentials.txt"
    ensure_admin(admin_store, "admin", None, credentials)
    admin_store.set_password("admin", "changed-by-hand")

    _, note = ensure_admin(admin_store, "admin", None, credentials)

    assert "reset-password admin" in note
    assert admin_store.verify("admin", "changed-by-hand") is not None
