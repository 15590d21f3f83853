"""Each role's notebooks in its own lab: teachers get ``~/dashboards``, admins ``~/admin``
and ``~/dashboards``, students neither; copied like the lessons, never over an edit.
Shared-user labs seed in the hub's process; isolated labs run ``python -m hub.homes``."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from jupyterhub.objects import Hub
from traitlets.config import Config

from hub.config import configure
from hub.homes import ROLE_FOLDERS
from hub.spawner import ClassroomSpawner
from tests.support.procs import REPO


@pytest.fixture
def notebooks(tmp_path: Path) -> Path:
    top = tmp_path / "notebooks"
    for folder, name in [("lessons", "01.ipynb"), ("dashboards", "class_activity.ipynb"),
                         ("admin", "usage_review.ipynb")]:
        (top / folder).mkdir(parents=True)
        (top / folder / name).write_text(json.dumps({"from": folder}))
    return top


def spawner_for(tmp_path: Path, notebooks: Path, name: str, role: str | None,
                admin: bool = False) -> ClassroomSpawner:
    groups = [SimpleNamespace(name="tenant-school_a")]
    if role:
        groups.append(SimpleNamespace(name=f"role-{role}"))
    user = SimpleNamespace(name=name, url=f"/user/{name}/", escaped_name=name, id=1,
                           groups=groups, admin=admin)
    return ClassroomSpawner(
        user=user, hub=Hub(), isolated=False,
        home_dir_template=str(tmp_path / "home" / "{username}"),
        lessons_dir=str(notebooks / "lessons"),
        role_notebooks={role: [str(notebooks / f) for f in folders]
                        for role, folders in ROLE_FOLDERS.items()},
    )


async def seed(spawner: ClassroomSpawner) -> None:
    """The home prepared before a start; then the start queue's place given back, as when
    the lab answers (otherwise a third spawner would wait for a free place for ever)."""
    await spawner.run_pre_spawn_hook()
    spawner._leave_queue(ok=True)


def folders_in(home: Path) -> set[str]:
    return {p.name for p in home.iterdir() if p.is_dir()}


def test_each_role_finds_its_own_folders_and_students_neither(
    tmp_path: Path, notebooks: Path
) -> None:
    for name, role, admin in [("stu", "student", False), ("tea", "teacher", False),
                              ("adm", "admin", False), ("root-admin", None, True)]:
        asyncio.run(seed(spawner_for(tmp_path, notebooks, name, role, admin)))
    home = tmp_path / "home"
    assert folders_in(home / "stu") == {"lessons"}
    assert folders_in(home / "tea") == {"lessons", "dashboards"}
    assert folders_in(home / "adm") == {"lessons", "dashboards", "admin"}
    assert folders_in(home / "root-admin") == {"lessons", "dashboards", "admin"}
    assert json.loads((home / "adm" / "admin" / "usage_review.ipynb").read_text()) == {
        "from": "admin"}


def test_an_edited_dashboard_is_kept_and_a_new_one_arrives(tmp_path: Path, notebooks: Path) -> None:
    spawner = spawner_for(tmp_path, notebooks, "tea", "teacher")
    asyncio.run(seed(spawner))
    mine = tmp_path / "home" / "tea" / "dashboards" / "class_activity.ipynb"
    mine.write_text('{"edited": true}')
    (notebooks / "dashboards" / "new_view.ipynb").write_text("{}")

    asyncio.run(seed(spawner))

    assert mine.read_text() == '{"edited": true}'
    assert (mine.parent / "new_view.ipynb").is_file()


def test_isolated_labs_get_the_same_through_the_homes_command(
    tmp_path: Path, notebooks: Path
) -> None:
    home = tmp_path / "home" / "tea"
    home.mkdir(parents=True)
    (home / "dashboards").symlink_to(tmp_path)  # a link the user planted is never followed
    result = subprocess.run(
        [sys.executable, "-I", "-m", "hub.homes", "--home", str(home),
         "--lessons", str(notebooks / "lessons"),
         "--folder", str(notebooks / "dashboards"), "--folder", str(notebooks / "admin")],
        capture_output=True, text=True, check=True, cwd=REPO,
    )
    report = json.loads(result.stdout)
    assert sorted(Path(p).relative_to(home).as_posix() for p in report["copied"]) == [
        "admin/usage_review.ipynb", "lessons/01.ipynb"]
    assert report["warnings"] == [
        f"not copying dashboards: {home / 'dashboards'} is not a directory"]
    assert not (tmp_path / "class_activity.ipynb").exists()


def test_the_hub_config_gives_the_repositorys_folders(data_dir: Path) -> None:
    c = Config()
    configure(c, {"CLASSROOM_DATA_DIR": str(data_dir)})
    folders = c.ClassroomSpawner.role_notebooks
    assert folders == {
        "teacher": [str(REPO / "notebooks" / "dashboards")],
        "admin": [str(REPO / "notebooks" / "admin"), str(REPO / "notebooks" / "dashboards")],
    }
    assert all(Path(f).is_dir() for paths in folders.values() for f in paths)


def test_lessons_a_teacher_published_arrive_at_the_next_lab_start(
    tmp_path: Path, notebooks: Path
) -> None:
    published = tmp_path / "published"
    (published / "school_a" / "lessons").mkdir(parents=True)
    (published / "school_a" / "lessons" / "prompt_patterns.ipynb").write_text('{"v": 1}')
    spawner = spawner_for(tmp_path, notebooks, "stu", "student")
    spawner.published_root = str(published)

    asyncio.run(seed(spawner))

    lessons = tmp_path / "home" / "stu" / "lessons"
    assert sorted(p.name for p in lessons.iterdir()) == ["01.ipynb", "prompt_patterns.ipynb"]
    assert (tmp_path / "home" / "stu" / "published").resolve() == published / "school_a"
