"""The classroom's notebook widgets (ipywidgets 8), one module each.

``Chat``, ``Playground``, ``Compare``, ``Images``, ``Speech``, ``Video``,
``Embeddings``, ``MyUsage``, ``Suno`` and ``Tools``. A widget whose feature your school has not
switched on shows why instead of its controls; :func:`available` lists the
ones you can use, and :func:`menu` shows buttons for them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .._client import GatewayClient
    from .chat import Chat
    from .compare import Compare
    from .embeddings import Embeddings
    from .images import Images
    from .playground import Playground
    from .speech import Speech
    from .suno import Suno
    from .tools import Tools
    from .usage import MyUsage
    from .video import Video

#: widget name → (module, feature)
WIDGETS = {
    "Chat": (".chat", "chat"),
    "Playground": (".playground", "playground"),
    "Compare": (".compare", "compare"),
    "Images": (".images", "images"),
    "Speech": (".speech", "speech"),
    "Video": (".video", "video"),
    "Embeddings": (".embeddings", "embeddings"),
    "MyUsage": (".usage", "usage"),
    "Suno": (".suno", "music"),
    "Tools": (".tools", "chat"),
}


def __getattr__(name: str) -> Any:
    if name in WIDGETS:
        value = getattr(importlib.import_module(WIDGETS[name][0], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def available(client: GatewayClient | None = None) -> list[str]:
    """The widgets your school has switched on (all of them if that cannot be read)."""
    from ._base import feature_refusal
    from ._common import fetch_me

    if client is None:
        from .. import client as default_client

        client = default_client
    me, _ = fetch_me(client)
    return [name for name, (_, feature) in WIDGETS.items()
            if feature_refusal(me, feature, name) is None]


def menu(client: GatewayClient | None = None) -> Any:
    """Buttons for the widgets you can use; a click opens one below."""
    import ipywidgets as w
    from IPython.display import display

    out = w.Output()
    buttons = []
    for name in available(client):
        button = w.Button(description=name, layout=w.Layout(width="auto"))

        def open_widget(_: Any, name: str = name) -> None:
            out.clear_output()
            with out:
                display(__getattr__(name)(client=client))

        button.on_click(open_widget)
        buttons.append(button)
    return w.VBox([w.HBox(buttons, layout=w.Layout(flex_flow="row wrap")), out])


__all__ = ["Chat", "Compare", "Embeddings", "Images", "MyUsage", "Playground", "Speech",
           "Suno", "Tools", "Video", "available", "menu"]
