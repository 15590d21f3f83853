"""Idle labs are stopped by JupyterHub's idle culler, a hub-managed service.

A hub with ``CLASSROOM_IDLE_CULL_SECONDS=20``: a lab nobody uses is stopped
(its process exits, the hub shows no server), while the account stays and
the next request starts it again through the start queue.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import running_hub
from tests.support.hub import descendants
from tests.support.labs import lab_processes, server_model
from tests.support.procs import pid_alive, wait_until

pytestmark = pytest.mark.e2e


def test_an_idle_lab_is_stopped_and_starts_again_on_the_next_visit(reachable_tmp) -> None:
    with running_hub(reachable_tmp, "culler", CLASSROOM_IDLE_CULL_SECONDS="20") as hub:
        culler = [p for p in descendants(hub.process.pid) if _runs(p, b"jupyterhub_idle_culler")]
        assert culler, "the idle culler service is not running"
        token = hub.token_for(hub.login(hub.admin_user, hub.admin_password), hub.admin_user)
        hub.classroom("accounts", "add", "--tenant", "school_a", "--password",
                      "idle-student-pass-1", "idle1")
        hub.login("idle1", "idle-student-pass-1")
        hub.start_server(token, "idle1")
        pid = lab_processes(hub)["idle1"]
        assert pid_alive(pid)

        # Nobody uses it: the culler stops it after the timeout, at its next look.
        wait_until(lambda: not server_model(hub, token, "idle1"), 180, "the idle lab culled",
                   hub.process)
        wait_until(lambda: not pid_alive(pid), 60, "the culled lab's process to exit")
        assert "idle1" in hub.log() and "Culling server idle1" in hub.log()

        # The account stays, and the lab starts again when asked for.
        again = hub.start_server(token, "idle1")
        assert again["servers"][""]["ready"] is True


def _runs(pid: int, needle: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return needle in cmdline.read()
    except OSError:
        return False
