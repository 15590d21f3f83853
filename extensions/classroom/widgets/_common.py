"""Pieces every classroom widget shares: the school header, the error box, Markdown."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from typing import Any

import ipywidgets as w

from .._client import GatewayClient
from .._exceptions import GatewayError

DEFAULT_ACCENT = "#3b6ea8"
_HEX_COLOR = re.compile(r"^#[0-9a-fA-F]{3,8}$")


def accent_color(me: dict[str, Any] | None) -> str:
    """The school's accent colour, if it is a plain hex colour (it ends up in CSS)."""
    color = ((me or {}).get("branding") or {}).get("accent_color")
    return color if isinstance(color, str) and _HEX_COLOR.match(color) else DEFAULT_ACCENT


def fetch_me(client: GatewayClient) -> tuple[dict[str, Any] | None, GatewayError | None]:
    """``/api/me``, or the error that prevented reading it. Quick: used while building."""
    try:
        return client.me(), None
    except GatewayError as error:
        return None, error


class Header(w.HTML):
    """The school's name above a widget, with the widget's own title."""

    def __init__(self, title: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.title = title
        self.update(None)

    def update(self, me: dict[str, Any] | None) -> None:
        me = me or {}
        school = (
            (me.get("branding") or {}).get("page_title")
            or me.get("tenant_display_name")
            or "AI Classroom"
        )
        who = ""
        if me.get("name"):
            who = f"{me['name']}" + (f" · {me['role']}" if me.get("role") else "")
            who = f'<span style="float:right;opacity:.65">{html.escape(who)}</span>'
        self.value = (
            f'<div style="border-left:4px solid {accent_color(me)};padding:2px 10px;'
            f'margin-bottom:4px">{who}<b>{html.escape(school)}</b>'
            f'<span style="opacity:.65"> · {html.escape(self.title)}</span></div>'
        )


class ErrorBox(w.HTML):
    """A problem, said in words; hidden while there is none."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.text = ""
        self.clear()

    def show(
        self, error: BaseException | str, available_models: Iterable[str] | None = None
    ) -> None:
        self.text = describe_error(error, available_models)
        self.value = (
            '<div role="alert" style="border:1px solid #d9534f;border-left-width:4px;'
            'background:rgba(217,83,79,.08);padding:6px 10px;border-radius:3px">'
            f"<b>Problem:</b> {html.escape(self.text)}</div>"
        )
        self.layout.display = None

    def clear(self) -> None:
        self.text = ""
        self.value = ""
        self.layout.display = "none"


def describe_error(
    error: BaseException | str, available_models: Iterable[str] | None = None
) -> str:
    """A sentence for the student: the gateway's explanation, or what broke here."""
    if isinstance(error, str):
        return error
    if isinstance(error, GatewayError):
        return error.explain(available_models)
    return f"Something went wrong inside the widget ({type(error).__name__}: {error})."


def _markdown_renderer() -> Any:
    try:
        from markdown_it import MarkdownIt
    except ImportError:  # pragma: no cover - markdown-it-py comes with rich
        return None
    # html=False: a reply is untrusted text, and raw HTML in it must show as text.
    return MarkdownIt("commonmark", {"html": False, "breaks": True}).enable(
        ["table", "strikethrough"]
    )


_MARKDOWN = _markdown_renderer()


def render_markdown(text: str) -> str:
    """Markdown to HTML that is safe to show: raw HTML in ``text`` is escaped."""
    if _MARKDOWN is None:  # pragma: no cover
        return f'<pre style="white-space:pre-wrap">{html.escape(text)}</pre>'
    rendered: str = _MARKDOWN.render(text)
    return rendered
