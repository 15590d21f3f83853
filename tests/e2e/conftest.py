"""End-to-end fixtures: a real classroom hub and real students.

- ``reachable_tmp``: a session temp dir every OS user may pass through (0711).
  Under root each lab runs as its own OS user and must reach its home in the
  data dir; pytest's own temp dirs are private, and every pytest run starting
  on the machine makes ``/tmp/pytest-of-root`` private again.
- ``running_hub(top, name, **env)``: a context manager for a hub of one's own
  (extra ``CLASSROOM_*`` settings), stopped like ``hub``.
- ``hub``: ``classroom run`` (JupyterHub + configurable-http-proxy + gateway service)
  on free loopback ports in a temp data dir under ``reachable_tmp``, for the whole
  module; stopped by PID afterwards, with every process it started.
- ``admin_token``: an API token of the bootstrap admin, made through the REST API.
- ``student``: account ``stu1`` of school_a made with ``classroom accounts add``,
  logged in through the login form, with a running lab.
- ``browser``: Debian's chromium driven by Playwright (never ``playwright install``).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.support.hub import Hub, start_hub
from tests.support.procs import ARTIFACTS

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture(scope="session")
def reachable_tmp() -> Iterator[Path]:
    top = Path(tempfile.mkdtemp(prefix="classroom-e2e-"))
    top.chmod(0o711)
    try:
        yield top
    finally:
        shutil.rmtree(top, ignore_errors=True)


def data_dir_in(top: Path, name: str) -> Path:
    """A fresh ``<top>/<name>XXXX/data`` (the hub opens the folder above it for labs)."""
    return Path(tempfile.mkdtemp(prefix=name, dir=top)) / "data"


@contextmanager
def running_hub(top: Path, name: str, **env: str) -> Iterator[Hub]:
    """A hub in a fresh data dir under ``top``; stopped by PID, its log kept in test-artifacts."""
    started = start_hub(data_dir_in(top, name), **env)
    try:
        yield started
    finally:
        started.stop()
        artifacts = ARTIFACTS / "logs"
        artifacts.mkdir(parents=True, exist_ok=True)
        (artifacts / f"{started.data_dir.parent.name}-hub.log").write_text(started.log())


@pytest.fixture(scope="module")
def hub(reachable_tmp: Path) -> Iterator[Hub]:
    with running_hub(reachable_tmp, "classroom") as started:
        yield started


@pytest.fixture(scope="module")
def admin_token(hub: Hub) -> str:
    session = hub.login(hub.admin_user, hub.admin_password)
    return hub.token_for(session, hub.admin_user, note="e2e admin")


@dataclass
class Student:
    name: str
    password: str
    tenant: str
    session: requests.Session
    server_url: str
    home: Path


@pytest.fixture(scope="module")
def student(hub: Hub, admin_token: str) -> Student:
    name, password = "stu1", "first-lesson-pass-42"
    out = hub.classroom("accounts", "add", "--tenant", "school_a", "--role", "student",
                        "--password", password, name)
    assert name in out.stdout
    session = hub.login(name, password)
    hub.start_server(admin_token, name)
    return Student(name, password, "school_a", session, f"{hub.url}/user/{name}",
                   hub.data_dir / "home" / name)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()
