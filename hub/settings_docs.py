"""The README's two settings tables, made from the settings themselves.

The gateway's table comes from :class:`gateway.config.settings.Settings` (each field's
``description`` is its documentation, its default is the real default); the hub's
from :data:`HUB_VARIABLES` below, which ``tests/test_docs.py`` holds equal to the
variables :class:`hub.config.HubSettings` actually reads. ``python -m
hub.settings_docs`` rewrites both tables in README.md (as :mod:`hub.tenant_docs`
does for docs/tenants.md); a test fails when the README is out of date.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NamedTuple

from pydantic import AliasChoices
from pydantic.fields import FieldInfo

from gateway.config.network import NETWORK_VARIABLES
from gateway.config.settings import REPO_ROOT, Settings

from .tenant_docs import replace_between, rewrite

README = Path(__file__).resolve().parent.parent / "README.md"
HUB_MARKERS = ("<!-- hub-settings:start -->", "<!-- hub-settings:end -->")
GATEWAY_MARKERS = ("<!-- gateway-settings:start -->", "<!-- gateway-settings:end -->")
MIB = 1024 * 1024


class Variable(NamedTuple):
    name: str
    default: str
    meaning: str


#: What the hub side reads (``hub.config``, and the admin's password in ``hub.cli``).
HUB_VARIABLES = (
    Variable("CLASSROOM_PORT", "`8000`", "public port"),
    Variable("CLASSROOM_BIND_ADDRESS", "`127.0.0.1`", "address the public port is bound on"),
    Variable("CLASSROOM_PUBLIC_URL", "`http://127.0.0.1:<port>`",
             "the URL people open (`JupyterHub.public_url`)"),
    Variable("CLASSROOM_HUB_DB_URL", "SQLite `jupyterhub.sqlite` in the data dir",
             "the hub's own database (never passed to the gateway)"),
    Variable("CLASSROOM_DATA_DIR", "`./data`",
             "hub and gateway databases, homes, artifacts, published dashboards, generated "
             "secrets"),
    Variable("CLASSROOM_TENANTS_DIR", "`./tenants`",
             "one JSON file per school ([schema](docs/tenants.md))"),
    Variable("CLASSROOM_ADMIN_USER", "`admin`", "bootstrap admin account"),
    Variable("CLASSROOM_ADMIN_PASSWORD", "generated", "bootstrap admin's password (printed once "
             "and kept in the data dir when generated)"),
    Variable("CLASSROOM_HUB_PORT", "a free port", "the hub's internal API port"),
    Variable("CLASSROOM_PROXY_API_PORT", "a free port", "the proxy's API port"),
    Variable("CLASSROOM_GATEWAY_PORT", "a free port", "the gateway service's port"),
    Variable("CLASSROOM_PARALLEL_STARTS", "CPU cores",
             "labs starting at once; the others wait in line, in order, with no timeout "
             "([capacity](docs/capacity.md))"),
    Variable("CLASSROOM_IDLE_CULL_SECONDS", "`3600`",
             "a lab idle this long is stopped by JupyterHub's idle culler; `0`: never"),
    Variable("CLASSROOM_LAB_MEMORY_LIMIT", "none",
             "memory of one lab with its kernels, e.g. `2G`; enforced with a cgroup when run "
             "as root ([isolation](docs/isolation.md#memory))"),
)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def variables_of(name: str, info: FieldInfo) -> list[str]:
    """The environment variables a gateway setting is read from, in order."""
    alias = info.validation_alias
    if isinstance(alias, AliasChoices):
        return [str(choice) for choice in alias.choices]
    return [f"CLASSROOM_{name.upper()}"]


def default_of(info: FieldInfo) -> str:
    value = info.default
    if value is None:
        return "unset"
    if isinstance(value, Path):
        try:
            return f"`./{value.relative_to(REPO_ROOT)}`"
        except ValueError:
            return f"`./{value}`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, int) and value >= MIB and value % MIB == 0:
        return f"{value // MIB} MiB"
    if isinstance(value, float) and value.is_integer():
        return f"`{int(value)}`"
    return f"`{value}`"


def hub_table() -> str:
    lines = ["| variable | default | meaning |", "| --- | --- | --- |"]
    lines += [f"| `{v.name}` | {v.default} | {_cell(v.meaning)} |" for v in HUB_VARIABLES]
    return "\n".join(lines)


def gateway_table() -> str:
    lines = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for name, info in Settings.model_fields.items():
        names = ", ".join(f"`{v}`" for v in variables_of(name, info))
        lines.append(f"| {names} | {default_of(info)} | {_cell(info.description or '')} |")
    network = ", ".join(f"`{v}`" for v in NETWORK_VARIABLES if v.isupper())
    lines.append(f"| {network} | unset | the network's proxy and trusted certificates for every "
                 "vendor call ([details](docs/providers.md#networks-with-a-proxy-or-a-private-ca))"
                 "; passed on by the hub |")
    return "\n".join(lines)


def render(document: str) -> str:
    """``document`` with both tables between their markers replaced by the current ones."""
    return replace_between(replace_between(document, *HUB_MARKERS, hub_table()),
                           *GATEWAY_MARKERS, gateway_table())


def main() -> int:  # pragma: no cover - maintenance command
    return rewrite(README, render, "settings tables")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
