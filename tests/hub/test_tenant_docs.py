"""docs/tenants.md documents every key of the tenant schema, and the tenant files use them."""

from __future__ import annotations

import json

from gateway.config.tenants import load_tenants
from hub.tenant_docs import DOC, fields, render

from .conftest import TENANTS_DIR


def test_every_key_has_a_description() -> None:
    missing = [path for path, info in fields() if not (info.description or "").strip()]
    assert missing == [], f"add a Field(description=...) in gateway/config/tenants.py for {missing}"


def test_every_key_is_in_the_documentation() -> None:
    text = DOC.read_text(encoding="utf-8")
    undocumented = [path for path, _ in fields() if f"| `{path}` |" not in text]
    assert undocumented == [], f"run `python -m hub.tenant_docs` to document {undocumented}"


def test_the_documentation_table_is_up_to_date() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert render(text) == text, "docs/tenants.md is stale: run `python -m hub.tenant_docs`"


def _keys(value: object, prefix: str = "") -> set[str]:
    """Dotted keys of a tenant file; the role names under ``quotas`` become ``<role>``."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            path = prefix + ("<role>" if prefix == "quotas." else key)
            if path != "quotas.<role>":  # a role is a dict key, not a schema field
                found.add(path)
            found |= _keys(inner, path + ".")
    return found


def test_every_key_used_by_a_tenant_file_is_documented() -> None:
    documented = {path for path, _ in fields()}
    for path in sorted(TENANTS_DIR.glob("*.json")):
        used = _keys(json.loads(path.read_text(encoding="utf-8")))
        assert used <= documented, f"{path.name}: {sorted(used - documented)}"
    assert load_tenants(TENANTS_DIR)  # and they are all valid
