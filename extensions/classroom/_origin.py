"""Every call to the gateway says which notebook and which cell it came from.

The gateway records it on the run, so teachers see exactly who ran which lesson
and how far (the last cell that called a model). Three headers, sent only to the
gateway (``CLASSROOM_GATEWAY_URL``), never to any other host:

- ``X-Classroom-Notebook``: this kernel's notebook, relative to your home
  (``lessons/01_first_chat.ipynb``), percent-encoded. jupyter_server gives every
  kernel it starts for a notebook its path in ``JPY_SESSION_NAME``;
- ``X-Classroom-Cell``: the id of the cell running now (JupyterLab sends it with
  each execution; IPython hands it to ``pre_run_cell``);
- ``X-Classroom-Cell-Position``: ``7/12``, that cell's place among the notebook's
  code cells as last saved.

How: the extension hooks the HTTP libraries the official SDKs send with, at the one
method every request passes through, so student code needs no change: ``httpx``
(``openai``, ``google-genai`` and the classroom client) and its fork ``httpx2``
(``anthropic``) at ``Client.send`` / ``AsyncClient.send``, and ``aiohttp``
(``google-genai``'s async calls) at ``ClientSession._request``. Each is hooked when
it is first imported, so a kernel that never calls a model pays for importing none.

Calls made outside a running cell (a widget's button, a thread still running
after its cell ended) carry the notebook only. These are claims by your own
kernel; the gateway bounds them and never trusts them as who you are.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any
from urllib.parse import quote

from gateway import contract

from ._config import gateway_settings

NOTEBOOK_HEADER = contract.NOTEBOOK_HEADER
CELL_HEADER = contract.CELL_HEADER
POSITION_HEADER = contract.POSITION_HEADER
SESSION_VAR = "JPY_SESSION_NAME"

_running: dict[str, str | None] = {"cell": None}
_outline_cache: dict[str, tuple[float, list[str]]] = {}
_outline_lock = threading.Lock()


def notebook_path(environ: dict[str, str] | None = None, home: Path | None = None) -> str | None:
    """This kernel's notebook relative to the home (``lessons/01.ipynb``), or None."""
    env = os.environ if environ is None else environ
    session = env.get(SESSION_VAR, "").strip()
    if not session:
        return None
    path = Path(session)
    if path.is_absolute():
        try:
            return path.relative_to(home or Path.home()).as_posix()
        except ValueError:
            return path.as_posix().lstrip("/")
    return path.as_posix()


def code_cells(notebook: Path) -> list[str]:
    """The ids of the notebook's code cells as saved (cached while the file is unchanged)."""
    key = str(notebook)
    try:
        mtime = notebook.stat().st_mtime
    except OSError:
        return []
    with _outline_lock:
        cached = _outline_cache.get(key)
        if cached and cached[0] == mtime:
            return cached[1]
    try:
        content = json.loads(notebook.read_bytes())
        ids = [str(cell.get("id", "")) for cell in content.get("cells", [])
               if isinstance(cell, dict) and cell.get("cell_type") == "code"]
    except (OSError, ValueError, AttributeError):
        ids = []
    with _outline_lock:
        _outline_cache[key] = (mtime, ids)
    return ids


def origin_headers() -> dict[str, str]:
    """The headers for a call made now (empty outside a notebook's kernel)."""
    path = notebook_path()
    if path is None:
        return {}
    headers = {NOTEBOOK_HEADER: quote(path, safe="/")}
    cell = _running["cell"]
    if cell:
        headers[CELL_HEADER] = cell
        session = Path(os.environ[SESSION_VAR])
        full = session if session.is_absolute() else Path.home() / session
        ids = code_cells(full)
        if cell in ids:
            headers[POSITION_HEADER] = f"{ids.index(cell) + 1}/{len(ids)}"
    return headers


# -- the cell running now, from IPython's events ------------------------------------------

def _pre_run_cell(info: Any) -> None:
    _running["cell"] = getattr(info, "cell_id", None) or None


def _post_run_cell(result: Any) -> None:
    _running["cell"] = None


def watch_cells(ipython: Any) -> None:
    """Follow the running cell's id (idempotent: ``%reload_ext`` registers once)."""
    events = ipython.events
    for name, callback in (("pre_run_cell", _pre_run_cell), ("post_run_cell", _post_run_cell)):
        if callback not in events.callbacks[name]:
            events.register(name, callback)


# -- the hooks on the HTTP libraries ------------------------------------------------------

def _for_gateway(url: Any) -> bool:
    base = gateway_settings()[0]
    if not base:
        return False
    target = str(url)
    return target == base or target.startswith(base + "/")


def _add_headers(request: Any) -> None:
    if not _for_gateway(request.url):
        return
    for name, value in origin_headers().items():
        if name not in request.headers:
            request.headers[name] = value


def hook_httpx(httpx: Any) -> None:
    """Add the origin headers to every request ``httpx`` (or its fork ``httpx2``, which the
    anthropic SDK uses) sends to the gateway; once per module."""
    if getattr(httpx, "_classroom_origin", False):
        return
    sync_send, async_send = httpx.Client.send, httpx.AsyncClient.send

    def send(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        _add_headers(request)
        return sync_send(self, request, *args, **kwargs)

    async def asend(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        _add_headers(request)
        return await async_send(self, request, *args, **kwargs)

    send.__wrapped__ = sync_send  # type: ignore[attr-defined]
    asend.__wrapped__ = async_send  # type: ignore[attr-defined]
    httpx.Client.send = send
    httpx.AsyncClient.send = asend
    httpx._classroom_origin = True


def hook_aiohttp(aiohttp: Any) -> None:
    """The same for ``aiohttp`` (google-genai's async calls, when it is installed):
    ``ClientSession._request`` is where every request method of a session ends."""
    session = aiohttp.ClientSession
    if getattr(session, "_classroom_origin", False):
        return
    request = session._request

    async def _request(self: Any, method: str, url: Any, *args: Any, **kwargs: Any) -> Any:
        if _for_gateway(url):
            extra = origin_headers()
            if extra:
                headers = dict(kwargs.get("headers") or {})
                for name, value in extra.items():
                    headers.setdefault(name, value)
                kwargs["headers"] = headers
        return await request(self, method, url, *args, **kwargs)

    _request.__wrapped__ = request  # type: ignore[attr-defined]
    session._request = _request
    session._classroom_origin = True


HOOKS = {"httpx": hook_httpx, "httpx2": hook_httpx, "aiohttp": hook_aiohttp}


class _HookOnImport(importlib.abc.MetaPathFinder):
    """Hooks each HTTP library right after its first import, whoever imports it."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname not in HOOKS:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _HookedLoader(spec.loader)
                return spec
        return None


class _HookedLoader(importlib.abc.Loader):
    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self.loader.exec_module(module)
        HOOKS[module.__name__](module)
        if all(name in sys.modules for name in HOOKS) and _finder in sys.meta_path:
            sys.meta_path.remove(_finder)


_finder = _HookOnImport()


def install(ipython: Any | None = None) -> None:
    """Send the origin headers from this kernel: follow cells, hook the HTTP libraries
    already imported now and the others when they are imported."""
    if ipython is not None:
        watch_cells(ipython)
    for name, hook in HOOKS.items():
        if name in sys.modules:
            hook(sys.modules[name])
    if not all(name in sys.modules for name in HOOKS) and _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)
