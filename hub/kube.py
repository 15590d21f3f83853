"""The classroom on Zero to JupyterHub: KubeSpawner labs and the hub's configuration there.

z2jh runs the hub with its own ``jupyterhub_config.py``, which reads the chart's
values (``hub.config``, ``hub.services``, ``hub.db``, ``singleuser.*``, ``cull``)
and then executes ``hub.extraConfig``. ``deploy/z2jh/values.yaml`` puts there::

    from hub.kube import configure_z2jh
    configure_z2jh(c)

which adds what values cannot say: the authenticator, the custom scopes and one
role per school computed from the tenant files (:func:`hub.config.configure_classroom`,
shared with the one-server hub), and :class:`ClassroomKubeSpawner`. The gateway is
an *external* service (``hub.services.gateway`` with its Service's URL), so it can
run as several replicas in its own Deployment (``deploy/helm/classroom-gateway``).

Environment of the hub pod (``hub.extraEnv``):

``CLASSROOM_GATEWAY_URL``     the gateway as labs reach it (required), e.g.
                              ``http://classroom-gateway.classroom.svc:8000/services/gateway``
``CLASSROOM_TENANTS_DIR``     the tenants ConfigMap's mount (default ``/srv/classroom/tenants``)
``CLASSROOM_DATA_DIR``        the hub's volume for accounts (default ``/srv/classroom/data``)
``CLASSROOM_PUBLISHED_CLAIM`` a ReadWriteMany claim holding ``<tenant>/`` published folders
``CLASSROOM_ADMIN_USER``      the bootstrap admin (default ``admin``)
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from typing import Any

from kubespawner import KubeSpawner
from traitlets import Unicode
from traitlets.config import Config

from . import homes, hubapi
from .config import HubSettings, configure_classroom
from .labs import ClassroomLab

__all__ = ["ClassroomKubeSpawner", "configure_z2jh"]

PUBLISHED_VOLUME = "classroom-published"
DEFAULTS = {
    "CLASSROOM_TENANTS_DIR": "/srv/classroom/tenants",
    "CLASSROOM_DATA_DIR": "/srv/classroom/data",
}


class ClassroomKubeSpawner(ClassroomLab, KubeSpawner):
    """A lab pod with the gateway in its environment, the lessons and the school's folder.

    The home is the pod's volume, so the lessons are copied in by the pod itself as
    it starts (a ``postStart`` hook running :meth:`~hub.labs.ClassroomLab.home_command`
    as the lab's user; a failure is logged by Kubernetes and never stops the lab),
    and the school's published folder is the ``<tenant>`` sub-path of a shared claim,
    mounted read-only at ``<published_root>/<tenant>``."""

    published_claim = Unicode(
        "",
        config=True,
        help="""
        PersistentVolumeClaim (ReadWriteMany) holding one folder of published
        dashboards per school, written by the gateway. Each lab mounts its school's
        folder read-only at `<published_root>/<tenant>`. Empty: no published folder.
        """,
    )

    lab_python = Unicode(
        "python3",
        config=True,
        help="The lab image's Python (with the classroom package), which fills the home.",
    )

    lab_home = Unicode(
        "/home/jovyan",
        config=True,
        help="The home directory of the lab image's user, where lessons are copied.",
    )

    def get_env(self) -> dict[str, str]:
        env: dict[str, str] = super().get_env()
        env.update(self.gateway_env())
        return env

    def classroom_pod(self) -> None:
        """Put the lessons hook and the school's folder on this user's pod."""
        command = shlex.join(self.home_command(self.lab_home, python=self.lab_python))
        hooks = dict(self.lifecycle_hooks or {})  # type: ignore[has-type]
        hooks["postStart"] = {"exec": {"command": ["sh", "-c", f"{command} || true"]}}
        self.lifecycle_hooks = hooks
        tenant, folder = self.user_tenant(), self.school_folder()
        volume = mount = None
        if self.published_claim and tenant is not None and folder is not None:
            volume = {"name": PUBLISHED_VOLUME, "persistentVolumeClaim": {
                "claimName": self.published_claim, "readOnly": True}}
            mount = {"name": PUBLISHED_VOLUME, "mountPath": str(folder), "subPath": tenant,
                     "readOnly": True}
        self.volumes = _with(self.volumes, volume)  # type: ignore[has-type]
        self.volume_mounts = _with(self.volume_mounts, mount)  # type: ignore[has-type]

    async def get_pod_manifest(self) -> Any:
        self.classroom_pod()
        return await super().get_pod_manifest()


def _with(entries: list[Any] | dict[str, Any], entry: dict[str, Any] | None,
          ) -> list[Any] | dict[str, Any]:
    """KubeSpawner's volumes (a list, or a dict by name as z2jh sets them) with our own
    entry put in place of an earlier one (or removed, when there is none)."""
    if isinstance(entries, dict):
        kept = {k: v for k, v in entries.items() if k != PUBLISHED_VOLUME}
        if entry is not None:
            kept[PUBLISHED_VOLUME] = entry
        return kept
    listed = [e for e in entries if e.get("name") != PUBLISHED_VOLUME]
    return [*listed, entry] if entry is not None else listed


def configure_z2jh(c: Config, environ: Mapping[str, str] | None = None) -> HubSettings:
    """Add the classroom to the configuration z2jh has built from the values."""
    environ = dict(os.environ if environ is None else environ)
    for name, value in DEFAULTS.items():
        environ.setdefault(name, value)
    gateway_url = environ.get("CLASSROOM_GATEWAY_URL", "").strip().rstrip("/")
    if not gateway_url:
        raise SystemExit("CLASSROOM_GATEWAY_URL is not set: labs could not reach the gateway")
    settings = HubSettings.from_environ(environ)
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    configure_classroom(c, settings, settings.load_tenants())
    # API-only: `kubectl exec deploy/hub -- classroom accounts import …` goes through it.
    c.JupyterHub.services = [
        *c.JupyterHub.get("services", []),
        hubapi.prepare_service(settings.data_dir, "http://127.0.0.1:8081/hub/api"),
    ]

    c.JupyterHub.spawner_class = ClassroomKubeSpawner
    c.ClassroomKubeSpawner.gateway_url = gateway_url
    c.ClassroomKubeSpawner.lessons_dir = environ.get(
        "CLASSROOM_LAB_LESSONS_DIR", "/srv/classroom/notebooks/lessons")
    notebooks = os.path.dirname(c.ClassroomKubeSpawner.lessons_dir)  # in the lab image
    c.ClassroomKubeSpawner.role_notebooks = {
        role: [os.path.join(notebooks, folder) for folder in folders]
        for role, folders in homes.ROLE_FOLDERS.items()
    }
    c.ClassroomKubeSpawner.published_root = environ.get(
        "CLASSROOM_LAB_PUBLISHED_ROOT", "/srv/classroom/published")
    c.ClassroomKubeSpawner.published_claim = environ.get("CLASSROOM_PUBLISHED_CLAIM", "")
    # A link to a published dashboard starts the viewer's own server when it is stopped.
    c.JupyterHub.implicit_spawn_seconds = 2
    return settings
