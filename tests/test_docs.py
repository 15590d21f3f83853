"""The README is the manual: every gateway setting and make target it promises is real,
and every real one is documented."""

from __future__ import annotations

import re
from pathlib import Path

from gateway.config.settings import Settings

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
    from gateway.contract import API_TOKEN_VAR, GATEWAY_URL_VAR
    from hub.settings_docs import HUB_VARIABLES

    hub_side = {v.name for v in HUB_VARIABLES} | {GATEWAY_URL_VAR, API_TOKEN_VAR}
    known = {f"CLASSROOM_{name.upper()}" for name in Settings.model_fields} | hub_side
    assert documented - known == set()


def test_readme_starts_with_the_two_commands_and_its_targets_exist():
    first_block = README.split("```bash", 1)[1].split("```", 1)[0]
    assert "make run" in first_block and "make test" in first_block
    makefile = (REPO / "Makefile").read_text()
    for target in ("run", "test", "bench", "soak", "lint"):
        assert re.search(rf"^{target}:", makefile, re.M), target
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_the_readme_settings_tables_are_the_settings():
    from hub import settings_docs

    assert settings_docs.render(README) == README, (
        "README.md's settings tables differ from the settings: run python -m hub.settings_docs")
    undescribed = [name for name, info in Settings.model_fields.items() if not info.description]
    assert undescribed == []


def test_the_hub_variables_table_lists_what_the_hub_reads():
    import inspect

    from hub import cli, config, settings_docs

    sources = [inspect.getsource(part) for part in (
        config.HubSettings.from_environ, config.resolve_data_dir, config.resolve_tenants_dir)]
    sources.append(inspect.getsource(cli))
    read = set(re.findall(r'"(CLASSROOM_[A-Z_]+)"', "".join(sources)))
    read -= set(config.SUPERVISOR_VARIABLES)  # set by `classroom run` for its own hub
    read -= {f"CLASSROOM_{name.upper()}" for name in Settings.model_fields} - {
        "CLASSROOM_DATA_DIR", "CLASSROOM_TENANTS_DIR"}  # the gateway's, read for checks
    assert read == {v.name for v in settings_docs.HUB_VARIABLES}


def test_the_cli_reference_is_the_parsers():
    from hub import cli_docs

    assert (REPO / "docs" / "cli.md").read_text() == cli_docs.render(), (
        "docs/cli.md differs from the parsers: run python -m hub.cli_docs")


def test_the_developers_start_inside_the_repository():
    links = re.findall(r"\]\(([^)]+)\)", README)
    assert "../shared" not in README
    developers = README.split("| developers |", 1)[1].split("\n", 1)[0]
    assert re.findall(r"\]\(([^)]+)\)", developers)[0] == "docs/architecture.md"
    for link in links:
        if not link.startswith(("http://", "https://", "#")):
            assert (REPO / link.split("#")[0]).exists(), link
    assert "benchmarks/RESULTS.md" in links
