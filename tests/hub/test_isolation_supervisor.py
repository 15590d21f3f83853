"""classroom run's supervisor: leftovers of a killed run, and never two runs on one data dir.

(Starting, restarting and stopping real hubs is covered end to end in
tests/e2e/test_isolation.py and tests/e2e/test_walking_skeleton.py.)
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.config import HubSettings
from hub.supervisor import GATEWAY_PID_FILE, PID_FILE, PROXY_PID_FILE, Supervisor, alive


@pytest.fixture
def supervisor(data_dir: Path) -> Supervisor:
    data_dir.mkdir()
    settings = HubSettings.from_environ({"CLASSROOM_DATA_DIR": str(data_dir)})
    return Supervisor(settings, Path("jupyterhub_config.py"), {"PATH": "/usr/bin:/bin"})


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        process.kill()
        process.wait()


def sleeper(started: list[subprocess.Popen[bytes]], *words: str) -> subprocess.Popen[bytes]:
    """A process whose command line holds ``words``, like a leftover part would."""
    process = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", *words],
    )
    started.append(process)
    return process


def test_leftovers_of_a_killed_run_are_stopped_and_nothing_else(
    supervisor: Supervisor, data_dir: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    proxy = sleeper(started, "configurable-http-proxy", "--port", "1")
    unrelated = sleeper(started, "something", "else")
    (data_dir / PROXY_PID_FILE).write_text(f"{proxy.pid}\n")
    (data_dir / GATEWAY_PID_FILE).write_text(f"{unrelated.pid}\n")  # a PID reused since

    supervisor.stop_leftovers()

    assert proxy.wait(timeout=10) is not None
    assert alive(unrelated.pid)


def test_a_second_run_on_the_same_data_dir_is_refused(
    supervisor: Supervisor, data_dir: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    other = sleeper(started, "classroom", "run")
    (data_dir / PID_FILE).write_text(f"{other.pid}\n")

    with pytest.raises(SystemExit, match="another classroom run"):
        supervisor.stop_leftovers()
    assert alive(other.pid)
