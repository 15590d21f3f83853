"""docs/isolation.md says what the code does: names, modes, signals and settings."""

from __future__ import annotations

import re

from hub import spawner, supervisor, users
from hub.config import LAB_FOLDERS
from hub.spawner import ClassroomSpawner
from tests.support.procs import REPO

DOC = (REPO / "docs" / "isolation.md").read_text()


def test_the_name_examples_are_what_the_mapping_gives() -> None:
    rows = re.findall(r"^\| `([a-z0-9._-]+)` \| `([^`]+)` \|$", DOC, flags=re.M)
    assert len(rows) >= 3
    for hub_name, shown in rows:
        pattern = re.escape(shown).replace(re.escape("<10 hex digits>"), "[0-9a-f]{10}")
        assert re.fullmatch(pattern, users.system_username(hub_name)), (hub_name, shown)
    assert f"`{users.school_group('school_a')}`" in DOC
    assert users.COMMENT.format(hub_name="<hub name>") in DOC
    assert users.NOLOGIN in DOC


def test_the_modes_are_the_codes() -> None:
    assert f"`{spawner.HOMES_MODE:04o}`" in DOC
    assert f"`{spawner.HOME_MODE:04o}`" in DOC
    assert f"`{spawner.PUBLISHED_MODE:o}`" in DOC
    for folder in LAB_FOLDERS:
        assert f"| `{folder}/` | root | `0711` |" in DOC


def test_signals_files_and_settings_are_documented() -> None:
    assert supervisor.PID_FILE in DOC
    assert "five times in five minutes" in DOC and supervisor.MAX_RESTARTS == 5
    assert supervisor.RESTART_WINDOW == 300
    for name in ("CLASSROOM_SUPERVISED", "CLASSROOM_IDENTITY_CACHE_SECONDS",
                 "ClassroomSpawner.isolated", "kill -HUP", "cleanup_servers = False"):
        assert name in DOC, name
    assert ClassroomSpawner.isolated.help  # the option documents itself too
