"""docs/loadtests.md documents every plan field and the grades the code gives."""

from __future__ import annotations

from gateway.loadtest.plans import PLAN_FIELDS, ROUND_FIELDS, STEP_FIELDS
from gateway.loadtest.stats import grade_table
from tests.support.procs import REPO

DOC = (REPO / "docs" / "loadtests.md").read_text(encoding="utf-8")


def test_every_plan_field_is_documented() -> None:
    for name in (*PLAN_FIELDS, *ROUND_FIELDS, *STEP_FIELDS):
        assert f"`{name}`" in DOC or f"`rounds[].{name}`" in DOC, name


def test_the_grade_table_is_the_codes() -> None:
    for row in grade_table():
        assert f"| {row['grade']} | {row['rule']} |" in DOC
