"""The README is the manual: every gateway setting and make target it promises is real,
and every real one is documented."""

from __future__ import annotations

import re
from pathlib import Path

from gateway.settings import Settings

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()
DOCS = README + "".join(p.read_text() for p in (REPO / "docs").glob("*.md"))


def test_every_gateway_setting_is_documented():
    missing = [
        f"CLASSROOM_{name.upper()}" for name in Settings.model_fields
        if f"CLASSROOM_{name.upper()}" not in DOCS
    ]
    assert missing == []


def test_every_documented_gateway_variable_exists():
    documented = set(re.findall(r"`(CLASSROOM_[A-Z_]+)`", README))
    hub_side = {"CLASSROOM_PORT", "CLASSROOM_ADMIN_USER", "CLASSROOM_ADMIN_PASSWORD",
                "CLASSROOM_HUB_PORT", "CLASSROOM_PROXY_API_PORT", "CLASSROOM_GATEWAY_PORT",
                "CLASSROOM_GATEWAY_URL", "CLASSROOM_API_TOKEN", "CLASSROOM_PARALLEL_STARTS",
                "CLASSROOM_IDLE_CULL_SECONDS", "CLASSROOM_LAB_MEMORY_LIMIT",
                "CLASSROOM_BIND_ADDRESS", "CLASSROOM_PUBLIC_URL", "CLASSROOM_HUB_DB_URL"}
    known = {f"CLASSROOM_{name.upper()}" for name in Settings.model_fields} | hub_side
    assert documented - known == set()


def test_readme_starts_with_the_two_commands_and_its_targets_exist():
    first_block = README.split("```bash", 1)[1].split("```", 1)[0]
    assert "make run" in first_block and "make test" in first_block
    makefile = (REPO / "Makefile").read_text()
    for target in ("run", "test", "bench", "soak", "lint"):
        assert re.search(rf"^{target}:", makefile, re.M), target
    assert "make test" in (REPO / ".ci" / "run").read_text()
