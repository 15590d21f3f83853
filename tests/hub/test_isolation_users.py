"""hub.users: the documented mapping from hub names to system names, and real OS accounts."""

from __future__ import annotations

import grp
import os
import pwd
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.users import (
    SystemUserError,
    ensure_lab_account,
    ensure_user,
    school_group,
    system_username,
)

SYSTEM_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="creates OS users")


@pytest.mark.parametrize(
    ("hub_name", "expected"),
    [
        ("ann", "cls-ann"),
        ("stu1", "cls-stu1"),
        ("a_b-c", "cls-a_b-c"),
        ("x" * 28, "cls-" + "x" * 28),  # exactly 32
    ],
)
def test_plain_names_are_prefixed(hub_name: str, expected: str) -> None:
    assert system_username(hub_name) == expected


@pytest.mark.parametrize("hub_name", ["ann.lee", "x" * 29, "a" * 64, "Ann", "b.", "z..9"])
def test_other_names_get_a_hash_and_stay_valid(hub_name: str) -> None:
    name = system_username(hub_name)
    assert SYSTEM_NAME.fullmatch(name), name
    assert name.startswith("cls_") and len(name) <= 32
    assert re.search(r"_[0-9a-f]{10}$", name)
    assert system_username(hub_name) == name  # stable


def test_names_never_collide() -> None:
    hub_names = ["a.b", "a_b", "a-b", "ab", "x" * 28, "x" * 29, "x" * 30, "x" * 29 + "y",
                 "school_a", "clsg-a", "g-school_a", "s_a", "a" * 64, "a" * 63 + "b"]
    users = [system_username(n) for n in hub_names]
    schools = [school_group(t) for t in ["school_a", "s_a", "a_b", "x" * 40, "x" * 39 + "y"]]
    assert len(set(users)) == len(users)
    assert len(set(schools)) == len(schools)
    assert not set(users) & set(schools)
    for name in users + schools:
        assert SYSTEM_NAME.fullmatch(name) and len(name) <= 32, name


def test_school_groups() -> None:
    assert school_group("school_a") == "clsg-school_a"
    long = school_group("s" * 40)
    assert long.startswith("clsg_") and len(long) <= 32


def _delete(name: str) -> None:
    subprocess.run(["userdel", name], capture_output=True, check=False)
    subprocess.run(["groupdel", name], capture_output=True, check=False)


@pytest.fixture
def made() -> Iterator[list[str]]:
    """Names of system users and groups a test made; removed afterwards."""
    names: list[str] = []
    yield names
    for name in names:
        _delete(name)


@root_only
def test_a_lab_account_is_a_locked_user_with_its_school_group(
    tmp_path: Path, made: list[str]
) -> None:
    hub_name = f"t{os.getpid()}.iso"
    made += [system_username(hub_name), school_group("t_iso_one"), school_group("t_iso_two")]
    account = ensure_lab_account(hub_name, tmp_path / "home", "t_iso_one")

    entry = pwd.getpwnam(account.name)
    assert account.name == system_username(hub_name)
    assert (entry.pw_uid, entry.pw_gid) == (account.uid, account.gid)
    assert account.uid >= 1000 and account.gid != 0
    assert entry.pw_shell == "/usr/sbin/nologin"
    assert entry.pw_gecos == f"AI Classroom lab of {hub_name}"
    assert grp.getgrgid(account.gid).gr_name == account.name  # a private group
    assert grp.getgrnam("clsg-t_iso_one").gr_gid in account.groups
    shadow = subprocess.run(["passwd", "-S", account.name], capture_output=True, text=True)
    assert shadow.stdout.split()[1] == "L"  # no password: nobody signs in as it

    # Same name again: the same account. A move of school swaps the group.
    moved = ensure_lab_account(hub_name, tmp_path / "home", "t_iso_two")
    assert moved.uid == account.uid
    assert grp.getgrnam("clsg-t_iso_two").gr_gid in moved.groups
    assert grp.getgrnam("clsg-t_iso_one").gr_gid not in moved.groups


@root_only
def test_a_system_user_that_is_not_ours_is_never_taken_over(
    tmp_path: Path, made: list[str]
) -> None:
    hub_name = f"t{os.getpid()}_foreign"
    name = system_username(hub_name)
    made.append(name)
    subprocess.run(["useradd", "--no-create-home", "--user-group", name], check=True)

    with pytest.raises(SystemUserError, match="not the classroom's account"):
        ensure_user(hub_name, tmp_path)
