"""Publish a dashboard notebook to your school: ``classroom.publish("my_dashboard.ipynb")``.

The notebook is sent to the gateway (``POST /api/dashboards/published``), which
checks that you teach that school, puts a read-only copy in the school's
``published/`` folder and writes an audit entry. Every lab of the school sees
it at ``~/published``; the hub's *Dashboards* page links it to
``/hub/user-redirect/voila/render/published/<name>``, so each viewer runs it
in their own server with their own rights (a student sees their own numbers).

On the command line: ``classroom publish NOTEBOOK [--name NAME] [--tenant ID]``.
Without a gateway (no ``CLASSROOM_GATEWAY_URL``), ``--data-dir`` with
``--tenant`` copies into ``<data dir>/published/<tenant>/`` directly and notes
it in ``published/publish.log`` (for administrators on the server).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._config import gateway_settings
from ._exceptions import GatewayError

PUBLISH_PATH = "/api/dashboards/published"


@dataclass(frozen=True)
class Published:
    """What was published, and where people open it."""

    name: str
    tenant: str
    title: str
    url: str

    def _repr_html_(self) -> str:
        from gateway.safehtml import html, link

        return html('Published <b>{}</b> to {}: <a href="{}" target="_blank">{}</a>',
                    self.title or self.name, self.tenant, link(self.url), self.url)


def _read_notebook(path: Path) -> dict[str, Any]:
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GatewayError(f"There is no notebook {str(path)!r}.", code="not_found") from None
    except (OSError, ValueError) as exc:
        raise GatewayError(f"{path} is not a readable notebook: {exc}",
                           code="invalid_request") from None
    if not isinstance(content, dict) or "cells" not in content:
        raise GatewayError(f"{path} is not a notebook.", code="invalid_request")
    # Outputs of the teacher's own run are not shown by Voila and may hold their data.
    for cell in content.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
    return content


def publish(
    notebook: str | Path,
    *,
    name: str | None = None,
    tenant: str | None = None,
    client: Any = None,
) -> Published:
    """Publish ``notebook`` to your school (or ``tenant``, for administrators)."""
    path = Path(notebook).expanduser()
    content = _read_notebook(path)
    if client is None:
        from ._client import GatewayClient

        client = GatewayClient(source="dashboard")
    body: dict[str, Any] = {"name": name or path.name, "notebook": content}
    if tenant:
        body["tenant"] = tenant
    answer = client.post(PUBLISH_PATH, json=body)
    return Published(answer["name"], answer["tenant"], answer.get("title", ""), answer["url"])


def publish_locally(notebook: Path, data_dir: Path, tenant: str, name: str | None = None
                    ) -> Published:
    """Without a gateway: copy into the school's folder and note it in ``publish.log``."""
    from gateway.published import PUBLISHED_DIR, PublishError
    from gateway.published import publish as write

    content = _read_notebook(notebook)
    try:
        dashboard = write(data_dir, tenant, name or notebook.name, json.dumps(content, indent=1))
    except PublishError as exc:
        raise GatewayError(str(exc), code="invalid_request") from None
    log = data_dir / PUBLISHED_DIR / "publish.log"
    with log.open("a", encoding="utf-8") as file:
        file.write(json.dumps({"at": time.time(), "actor": getpass.getuser(), "tenant": tenant,
                               "action": "dashboard.publish", "target": dashboard.name}) + "\n")
    url = f"/hub/user-redirect/voila/render/published/{dashboard.name}"
    return Published(dashboard.name, tenant, dashboard.title, url)


def parser() -> argparse.ArgumentParser:
    """The command's parser (also the source of its section of docs/cli.md)."""
    parser = argparse.ArgumentParser(
        prog="classroom publish",
        description="Publish a dashboard notebook to your school (teachers and admins). "
        "Everyone of the school then finds it on the hub's Dashboards page and at "
        "~/published in their lab.",
    )
    parser.add_argument("notebook", help="the .ipynb file to publish")
    parser.add_argument("--name", help="publish under this file name (default: the file's name)")
    parser.add_argument("--tenant", help="the school (administrators; default: your own)")
    parser.add_argument(
        "--data-dir",
        help="without a gateway: publish straight into this CLASSROOM_DATA_DIR (needs --tenant)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``classroom publish NOTEBOOK [--name NAME] [--tenant ID] [--data-dir DIR]``."""
    try:
        args = parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    url, token = gateway_settings()
    try:
        if args.data_dir and (url is None or token is None):
            if not args.tenant:
                print("classroom publish: error: --data-dir needs --tenant", file=sys.stderr)
                return 2
            done = publish_locally(Path(args.notebook), Path(args.data_dir), args.tenant,
                                   args.name)
        else:
            done = publish(args.notebook, name=args.name, tenant=args.tenant)
    except GatewayError as exc:
        print(f"classroom publish: error: {exc}", file=sys.stderr)
        return 1
    print(f"Published {done.name} to {done.tenant}: open it at {done.url}")
    return 0
