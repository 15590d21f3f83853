"""The practice switch: send every widget to the free, offline ``mock/`` models.

``classroom.use_mock(True)`` (or the toggle from ``classroom.mock_switch()``)
turns it on for this kernel; ``CLASSROOM_MOCK=1`` in the environment starts
with it on. While it is on, the widgets offer only the practice models and a
call that names a real model is sent to the practice model of the same kind,
so nothing is spent. Code that uses the official SDKs is not affected: there
you choose the model yourself.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from typing import Any

MOCK_ENV = "CLASSROOM_MOCK"

#: The practice model that stands in for each kind of model.
MOCK_MODELS: dict[str, str] = {
    "chat": "mock/echo",
    "embedding": "mock/embed",
    "image": "mock/image",
    "speech": "mock/speech",
    "video": "mock/video",
    "midjourney": "mock/midjourney",
    "music": "mock/music",
}


class MockSwitch:
    """On or off, and who to tell when it changes (held weakly: widgets come and go)."""

    def __init__(self) -> None:
        self._enabled: bool | None = None
        self._lock = threading.Lock()
        self._listeners: list[weakref.WeakMethod[Callable[[bool], Any]]] = []

    @property
    def enabled(self) -> bool:
        if self._enabled is None:
            return os.environ.get(MOCK_ENV, "").strip().lower() in {"1", "true", "yes", "on"}
        return self._enabled

    def set(self, enabled: bool) -> None:
        with self._lock:
            changed = enabled != self.enabled
            self._enabled = bool(enabled)
            listeners = [ref() for ref in self._listeners]
            self._listeners = [ref for ref in self._listeners if ref() is not None]
        if changed:
            for listener in listeners:
                if listener is not None:
                    listener(self._enabled)

    def subscribe(self, method: Callable[[bool], Any]) -> None:
        """Call the bound ``method`` with the new state whenever it changes."""
        with self._lock:
            self._listeners.append(weakref.WeakMethod(method))  # type: ignore[arg-type]


SWITCH = MockSwitch()


def use_mock(enabled: bool = True) -> None:
    """Send every classroom widget to the free practice models (``False`` to stop)."""
    SWITCH.set(enabled)


def mock_enabled() -> bool:
    """Whether the practice switch is on."""
    return SWITCH.enabled


def substitute(model: str, kind: str) -> str:
    """The model to call: ``model`` itself, or its practice stand-in while the switch is on."""
    if not SWITCH.enabled or model.startswith("mock/"):
        return model
    return MOCK_MODELS.get(kind, MOCK_MODELS["chat"])


def mock_switch() -> Any:
    """A toggle button for the practice switch, to put in a notebook cell."""
    import ipywidgets as w

    toggle = w.ToggleButton(
        value=SWITCH.enabled,
        description="Practice mode (mock models)",
        icon="graduation-cap",
        tooltip="On: every widget uses the free mock/ models. Off: the models you pick.",
        layout=w.Layout(width="auto"),
    )

    class _Link:
        # A bound method for the weak subscription, kept alive by the toggle.
        def changed(self, enabled: bool) -> None:
            toggle.value = enabled

    link = _Link()
    toggle._classroom_link = link  # type: ignore[attr-defined]
    SWITCH.subscribe(link.changed)
    toggle.observe(lambda change: SWITCH.set(bool(change["new"])), names="value")
    return toggle
