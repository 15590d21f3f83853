"""Jupyter AI Classroom, the kernel side.

In the classroom every kernel loads this package as an IPython extension, which
points the official SDKs (``openai``, ``anthropic``, ``google-genai``) at the
classroom gateway with your own token: ``OpenAI()`` just works. Outside the hub,
set ``CLASSROOM_GATEWAY_URL`` and ``CLASSROOM_API_TOKEN`` (or call
:func:`configure`) and ``%load_ext classroom``.

Public names:

- ``client``: a ready-made :class:`GatewayClient` (``client.chat(...)``,
  ``client.stream_chat(...)``, ``client.models()``, ``client.catalog()``,
  ``client.embed(...)``, ``client.generate_image(...)``, ``client.speech(...)``,
  ``client.start_job(...)``, ``client.my_usage()``, ``client.history()``, ...);
- the widgets: ``Chat``, ``Playground``, ``Compare``, ``Images``, ``Speech``,
  ``Video``, ``Embeddings``, ``MyUsage``, ``Tools`` (display one in a cell), and
  ``widgets.menu()`` with the ones your school has switched on;
- ``use_mock(True)`` / ``mock_switch()``: send every widget to the free
  practice models;
- ``explain(error_or_code)``: what an error means and what to do next;
- ``configure(url, token)``: point this kernel at a gateway;
- ``GatewayError``: every failure, with ``.code`` and ``.explain()``;
- ``publish``: publish a notebook as a dashboard (teachers);
- ``start_class()`` / ``class_status()``: start the class's labs before the
  lesson and watch them become ready (teachers; :mod:`classroom.classstart`).
"""

from __future__ import annotations

import threading
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from ._config import configure, export_sdk_environment
from ._exceptions import GatewayError
from ._mock import mock_enabled, mock_switch, use_mock

if TYPE_CHECKING:
    from ._catalog import Catalog, ModelInfo
    from ._chat import AsyncChatStream, ChatResult, ChatStream, Usage
    from ._client import DEFAULT_MODEL, GatewayClient
    from ._explainer import Explanation, explain
    from .widgets import (
        Chat,
        Compare,
        Embeddings,
        Images,
        MyUsage,
        Playground,
        Speech,
        Suno,
        Tools,
        Video,
    )

    client: GatewayClient

try:
    __version__ = version("jupyter-ai-classroom")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

# Every kernel loads this package at start, so httpx and ipywidgets are imported
# on first use, not here: a kernel that never calls the gateway starts as fast
# as a plain one.
_LAZY = {
    "AsyncChatStream": "._chat",
    "ChatResult": "._chat",
    "ChatStream": "._chat",
    "Usage": "._chat",
    "DEFAULT_MODEL": "._client",
    "GatewayClient": "._client",
    "Catalog": "._catalog",
    "ModelInfo": "._catalog",
    "Explanation": "._explainer",
    "explain": "._explainer",
    "Chat": ".widgets",
    "Playground": ".widgets",
    "Compare": ".widgets",
    "Images": ".widgets",
    "Speech": ".widgets",
    "Video": ".widgets",
    "Embeddings": ".widgets",
    "MyUsage": ".widgets",
    "Suno": ".widgets",
    "Tools": ".widgets",
    "start_class": ".classstart",
    "class_status": ".classstart",
}
#: Submodules reached as attributes (``classroom.widgets.menu()``, ``classroom.publish``).
_SUBMODULES = {"widgets": ".widgets", "publish": ".publish"}
_client_lock = threading.Lock()


def __getattr__(name: str) -> Any:
    if name == "client":
        # The default client, created on first use; it reads the environment at
        # each request, so it follows configure() and never needs replacing.
        with _client_lock:
            if "client" not in globals():
                from ._client import GatewayClient

                globals()["client"] = GatewayClient()
        return globals()["client"]
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        import importlib

        module = importlib.import_module(_SUBMODULES[name], __name__)
        # ``classroom.publish`` is the function of that name when the module has one.
        value = getattr(module, name, module) if name == "publish" else module
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def load_ipython_extension(ipython: Any) -> None:
    """Called by ``%load_ext classroom`` and by the kernel config at every start.

    Fills in the official SDKs' variables from CLASSROOM_GATEWAY_URL and
    CLASSROOM_API_TOKEN, leaving any that are already set alone; does nothing
    when those two are not set. Makes every call to the gateway say which
    notebook and cell it came from (:mod:`classroom._origin`). Prints nothing.
    """
    from ._origin import install

    export_sdk_environment()
    install(ipython)


__all__ = [
    "DEFAULT_MODEL",
    "AsyncChatStream",
    "Catalog",
    "Chat",
    "ChatResult",
    "ChatStream",
    "Compare",
    "Embeddings",
    "Explanation",
    "GatewayClient",
    "GatewayError",
    "Images",
    "ModelInfo",
    "MyUsage",
    "Playground",
    "Speech",
    "Suno",
    "Tools",
    "Usage",
    "Video",
    "__version__",
    "class_status",
    "client",
    "configure",
    "explain",
    "load_ipython_extension",
    "mock_enabled",
    "mock_switch",
    "publish",
    "start_class",
    "use_mock",
    "widgets",
]
