"""The lab spawner: a local JupyterLab per user, wired to the gateway.

For now every lab is a local process of the hub's own OS user
(:class:`~jupyterhub.spawner.SimpleLocalProcessSpawner`), with its home under
the data directory. Before each start the lesson notebooks are copied into
``<home>/lessons/`` (never over a copy the student has edited), and the lab's
environment points every official AI SDK at the gateway with the lab's own
hub token as API key, so no provider key ever reaches a kernel.

``~/published`` is a link to the school's folder of published dashboards
(``<data dir>/published/<tenant>``), read-only: the folder and its files are
not writable on disk and the lab's contents manager refuses saves into it
(:mod:`hub.labhooks`). Real OS-level isolation comes with per-user accounts.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from jupyterhub.spawner import SimpleLocalProcessSpawner
from traitlets import Unicode, default

from .config import VENV_BIN


def copy_missing(source: Path, target: Path) -> list[Path]:
    """Copy files of ``source`` that ``target`` lacks; return what was copied.

    Existing files are never touched, so a student's edits survive and new
    lessons still arrive. Hidden entries, caches and symlinks are skipped.
    """
    copied: list[Path] = []
    if not source.is_dir():
        return copied
    target.mkdir(parents=True, exist_ok=True)
    for entry in sorted(source.iterdir()):
        if entry.name.startswith(".") or entry.name == "__pycache__" or entry.is_symlink():
            continue
        destination = target / entry.name
        if entry.is_dir():
            if destination.exists() and not destination.is_dir():
                continue
            copied.extend(copy_missing(entry, destination))
        elif entry.is_file() and not destination.exists() and not destination.is_symlink():
            shutil.copy2(entry, destination)
            copied.append(destination)
    return copied


class ClassroomSpawner(SimpleLocalProcessSpawner):
    """A local lab with lessons seeded and the gateway in its environment."""

    gateway_url = Unicode(
        "",
        config=True,
        help="""
        Base URL of the gateway as the lab reaches it, without a trailing slash.

        Default (set by `hub.config.configure`): through the hub's proxy,
        `http://127.0.0.1:<CLASSROOM_PORT>/services/gateway`. A deployment may
        point labs at an internal URL instead. Becomes `CLASSROOM_GATEWAY_URL`,
        and the base of `OPENAI_BASE_URL` (`/v1`), `ANTHROPIC_BASE_URL`
        (`/anthropic`) and `GOOGLE_GEMINI_BASE_URL` (`/google`) in the lab.
        """,
    )

    lessons_dir = Unicode(
        "",
        config=True,
        help="""
        Directory of lesson notebooks copied into `<home>/lessons/` before each start.

        Only files missing from the user's copy are copied: edited lessons are
        kept, lessons added later still arrive. Empty: nothing is copied.
        """,
    )

    published_root = Unicode(
        "",
        config=True,
        help="""
        Directory holding one folder of published dashboards per school.

        `~/published` in each lab links to `<published_root>/<tenant>` of the
        user's school (the `tenant-<id>` group). Default (set by
        `hub.config.configure`): `<CLASSROOM_DATA_DIR>/published`. Empty: no link.
        """,
    )

    @default("cmd")
    def _default_cmd(self) -> list[str]:
        # The venv's own entry point, whatever PATH the hub was started with.
        return [str(Path(VENV_BIN) / "jupyterhub-singleuser")]

    @default("args")
    def _default_args(self) -> list[str]:
        return ["--allow-root"] if os.geteuid() == 0 else []

    @default("default_url")
    def _default_default_url(self) -> str:
        return "/lab"

    def seed_lessons(self) -> list[Path]:
        """Copy new lesson files into the user's home; return what was copied."""
        if not self.lessons_dir:
            return []
        home = Path(self.home_dir)
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        target = home / "lessons"
        if target.exists() and not target.is_dir():
            self.log.warning(
                "Not copying lessons for %s: %s is not a directory", self.user.name, target
            )
            return []
        copied = copy_missing(Path(self.lessons_dir), target)
        if copied:
            self.log.info("Copied %d lesson file(s) for %s", len(copied), self.user.name)
        return copied

    def user_tenant(self) -> str | None:
        for group in getattr(self.user, "groups", []) or []:
            name = str(getattr(group, "name", group))
            if name.startswith("tenant-"):
                return name.removeprefix("tenant-")
        return None

    def link_published(self) -> Path | None:
        """Point ``~/published`` at the school's folder; return the folder linked."""
        tenant = self.user_tenant()
        if not self.published_root or tenant is None:
            return None
        folder = Path(self.published_root) / tenant
        if not folder.exists():
            folder.mkdir(parents=True, exist_ok=True)
            folder.chmod(0o555)
        home = Path(self.home_dir)
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        link = home / "published"
        if link.is_symlink():
            if os.readlink(link) == str(folder):
                return folder
            link.unlink()  # the user moved school
        elif link.exists():
            self.log.warning(
                "Not linking published dashboards for %s: %s already exists", self.user.name, link
            )
            return None
        link.symlink_to(folder, target_is_directory=True)
        return folder

    def run_pre_spawn_hook(self) -> Any:
        self.seed_lessons()
        self.link_published()
        return super().run_pre_spawn_hook()

    def get_args(self) -> list[str]:
        return [
            *super().get_args(),
            "--ContentsManager.pre_save_hook=hub.labhooks.refuse_save_in_published",
        ]

    def gateway_env(self) -> dict[str, str]:
        """Variables that send the lab's AI calls to the gateway with its own token."""
        if not self.gateway_url:
            self.log.warning("ClassroomSpawner.gateway_url is unset; labs cannot reach the gateway")
            return {}
        url = self.gateway_url.rstrip("/")
        token = self.api_token
        return {
            "CLASSROOM_GATEWAY_URL": url,
            "CLASSROOM_API_TOKEN": token,
            "OPENAI_BASE_URL": f"{url}/v1",
            "OPENAI_API_KEY": token,
            "ANTHROPIC_BASE_URL": f"{url}/anthropic",
            "ANTHROPIC_API_KEY": token,
            "GOOGLE_GEMINI_BASE_URL": f"{url}/google",
            "GEMINI_API_KEY": token,
        }

    def get_env(self) -> dict[str, str]:
        env = super().get_env()
        path = [p for p in env.get("PATH", os.defpath).split(os.pathsep) if p and p != VENV_BIN]
        env["PATH"] = os.pathsep.join([VENV_BIN, *path])
        env.update(self.gateway_env())
        return env
