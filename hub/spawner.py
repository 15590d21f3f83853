"""The lab spawner: a local JupyterLab per user, wired to the gateway.

When the hub runs as root (the normal case for a school server), every lab
runs as its own OS user (:mod:`hub.users`: ``cls-<name>``, created at the first
spawn) in its home ``<data dir>/home/<name>``, mode 0700 and owned by that
user. Without root, labs share the hub's OS user
(:class:`~jupyterhub.spawner.SimpleLocalProcessSpawner`) and are not isolated:
``classroom run`` and the hub's home page say so.

Before each start the lesson notebooks are copied into ``<home>/lessons/``
(never over a copy the student has edited) and ``~/published`` is linked to
the school's folder of published dashboards (``<data dir>/published/<tenant>``)
by :mod:`hub.homes`, run as the student's own user when labs are isolated. The
lab's environment points every official AI SDK at the gateway with the lab's
own hub token as API key, so no provider key ever reaches a kernel.

The published folder is read-only for labs: with isolation it is
``root:clsg-<tenant>`` mode 2750 (the school's users read it, only the gateway,
running as root, writes it, on a teacher's request); without isolation its
mode is 0555, and in both cases the lab's contents manager refuses saves into
it (:mod:`hub.labhooks`).
"""

from __future__ import annotations

import asyncio
import grp
import inspect
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jupyterhub.spawner import SimpleLocalProcessSpawner
from traitlets import Bool, default

from . import homes
from .config import VENV_BIN
from .homes import copy_missing
from .labs import ClassroomLab
from .users import LabAccount, SystemUserError, ensure_lab_account, school_group, system_username

__all__ = ["ClassroomSpawner", "copy_missing"]

HOMES_MODE = 0o711  # <data dir>/home: labs pass through to their own home, list nothing
HOME_MODE = 0o700
PUBLISHED_MODE = 0o2750  # root:clsg-<tenant>; new files keep the school's group


def chown_tree(top: Path, uid: int, gid: int) -> int:
    """Give ``top`` and everything below it to ``uid:gid`` without following links."""
    count = 0
    for root, dirs, files in os.walk(top, followlinks=False):
        for name in [*dirs, *files]:
            os.chown(os.path.join(root, name), uid, gid, follow_symlinks=False)
            count += 1
    os.chown(top, uid, gid, follow_symlinks=False)
    return count + 1


