"""Without root, ``classroom run`` still starts (labs share its OS user) and says loudly
that labs are not isolated: on stderr at start, and to admins on the hub's home page.

Under root the test runs the classroom as ``nobody`` to see exactly that.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.hub import Hub
from tests.support.procs import ARTIFACTS, REPO, VENV_BIN, free_port, wait_until

NOBODY = 65534
ADMIN_PASSWORD = "fallback-admin-1234"


def as_user() -> dict[str, object]:
    """Popen arguments that drop root, if we have it."""
    return {"user": NOBODY, "group": NOBODY, "extra_groups": []} if os.geteuid() == 0 else {}


@pytest.fixture(scope="module")
def shared_hub() -> Iterator[Hub]:
    # Not under pytest's private temp dir: nobody must be able to enter it.
    top = Path(tempfile.mkdtemp(prefix="classroom-fallback-", dir="/tmp"))
    top.chmod(0o755)
    if os.geteuid() == 0:
        os.chown(top, NOBODY, NOBODY)
    port = free_port()
    env = {
        "PATH": f"{REPO / '.node' / 'node_modules' / '.bin'}:{VENV_BIN}:/usr/bin:/bin",
        "HOME": str(top), "LANG": "C.UTF-8",
        "CLASSROOM_PORT": str(port), "CLASSROOM_HUB_PORT": str(free_port()),
        "CLASSROOM_PROXY_API_PORT": str(free_port()), "CLASSROOM_GATEWAY_PORT": str(free_port()),
        "CLASSROOM_DATA_DIR": str(top / "data"), "CLASSROOM_ADMIN_PASSWORD": ADMIN_PASSWORD,
    }
    log_path = top / "run.log"
    with open(log_path, "wb") as log, open(top / "stderr.log", "wb") as err:
        process = subprocess.Popen(
            [str(VENV_BIN / "classroom"), "run"], env=env, cwd=str(top), stdout=log, stderr=err,
            start_new_session=True, **as_user(),  # type: ignore[call-overload]
        )
    hub = Hub(f"http://127.0.0.1:{port}", top / "data", env, process, top / "stderr.log",
              "admin", ADMIN_PASSWORD)
    try:
        wait_until(lambda: requests.get(hub.url + "/hub/api", timeout=5).status_code == 200,
                   90, "hub as nobody", process)
        hub.remember_children()
        yield hub
    finally:
        hub.stop()
        logs = ARTIFACTS / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        (logs / "fallback-hub.log").write_text(hub.log())
        shutil.rmtree(top, ignore_errors=True)


def test_start_warns_loudly_on_stderr(shared_hub: Hub) -> None:
    stderr = shared_hub.log()
    assert "WARNING: labs are NOT isolated" in stderr
    assert "Any student can read the gateway's" in stderr


def test_admins_see_the_warning_on_the_home_page_and_students_do_not(shared_hub: Hub) -> None:
    home = shared_hub.login("admin", ADMIN_PASSWORD).get(shared_hub.url + "/hub/home", timeout=30)
    assert home.status_code == 200 and "Labs are not isolated" in home.text

    subprocess.run(
        [str(VENV_BIN / "classroom"), "accounts", "add", "--tenant", "school_a",
         "--password", "fallback-student-1", "fb_student"],
        env=shared_hub.env, check=True, capture_output=True, **as_user(),  # type: ignore[call-overload]
    )
    student = shared_hub.login("fb_student", "fallback-student-1")
    page = student.get(shared_hub.url + "/hub/home", timeout=30)
    assert page.status_code == 200 and "Labs are not isolated" not in page.text


def test_the_shared_user_hub_keeps_the_data_dir_private(shared_hub: Hub) -> None:
    info = shared_hub.data_dir.stat()
    assert oct(info.st_mode & 0o777) == "0o700"
    assert requests.get(shared_hub.gateway_url + "/health", timeout=30).json()["status"] == "ok"
