"""Idle labs are stopped by JupyterHub's idle culler, run as a hub-managed service.

`jupyterhub-idle-culler <https://github.com/jupyterhub/jupyterhub-idle-culler>`_
is what every JupyterHub deployment (Zero to JupyterHub included) runs: every
``cull_every`` seconds it asks the hub for servers and stops those whose last
activity (browser, kernels, terminals, as the lab reports it) is older than
the timeout. Users are kept; only their servers stop, and the next visit
starts the lab again through the start queue.

A class a teacher started ahead of the lesson counts as active from the
moment each lab started, so start it within ``CLASSROOM_IDLE_CULL_SECONDS``
of the bell.
"""

from __future__ import annotations

import sys
from typing import Any

SERVICE_NAME = "idle-culler"
# The scopes the culler's own documentation asks for, and no more.
SCOPES = ["list:users", "read:users:activity", "read:servers", "delete:servers"]


def cull_every(timeout: int) -> int:
    """How often to look: a tenth of the timeout, between 30 s and 10 min."""
    return max(30, min(600, timeout // 10))


def service(timeout: int) -> dict[str, Any]:
    """The hub's ``services`` entry: started and stopped by the hub itself."""
    return {
        "name": SERVICE_NAME,
        "display": False,
        "command": [
            sys.executable, "-m", "jupyterhub_idle_culler",
            f"--timeout={timeout}",
            f"--cull-every={cull_every(timeout)}",
            # Users stay; only their idle servers stop.
            "--cull-users=false",
        ],
    }


def role() -> dict[str, Any]:
    return {
        "name": "classroom-idle-culler",
        "description": "Stops labs that have been idle for longer than the timeout.",
        "scopes": list(SCOPES),
        "services": [SERVICE_NAME],
    }
