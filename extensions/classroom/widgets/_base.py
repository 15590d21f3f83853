"""What every classroom widget is made of, so they all look and behave alike.

A widget has the school's header, a status line and the error box (with the
error explainer), is switched off when the school has not enabled its
feature (and then says why), follows the practice switch, and does its
gateway calls in a background thread so the kernel stays free. Each public
action also has a method that waits for the result, for lessons and tests.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, ClassVar

import ipywidgets as w

from gateway.safehtml import Safe, html, join

from .._catalog import Catalog
from .._client import GatewayClient
from .._exceptions import GatewayError
from .._mock import SWITCH, mock_enabled
from ._common import ErrorBox, Header, fetch_me

#: The widgets by feature name (``enabled_features`` in the school's settings).
FEATURE_TITLES = {
    "chat": "Chat",
    "playground": "Playground",
    "compare": "Compare",
    "images": "Images",
    "speech": "Speech",
    "video": "Video",
    "embeddings": "Embeddings",
    "usage": "My usage",
    "music": "Suno",
}


def feature_refusal(me: dict[str, Any] | None, feature: str, title: str) -> str | None:
    """Why ``feature`` is not offered to this user, or None when it is."""
    if not me or "enabled_features" not in me:
        return None  # unknown: let the gateway decide at call time
    enabled = list(me.get("enabled_features") or [])
    if feature in enabled:
        return None
    school = me.get("tenant_display_name") or me.get("tenant") or "your school"
    offered = [FEATURE_TITLES[f] for f in enabled if f in FEATURE_TITLES]
    others = f" Widgets you can use: {', '.join(offered)}." if offered else ""
    return (
        f"The {title} widget is not available at {school}: the school has not switched on "
        f"the '{feature}' feature.{others} Ask your teacher if you need it."
    )


class ClassroomWidget:
    """Base of the classroom's widgets; display an instance in a cell to use it."""

    title: ClassVar[str] = "Widget"
    feature: ClassVar[str] = "chat"

    def __init__(self, *, client: GatewayClient | None = None) -> None:
        if client is None:
            from .. import client as default_client

            client = default_client
        self.client = client.with_source("widget")
        self.header = Header(self.title)
        self.status = w.HTML()
        self.error_box = ErrorBox(self.client, layout=w.Layout(width="100%"))
        self.last_error: BaseException | None = None
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._done.set()
        self._catalog: Catalog | None = None

        self.me, self.load_error = fetch_me(self.client)
        self.header.update(self.me, practice=mock_enabled())
        self.disabled_reason = feature_refusal(self.me, self.feature, self.title)
        if self.disabled_reason is not None:
            children: list[w.Widget] = [
                w.HTML(html(
                    '<div class="classroom-disabled" style="padding:6px 10px;border:1px dashed '
                    '#999;border-radius:3px">{}</div>', self.disabled_reason
                ))
            ]
        else:
            children = self._build()
        if self.load_error is not None:
            self.error_box.show(self.load_error)
        self.widget = w.VBox(
            [self.header, *children, self.status, self.error_box],
            layout=w.Layout(width="100%", max_width="1100px"),
        )
        SWITCH.subscribe(self._on_mock_switch)

    # -- for subclasses ------------------------------------------------------------------

    def _build(self) -> list[w.Widget]:
        """The widget's controls and outputs, below the header."""
        return []

    def _controls(self) -> list[w.Widget]:
        """Controls that are disabled while a call is running."""
        return []

    def _refresh_models(self) -> None:
        """Fill the model pickers again (after the practice switch changed)."""

    # -- display ---------------------------------------------------------------------------

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = repr(self)
        return bundle

    def __repr__(self) -> str:
        state = "disabled" if self.disabled_reason else ("busy" if self.busy else "ready")
        return f"<{type(self).__name__} {state}>"

    # -- models ----------------------------------------------------------------------------

    @property
    def catalog(self) -> Catalog:
        """The models the gateway offers (loaded once; an empty catalog if that failed)."""
        if self._catalog is None:
            try:
                self._catalog = self.client.catalog()
            except GatewayError as error:
                self.load_error = self.load_error or error
                self._catalog = Catalog([])
        return self._catalog

    def model_options(self, kind: str) -> list[str]:
        """Model names of ``kind`` for a picker: only practice models in practice mode."""
        return self.catalog.ids(kind, mock_only=mock_enabled())

    def _on_mock_switch(self, enabled: bool) -> None:
        self.header.update(None, practice=enabled)
        if self.disabled_reason is None:
            self._refresh_models()

    @staticmethod
    def _set_options(picker: w.Dropdown, options: list[str], prefer: str | None = None) -> None:
        """Fill a model picker; a model asked for by name stays (the gateway judges it)."""
        current = prefer or picker.value
        options = list(options)
        if prefer and prefer not in options and not mock_enabled():
            options.append(prefer)
        picker.options = options
        if current in options:
            picker.value = current
        elif options:
            picker.value = options[0]

    # -- background work --------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """Whether a call is running."""
        return not self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the running call (if any) to finish; False on timeout."""
        return self._done.wait(timeout)

    def _start(self, work: Callable[[], Any], status: str = "Working…") -> bool:
        """Run ``work`` in a background thread; False if a call is already running."""
        if self.disabled_reason is not None:
            self.error_box.show(self.disabled_reason)
            return False
        with self._lock:
            if self.busy:
                return False
            done = threading.Event()
            self._done = done
        self.last_error = None
        self.error_box.clear()
        self._set_busy(True)
        self.status.value = muted(status)
        threading.Thread(
            target=self._run, args=(work, done), name=f"classroom-{self.feature}", daemon=True
        ).start()
        return True

    def _run(self, work: Callable[[], Any], done: threading.Event) -> None:
        try:
            work()
        except Exception as exc:
            self.last_error = exc
            self.error_box.show(exc, self.catalog.ids() or None)
        finally:
            self.status.value = ""
            self._set_busy(False)
            done.set()

    def _require_enabled(self) -> None:
        """Refuse (in words, shown and raised) when the school has not enabled this widget."""
        if self.disabled_reason is not None:
            self.error_box.show(self.disabled_reason)
            raise RuntimeError(self.disabled_reason)

    def _run_and_wait(self, work: Callable[[], Any], status: str, timeout: float | None) -> None:
        """Start ``work``, wait for it, and raise its error (already shown) if it failed."""
        self.wait(timeout)
        if not self._start(work, status):
            raise RuntimeError(self.disabled_reason or "the widget is busy")
        if not self.wait(timeout):
            raise TimeoutError(f"no result within {timeout} seconds")
        if self.last_error is not None:
            raise self.last_error

    def _set_busy(self, busy: bool) -> None:
        for control in self._controls():
            control.disabled = busy


def muted(text: str) -> Safe:
    return html('<div style="opacity:.6;font-style:italic">{}</div>', text)


def stat_line(*parts: str) -> Safe:
    return html('<div class="classroom-stats" style="font-size:85%;opacity:.7">{}</div>',
                join((p for p in parts if p), " · "))
