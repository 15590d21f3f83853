"""Code that runs inside a user's lab (imported by jupyter_server, not by the hub).

Kept free of JupyterHub imports so a lab loads it quickly.
"""

from __future__ import annotations

from typing import Any

from tornado import web

from gateway.contract import PUBLISHED_DIR as PUBLISHED


def refuse_save_in_published(model: Any = None, path: str = "", **_: Any) -> None:
    """``ContentsManager.pre_save_hook``: ``~/published`` is the school's, not yours.

    The folder holds the dashboards teachers published; the files are read-only
    on disk too, but a lab running as root could still write them.
    """
    parts = [p for p in str(path).replace("\\", "/").split("/") if p]
    if parts and parts[0] == PUBLISHED:
        raise web.HTTPError(
            403,
            "~/published is read-only: it holds the dashboards published to your school. "
            "Save a copy in your own folder to change it.",
        )
