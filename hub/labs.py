"""What every classroom lab gets, whichever spawner starts it: one implementation.

:class:`ClassroomLab` is a mixin for a JupyterHub spawner. It holds the
classroom's options (where the gateway is, the lessons, the schools' published
folders) and computes what a lab needs from them:

- :meth:`ClassroomLab.gateway_env`: the variables that point every official AI
  SDK and the ``classroom`` package at the gateway, with the lab's own hub token
  as the API key (no provider key ever);
- :meth:`ClassroomLab.user_tenant` / :meth:`ClassroomLab.school_folder`: the
  user's school (its ``tenant-<id>`` group) and its published dashboards;
- :meth:`ClassroomLab.home_command`: the ``python -m hub.homes`` command that
  copies new lessons into the home without overwriting edits and links
  ``~/published`` (:mod:`hub.homes`).

:class:`hub.spawner.ClassroomSpawner` (local processes) runs the home step in the
hub before the lab starts; :class:`hub.kube.ClassroomKubeSpawner` runs the same
command in the pod as it starts (a ``postStart`` hook), because the home is the
pod's volume. Both take the server token's scopes from
``c.Spawner.server_token_scopes`` (:data:`hub.roles.SERVER_TOKEN_SCOPES`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from traitlets import Dict, List, Unicode
from traitlets.config import Configurable

from gateway.contract import API_TOKEN_VAR, GATEWAY_URL_VAR, TENANT_GROUP_PREFIX

from .branding import user_role

# The venv this code runs from: its jupyterhub, jupyterhub-singleuser and classroom.
VENV_BIN = str(Path(sys.prefix) / "bin")


class ClassroomLab(Configurable):
    """The classroom's part of a spawner (mix in before the spawner class)."""

    gateway_url = Unicode(
        "",
        config=True,
        help="""
        Base URL of the gateway as the lab reaches it, without a trailing slash.

        Default (set by `hub.config.configure`): through the hub's proxy,
        `http://127.0.0.1:<CLASSROOM_PORT>/services/gateway`. A deployment may
        point labs at an internal URL instead (on Kubernetes, the gateway's
        Service). Becomes `CLASSROOM_GATEWAY_URL`, and the base of
        `OPENAI_BASE_URL` (`/v1`), `ANTHROPIC_BASE_URL` (`/anthropic`) and
        `GOOGLE_GEMINI_BASE_URL` (`/google`) in the lab.
        """,
    )

    lessons_dir = Unicode(
        "",
        config=True,
        help="""
        Directory of lesson notebooks copied into `<home>/lessons/` before each start.

        Only files missing from the user's copy are copied: edited lessons are
        kept, lessons added later still arrive. Empty: nothing is copied. With
        KubeSpawner this is a path inside the lab image.
        """,
    )

    role_notebooks = Dict(
        value_trait=List(Unicode()),
        config=True,
        help="""
        Folders copied into the home of each role, besides the lessons: `{role: [dir, ...]}`.

        Each folder arrives as `<home>/<folder name>/`, file by file, never over an
        edited copy, like the lessons. Default (set by `hub.config.configure`, from
        `hub.homes.ROLE_FOLDERS`): teachers get `notebooks/dashboards`, admins
        `notebooks/admin` and `notebooks/dashboards`; students nothing more.
        """,
    )

    published_root = Unicode(
        "",
        config=True,
        help="""
        Directory holding one folder of published dashboards per school.

        `~/published` in each lab links to `<published_root>/<tenant>` of the
        user's school (the `tenant-<id>` group). Default (set by
        `hub.config.configure`): `<CLASSROOM_DATA_DIR>/published`. With
        KubeSpawner it is where the shared volume is mounted in the pod. Empty:
        no link.
        """,
    )

    # Set by the spawner classes this is mixed into.
    user: Any
    api_token: str
    log: Any

    def user_tenant(self) -> str | None:
        for group in getattr(self.user, "groups", []) or []:
            name = str(getattr(group, "name", group))
            if name.startswith(TENANT_GROUP_PREFIX):
                return name.removeprefix(TENANT_GROUP_PREFIX)
        return None

    def user_role(self) -> str | None:
        """The user's classroom role (the ``role-<role>`` group; hub admins are admins)."""
        return user_role(self.user)

    def role_folders(self) -> list[Path]:
        """The folders this user's role finds in its home (:attr:`role_notebooks`)."""
        return [Path(f) for f in self.role_notebooks.get(self.user_role() or "", [])]

    def school_folder(self) -> Path | None:
        """The published dashboards folder of the user's school (None: no school or no root)."""
        tenant = self.user_tenant()
        if not self.published_root or tenant is None:
            return None
        return Path(self.published_root) / tenant

    def class_lessons(self) -> dict[str, bytes]:
        """The lessons published to the user's classes (``class-<tenant>-<label>`` groups)."""
        folder, tenant = self.school_folder(), self.user_tenant()
        if folder is None or tenant is None:
            return {}
        from gateway.published import class_lessons

        try:
            return class_lessons(folder, tenant, getattr(self.user, "groups", []))
        except (OSError, ValueError) as exc:
            self.log.warning("Class lessons of %s not copied: %s", self.user.name, exc)
            return {}

    def home_command(self, home: str, python: str = sys.executable) -> list[str]:
        """The command that fills a home (run as the lab's own user, never as root)."""
        command = [python, "-I", "-m", "hub.homes", "--home", home]
        if self.lessons_dir:
            command += ["--lessons", self.lessons_dir]
        for extra in self.role_folders():
            command += ["--folder", str(extra)]
        folder = self.school_folder()
        if folder is not None:
            command += ["--published", str(folder)]
        return command

    def gateway_env(self) -> dict[str, str]:
        """Variables that send the lab's AI calls to the gateway with its own token."""
        if not self.gateway_url:
            self.log.warning("gateway_url is unset; labs cannot reach the gateway")
            return {}
        url = self.gateway_url.rstrip("/")
        token = self.api_token
        return {
            GATEWAY_URL_VAR: url,
            API_TOKEN_VAR: token,
            "OPENAI_BASE_URL": f"{url}/v1",
            "OPENAI_API_KEY": token,
            "ANTHROPIC_BASE_URL": f"{url}/anthropic",
            "ANTHROPIC_API_KEY": token,
            "GOOGLE_GEMINI_BASE_URL": f"{url}/google",
            "GEMINI_API_KEY": token,
        }
