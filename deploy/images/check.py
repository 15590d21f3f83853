"""What an image must hold, checked by ``install.sh`` at the end of every image build.

``python -I check.py hub|lab|gateway SHARE`` imports what the image's processes will
import, from the installed package (never a source tree), and checks the files they
will read: templates, migrations, tenants, the kernel configuration, the notebooks.
It prints one line per check and exits non-zero on the first missing part.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

MODULES = {
    "hub": ["gateway.contract", "hub.config", "hub.auth", "hub.kube", "hub.labs", "hub.roles",
            "kubespawner"],
    "lab": ["gateway.contract", "classroom", "classroom.widgets", "hub.labhooks", "hub.homes",
            "jupyterhub.singleuser", "ipykernel"],
    "gateway": ["gateway.edge.app", "gateway.edge.asgi", "gateway.config.network",
                "gateway.history",
                "uvicorn"],
}
OURS = ("hub", "gateway", "classroom")


def fail(message: str) -> None:
    print(f"image check: FAILED: {message}", file=sys.stderr)
    raise SystemExit(1)


def check(role: str, share: Path) -> list[str]:
    done: list[str] = []
    for name in MODULES[role]:
        try:
            module = importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - any import failure fails the image
            fail(f"import {name}: {type(exc).__name__}: {exc}")
        where = Path(getattr(module, "__file__", "") or "")
        if name.split(".")[0] in OURS and Path(sys.prefix) not in where.parents:
            fail(f"{name} comes from {where}, not from the installed package")
        done.append(f"import {name}")
    if role == "hub":
        templates = Path(importlib.import_module("hub").__file__ or "").parent / "templates"
        if not any(templates.glob("*.html")):
            fail(f"no login/page templates in {templates}")
        done.append("templates")
    if role == "gateway":
        versions = Path(importlib.import_module("gateway.history").__file__ or "").parent
        if not any((versions / "migrations" / "versions").glob("0*.py")):
            fail("the history migrations are not installed")
        if not (versions / "migrations" / "script.py.mako").exists():
            fail("alembic's script template is not installed")
        done.append("migrations")
    if role in ("hub", "gateway"):
        from gateway.config.tenants import load_tenants

        tenants = load_tenants(share / "tenants")
        if not tenants:
            fail(f"no tenant files in {share / 'tenants'}")
        done.append(f"{len(tenants)} tenants")
    if role == "lab":
        config = Path(sys.prefix) / "etc" / "ipython" / "ipython_kernel_config.py"
        if "classroom" not in (config.read_text() if config.exists() else ""):
            fail(f"{config} does not load the classroom extension")
        for part in ("lessons", "dashboards", "admin"):
            if not any((share / "notebooks" / part).glob("*.ipynb")):
                fail(f"no notebooks in {share / 'notebooks' / part}")
        done.append("kernel config and notebooks")
    return done


def main() -> None:
    if len(sys.argv) != 3 or sys.argv[1] not in MODULES:
        raise SystemExit("usage: python -I check.py hub|lab|gateway SHARE")
    for line in check(sys.argv[1], Path(sys.argv[2])):
        print(f"image check: {sys.argv[1]}: {line}")


if __name__ == "__main__":
    main()
