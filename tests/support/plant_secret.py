"""Run on purpose by ``tests/gateway/test_secrets.py`` (never collected on its own): a
test that remembers a secret and writes a log, with the secret in it when
``CLASSROOM_PLANT_SECRET=yes`` (and no log at all when ``missing``), so that the
session's secrets check can be seen to fail."""

from __future__ import annotations

import os
from pathlib import Path

from tests.support import secrets

PLANTED = "planted-secret-7f3c9a1e5b"


def test_writes_a_log(tmp_path: Path) -> None:
    secrets.remember(PLANTED)
    log = tmp_path / "planted.log"
    secrets.watch(log)
    mode = os.environ.get("CLASSROOM_PLANT_SECRET")
    if mode == "missing":
        return  # a process "started" whose log is gone: the check must not pass by default
    log.write_text(f"[I] started with key {PLANTED}\n" if mode == "yes" else "[I] started\n")
