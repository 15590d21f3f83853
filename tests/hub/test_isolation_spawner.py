"""ClassroomSpawner with isolated labs: a real OS user, its home, its school's folder.

Runs as root only (it creates a system user and group, removed afterwards).
"""

from __future__ import annotations

import asyncio
import grp
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from jupyterhub.objects import Hub

from hub.config import open_path_to
from hub.spawner import ClassroomSpawner
from hub.users import school_group, system_username

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="creates OS users")

TENANT = "t_iso_sp"


@pytest.fixture
def hub_name() -> Iterator[str]:
    name = f"t{os.getpid()}sp"
    yield name
    subprocess.run(["userdel", system_username(name)], capture_output=True, check=False)
    subprocess.run(["groupdel", school_group(TENANT)], capture_output=True, check=False)


@pytest.fixture
def top() -> Iterator[Path]:
    # Not pytest's tmp_path: any pytest starting on the machine makes it private again,
    # and the student's own process must reach its home and the lessons.
    top = Path(tempfile.mkdtemp(prefix="classroom-spawner-"))
    try:
        yield top
    finally:
        shutil.rmtree(top, ignore_errors=True)


@pytest.fixture
def data(top: Path) -> Path:
    data = top / "data"
    data.mkdir()
    assert open_path_to(data) == [top]
    data.chmod(0o711)
    return data


@pytest.fixture
def lessons(top: Path) -> Path:
    source = top / "lessons-src"
    (source / "images").mkdir(parents=True)
    (source / "01-hello.ipynb").write_text('{"lesson": 1}')
    (source / "images" / "diagram.png").write_bytes(b"png")
    source.chmod(0o755)
    return source


def make(data: Path, hub_name: str, lessons: Path) -> ClassroomSpawner:
    user = SimpleNamespace(name=hub_name, url=f"/user/{hub_name}/", escaped_name=hub_name, id=1,
                           groups=[SimpleNamespace(name=f"tenant-{TENANT}")])
    return ClassroomSpawner(
        user=user, hub=Hub(), isolated=True, api_token="lab-token",
        home_dir_template=str(data / "home" / "{username}"),
        lessons_dir=str(lessons), published_root=str(data / "published"),
        gateway_url="http://127.0.0.1:1/services/gateway",
    )


def test_first_spawn_makes_the_user_its_private_home_and_the_school_folder(
    data: Path, hub_name: str, lessons: Path
) -> None:
    spawner = make(data, hub_name, lessons)
    asyncio.run(spawner.run_pre_spawn_hook())

    account = spawner._account
    assert account is not None and account.name == system_username(hub_name)
    home = data / "home" / hub_name
    assert (home.stat().st_uid, stat.S_IMODE(home.stat().st_mode)) == (account.uid, 0o700)
    assert stat.S_IMODE((data / "home").stat().st_mode) == 0o711
    for copied in (home / "lessons" / "01-hello.ipynb", home / "lessons" / "images"):
        assert copied.stat().st_uid == account.uid  # written by the student's own process
    folder = data / "published" / TENANT
    assert (home / "published").resolve() == folder.resolve()
    info = folder.stat()
    assert (info.st_uid, grp.getgrgid(info.st_gid).gr_name) == (0, school_group(TENANT))
    assert stat.S_IMODE(info.st_mode) == 0o2750

    env = spawner.get_env()
    assert env["USER"] == account.name and env["HOME"] == str(home)
    assert "--allow-root" not in spawner.get_args()


def test_the_lab_process_switches_to_the_user_in_its_home(
    data: Path, hub_name: str, lessons: Path
) -> None:
    spawner = make(data, hub_name, lessons)
    asyncio.run(spawner.run_pre_spawn_hook())
    account = spawner._account
    assert account is not None

    out = subprocess.run(
        ["/bin/sh", "-c", "id -u; id -G; pwd"], preexec_fn=spawner.make_preexec_fn(hub_name),
        capture_output=True, text=True, check=True,
    ).stdout.split("\n")
    assert int(out[0]) == account.uid
    assert sorted(map(int, out[1].split())) == sorted(set(account.groups))
    assert 0 not in map(int, out[1].split())
    assert out[2] == str(data / "home" / hub_name)


def test_a_home_left_to_root_by_an_earlier_run_is_given_to_the_user(
    data: Path, hub_name: str, lessons: Path, tmp_path: Path
) -> None:
    home = data / "home" / hub_name
    (home / "work" / "deep").mkdir(parents=True)
    (home / "work" / "deep" / "notes.txt").write_text("mine")
    outside = tmp_path / "outside.txt"
    outside.write_text("root's")
    (home / "link").symlink_to(outside)

    spawner = make(data, hub_name, lessons)
    asyncio.run(spawner.run_pre_spawn_hook())
    uid = spawner._account.uid  # type: ignore[union-attr]

    for path in (home, home / "work", home / "work" / "deep", home / "work" / "deep" / "notes.txt"):
        assert path.stat().st_uid == uid, path
    assert (home / "link").lstat().st_uid == uid
    assert outside.stat().st_uid == 0  # links are not followed


def test_links_planted_in_the_home_never_make_root_write_elsewhere(
    data: Path, hub_name: str, lessons: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o777)  # even a folder the student could write to
    elsewhere.chmod(0o777)
    spawner = make(data, hub_name, lessons)
    asyncio.run(spawner.run_pre_spawn_hook())
    home = data / "home" / hub_name
    subprocess.run(["rm", "-rf", str(home / "lessons")], check=True)
    (home / "lessons").symlink_to(elsewhere)

    asyncio.run(spawner.run_pre_spawn_hook())

    assert list(elsewhere.iterdir()) == []


def test_a_stale_pid_after_a_hub_restart_is_not_a_running_lab(
    data: Path, hub_name: str, lessons: Path
) -> None:
    spawner = make(data, hub_name, lessons)
    spawner.pid = os.getpid()  # alive, but pytest, not jupyterhub-singleuser
    assert asyncio.run(spawner.poll()) == 0
    assert spawner.pid == 0


def test_a_class_lesson_is_handed_to_the_classs_members_only(
    data: Path, hub_name: str, lessons: Path
) -> None:
    from gateway.published import publish

    lesson = '{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": []}'
    publish(data, TENANT, "for_7b.ipynb", lesson, "lessons", "7b")
    classes = data / "published" / TENANT / "classes"
    spawner = make(data, hub_name, lessons)
    assert spawner.class_lessons() == {}  # not a member
    spawner.user.groups.append(SimpleNamespace(name=f"class-{TENANT}-7b"))
    asyncio.run(spawner.run_pre_spawn_hook())

    account = spawner._account
    assert account is not None
    copied = data / "home" / hub_name / "lessons" / "for_7b.ipynb"
    assert copied.read_text() == lesson and copied.stat().st_uid == account.uid
    # The class folder itself stays closed to the lab's user (and so to every student).
    peek = subprocess.run(["ls", str(classes)], user=account.uid, group=account.gid,
                          extra_groups=list(account.groups), capture_output=True, check=False)
    assert peek.returncode != 0 and stat.S_IMODE(classes.stat().st_mode) == 0o700
