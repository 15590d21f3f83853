"""ClassroomSpawner: lesson seeding and the lab's environment."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
from jupyterhub.objects import Hub

from hub.spawner import VENV_BIN, ClassroomSpawner, copy_missing

GATEWAY = "http://127.0.0.1:8123/services/gateway"


@pytest.fixture
def lessons(tmp_path: Path) -> Path:
    source = tmp_path / "lessons"
    (source / "images").mkdir(parents=True)
    (source / "01-hello.ipynb").write_text('{"lesson": 1}')
    (source / "images" / "diagram.png").write_bytes(b"png")
    (source / ".ipynb_checkpoints").mkdir()
    (source / ".ipynb_checkpoints" / "01-hello-checkpoint.ipynb").write_text("{}")
    return source


def make_spawner(tmp_path: Path, lessons: Path | None = None, **traits: object) -> ClassroomSpawner:
    user = SimpleNamespace(name="alice", url="/user/alice/", escaped_name="alice", id=1)
    return ClassroomSpawner(
        user=user,
        hub=Hub(),
        home_dir_template=str(tmp_path / "home" / "{username}"),
        lessons_dir=str(lessons or ""),
        gateway_url=GATEWAY,
        api_token="lab-token-123",
        **{"isolated": False, **traits},
    )


def test_copy_missing_copies_new_files_and_keeps_edits(lessons: Path, tmp_path: Path) -> None:
    target = tmp_path / "home" / "lessons"

    first = copy_missing(lessons, target)
    assert sorted(p.relative_to(target).as_posix() for p in first) == [
        "01-hello.ipynb",
        "images/diagram.png",
    ]
    assert not (target / ".ipynb_checkpoints").exists()

    (target / "01-hello.ipynb").write_text('{"edited": true}')
    (lessons / "02-next.ipynb").write_text('{"lesson": 2}')
    second = copy_missing(lessons, target)

    assert [p.name for p in second] == ["02-next.ipynb"]
    assert (target / "01-hello.ipynb").read_text() == '{"edited": true}'
    assert (target / "02-next.ipynb").read_text() == '{"lesson": 2}'


def test_copy_missing_restores_a_deleted_lesson_but_not_a_replaced_folder(
    lessons: Path, tmp_path: Path
) -> None:
    target = tmp_path / "home" / "lessons"
    copy_missing(lessons, target)
    (target / "01-hello.ipynb").unlink()
    (target / "images" / "diagram.png").unlink()
    (target / "images").rmdir()
    (target / "images").write_text("student's own file called images")

    copied = copy_missing(lessons, target)

    assert [p.name for p in copied] == ["01-hello.ipynb"]
    assert (target / "images").read_text() == "student's own file called images"


def test_copy_missing_without_source_does_nothing(tmp_path: Path) -> None:
    assert copy_missing(tmp_path / "absent", tmp_path / "target") == []
    assert not (tmp_path / "target").exists()


def test_pre_spawn_hook_seeds_lessons_into_home(lessons: Path, tmp_path: Path) -> None:
    calls: list[ClassroomSpawner] = []
    spawner = make_spawner(tmp_path, lessons, pre_spawn_hook=calls.append)

    asyncio.run(spawner.run_pre_spawn_hook())

    home = tmp_path / "home" / "alice"
    assert (home / "lessons" / "01-hello.ipynb").read_text() == '{"lesson": 1}'
    assert calls == [spawner]  # a deployment's own hook still runs


def test_lab_environment_points_sdks_at_the_gateway(tmp_path: Path) -> None:
    env = make_spawner(tmp_path).get_env()

    assert env["CLASSROOM_GATEWAY_URL"] == GATEWAY
    assert env["OPENAI_BASE_URL"] == f"{GATEWAY}/v1"
    assert env["ANTHROPIC_BASE_URL"] == f"{GATEWAY}/anthropic"
    assert env["GOOGLE_GEMINI_BASE_URL"] == f"{GATEWAY}/google"
    for name in ("CLASSROOM_API_TOKEN", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY"):
        assert env[name] == "lab-token-123"
    assert env["JUPYTERHUB_API_TOKEN"] == "lab-token-123"
    assert env["PATH"].split(os.pathsep)[0] == VENV_BIN
    assert env["PATH"].split(os.pathsep).count(VENV_BIN) == 1
    assert env["HOME"] == str(tmp_path / "home" / "alice")


def test_trailing_slash_of_gateway_url_is_dropped(tmp_path: Path) -> None:
    spawner = make_spawner(tmp_path)
    spawner.gateway_url = GATEWAY + "/"
    assert spawner.gateway_env()["OPENAI_BASE_URL"] == f"{GATEWAY}/v1"


def test_no_provider_key_of_the_hub_reaches_the_lab(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLASSROOM_MASTER_KEY", "hub-secret")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-real-provider-key")

    env = make_spawner(tmp_path).get_env()

    assert "CLASSROOM_MASTER_KEY" not in env
    assert env["OPENAI_API_KEY"] == "lab-token-123"


def test_defaults_run_the_venv_singleuser_in_lab(tmp_path: Path) -> None:
    spawner = make_spawner(tmp_path)

    # jupyterhub-singleuser of the venv, started through hub.labstart
    assert spawner.cmd == [str(Path(VENV_BIN) / "python"), "-m", "hub.labstart"]
    assert Path(spawner.cmd[0]).is_file()
    assert spawner.default_url == "/lab"
    # Shared-user labs: --allow-root only when the hub (and so the lab) runs as root.
    assert ("--allow-root" in spawner.args) == (os.geteuid() == 0)
    assert "--allow-root" not in make_spawner(tmp_path, isolated=True).args


def test_start_cuts_off_runs_plain_singleuser_with_every_extension(tmp_path: Path) -> None:
    cut = make_spawner(tmp_path)
    plain = make_spawner(tmp_path, start_cuts=False)

    assert plain.cmd == [str(Path(VENV_BIN) / "jupyterhub-singleuser")]
    assert Path(plain.cmd[0]).is_file()
    assert "--ServerApp.jpserver_extensions=jupyter_lsp=False" in cut.get_args()
    assert not any("jpserver_extensions" in a for a in plain.get_args())
    # The save hook is a guarantee, not a start-time cut: it stays either way.
    hook = "--ContentsManager.pre_save_hook=hub.labhooks.refuse_save_in_published"
    assert hook in cut.get_args() and hook in plain.get_args()


def test_a_lab_imports_without_the_hubs_database_and_handlers() -> None:
    """hub.labstart's stand-ins: jupyterhub.singleuser imports, the hub's ORM and handler
    stack do not load, and using a stand-in for anything else says so."""
    code = (
        "import sys\nfrom hub import labstart\nlabstart.prepare()\n"
        "import jupyterhub.singleuser.app, jupyterhub.log, jupyterhub.metrics\n"
        "print(sorted(n for n in ('alembic', 'jupyterhub.handlers', 'jupyterhub.handlers.base',"
        " 'rfc3987_syntax') if sys.modules.get(n) is not None))\n"
        "from jupyterhub import orm\n"
        "try:\n    orm.User\nexcept AttributeError as e:\n    print(e)\n"
    )
    out = subprocess.run([str(Path(VENV_BIN) / "python"), "-c", code], capture_output=True,
                         text=True, check=True, timeout=120).stdout.splitlines()
    assert out[0] == "[]"
    assert "jupyterhub.orm.User is not loaded in a lab" in out[1]
    assert "start_cuts = False" in out[1]


def test_published_link_points_at_the_users_school_and_follows_a_move(tmp_path: Path) -> None:
    spawner = make_spawner(tmp_path, published_root=str(tmp_path / "published"))
    spawner.user.groups = [SimpleNamespace(name="role-student"),
                           SimpleNamespace(name="tenant-school_a")]

    folder = spawner.link_published()

    link = tmp_path / "home" / "alice" / "published"
    assert folder == tmp_path / "published" / "school_a"
    assert link.is_symlink() and link.resolve() == folder.resolve()
    assert oct(folder.stat().st_mode & 0o777) == "0o555"
    spawner.user.groups = [SimpleNamespace(name="tenant-school_b")]
    spawner.link_published()
    assert link.resolve() == (tmp_path / "published" / "school_b").resolve()


def test_published_link_never_replaces_a_real_folder(tmp_path: Path) -> None:
    spawner = make_spawner(tmp_path, published_root=str(tmp_path / "published"))
    spawner.user.groups = [SimpleNamespace(name="tenant-school_a")]
    mine = tmp_path / "home" / "alice" / "published"
    mine.mkdir(parents=True)
    (mine / "my-notes.txt").write_text("mine")
    assert spawner.link_published() is None
    assert (mine / "my-notes.txt").read_text() == "mine"


def test_lab_refuses_saves_into_published() -> None:
    from tornado import web

    from hub.labhooks import refuse_save_in_published

    with pytest.raises(web.HTTPError) as refused:
        refuse_save_in_published(model={}, path="published/pulse.ipynb")
    assert refused.value.status_code == 403
    refuse_save_in_published(model={}, path="lessons/published.ipynb")
    refuse_save_in_published(model={}, path="my-published/x.ipynb")


def test_lab_args_install_the_save_hook(tmp_path: Path) -> None:
    args = make_spawner(tmp_path).get_args()
    assert "--ContentsManager.pre_save_hook=hub.labhooks.refuse_save_in_published" in args