def is_lab_process(pid: int) -> bool:
    """Whether ``pid`` is a live single-user server (not a zombie, not a reused PID)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            if stat.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                return False
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return b"jupyterhub-singleuser" in cmdline.read()
    except (OSError, IndexError):
        return False


class ClassroomSpawner(ClassroomLab, SimpleLocalProcessSpawner):
    """A local lab with lessons seeded and the gateway in its environment.

    The classroom's options (``gateway_url``, ``lessons_dir``, ``role_notebooks``,
    ``published_root``)
    and the lab's environment come from :class:`hub.labs.ClassroomLab`, shared
    with the Kubernetes spawner."""

    isolated = Bool(
        config=True,
        help="""
        Run each lab as its own OS user (see `hub.users` for the names).

        Default: True when the hub runs as root, which it needs to switch users.
        The user is created at the first spawn; its home (`home_dir`) is made
        mode 0700 and given to it, also when an earlier run left it to root.
        False: labs run as the hub's own OS user and can read everything it can.
        """,
    )

    @default("isolated")
    def _default_isolated(self) -> bool:
        return os.geteuid() == 0

    @default("cmd")
    def _default_cmd(self) -> list[str]:
        # The venv's own entry point, whatever PATH the hub was started with.
        return [str(Path(VENV_BIN) / "jupyterhub-singleuser")]

    @default("args")
    def _default_args(self) -> list[str]:
        # Only a lab that really runs as root needs (and gets) --allow-root.
        return ["--allow-root"] if os.geteuid() == 0 and not self.isolated else []

    @default("default_url")
    def _default_default_url(self) -> str:
        return "/lab"

    _account: LabAccount | None = None

    @property
    def system_username(self) -> str:
        """The OS user the lab runs as."""
        return system_username(self.user.name) if self.isolated else self.user.name

    # -- shared-user labs: prepared in the hub's process -------------------------

    def seed_lessons(self) -> list[Path]:
        """Copy new lesson files into the user's home; return what was copied."""
        if not self.lessons_dir:
            return []
        home = Path(self.home_dir)
        home.mkdir(mode=HOME_MODE, parents=True, exist_ok=True)
        copied, warnings = homes.seed_lessons(Path(self.lessons_dir), home)
        for folder in self.role_folders():
            more, problems = homes.seed_folder(folder, home)
            copied, warnings = copied + more, warnings + problems
        self._report(copied, warnings)
        return copied

    def link_published(self) -> Path | None:
        """Point ``~/published`` at the school's folder; return the folder linked."""
        folder = self.school_folder()
        if folder is None:
            return None
        if not folder.exists():
            folder.mkdir(parents=True, exist_ok=True)
            folder.chmod(0o555)
        home = Path(self.home_dir)
        home.mkdir(mode=HOME_MODE, parents=True, exist_ok=True)
        linked, warnings = homes.link_published(home, folder)
        copied, problems = homes.seed_school_lessons(folder, home)  # teachers' own lessons
        self._report(copied, warnings + problems)
        return folder if linked else None

    def _report(self, copied: list[Any], warnings: list[str]) -> None:
        for warning in warnings:
            self.log.warning("%s: %s", self.user.name, warning)
        if copied:
            self.log.info("Copied %d lesson file(s) for %s", len(copied), self.user.name)

    # -- isolated labs: root makes the account and the home, the user fills it ---

    def prepare_account(self) -> LabAccount:
        """Create or check the lab's OS user, its home and its school's folder (as root)."""
        tenant = self.user_tenant()
        home = Path(self.home_dir)
        account = ensure_lab_account(self.user.name, home, tenant)
        if not home.parent.exists():
            home.parent.mkdir(parents=True, exist_ok=True)
            home.parent.chmod(HOMES_MODE)
        if home.is_symlink():
            raise SystemUserError(f"{home} is a symbolic link; refusing to use it as a home")
        try:
            home.mkdir(mode=HOME_MODE)
            os.chown(home, account.uid, account.gid)
        except FileExistsError:
            if home.lstat().st_uid != account.uid:
                count = chown_tree(home, account.uid, account.gid)  # a home of an earlier run
                self.log.info("Gave %s (%d entries) to %s", home, count, account.name)
        home.chmod(HOME_MODE)
        folder = self.school_folder()
        if folder is not None and tenant is not None:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            gid = grp.getgrnam(school_group(tenant)).gr_gid
            os.chown(folder, 0, gid, follow_symlinks=False)
            folder.chmod(PUBLISHED_MODE)
            lessons = folder / homes.LESSONS  # teachers' own lessons: the school reads them too
            if lessons.is_dir() and not lessons.is_symlink():
                os.chown(lessons, 0, gid, follow_symlinks=False)
                lessons.chmod(PUBLISHED_MODE)
        self._account = account
        return account

    def fill_home_as_user(self, account: LabAccount) -> None:
        """Seed lessons and link ``~/published`` with the user's own rights (``hub.homes``)."""
        home = Path(self.home_dir)
        command = self.home_command(str(home))
        result = subprocess.run(
            command, cwd=home, user=account.uid, group=account.gid,
            extra_groups=list(account.groups), capture_output=True, text=True, timeout=120,
            env={"PATH": os.defpath, "HOME": str(home), "LANG": "C.UTF-8"}, check=False,
        )
        if result.returncode != 0:
            self.log.error(
                "Preparing the home of %s failed: %s", self.user.name, result.stderr.strip()[-2000:]
            )
            return
        report = json.loads(result.stdout)
        self._report(report.get("copied", []), report.get("warnings", []))

    def prepare_lab(self) -> None:
        """Everything the lab needs on disk before it starts."""
        if self.isolated:
            self.fill_home_as_user(self.prepare_account())
        else:
            self.seed_lessons()
            self.link_published()

    async def run_pre_spawn_hook(self) -> None:
        # useradd, chown and the seeding subprocess must not block the hub's loop.
        await asyncio.to_thread(self.prepare_lab)
        result = super().run_pre_spawn_hook()
        if inspect.isawaitable(result):
            await result

    def make_preexec_fn(self, name: str) -> Callable[[], None]:
        if not self.isolated:
            return super().make_preexec_fn(name)
        account = self._account or self.prepare_account()
        home = self.home_dir

        def preexec() -> None:
            # Not jupyterhub's set_user_setuid: it starts in the passwd home,
            # which another classroom on this machine may have set.
            os.setgid(account.gid)
            os.setgroups(list(account.groups))
            os.setuid(account.uid)
            os.chdir(home)

        return preexec

    def user_env(self, env: dict[str, str]) -> dict[str, str]:
        env["USER"] = env["LOGNAME"] = self.system_username
        env["HOME"] = self.home_dir
        env["SHELL"] = "/bin/bash"
        return env

    async def poll(self) -> int | None:
        # After a hub restart only the PID is known; it may have been reused.
        if self.proc is None and self.pid and not is_lab_process(self.pid):
            self.clear_state()
            return 0
        return await super().poll()

    def get_args(self) -> list[str]:
        return [
            *super().get_args(),
            "--ContentsManager.pre_save_hook=hub.labhooks.refuse_save_in_published",
        ]

    def get_env(self) -> dict[str, str]:
        env = super().get_env()
        path = [p for p in env.get("PATH", os.defpath).split(os.pathsep) if p and p != VENV_BIN]
        env["PATH"] = os.pathsep.join([VENV_BIN, *path])
        env.update(self.gateway_env())
        return env
