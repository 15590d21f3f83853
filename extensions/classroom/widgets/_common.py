"""Pieces every classroom widget shares: the school header, the error box, Markdown."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable
from typing import Any

import ipywidgets as w

from gateway.safehtml import Safe, html

from .._client import GatewayClient
from .._exceptions import GatewayError
from .._explainer import Explanation, explain, explain_more

DEFAULT_ACCENT = "#3b6ea8"
_HEX_COLOR = re.compile(r"^#[0-9a-fA-F]{3,8}$")


TENANT_ID = re.compile(r"[a-z][a-z0-9_]{0,39}")


def logo_img(me: dict[str, Any] | None) -> Safe | str:
    """The school's logo, served by the hub (``/hub/classroom/logo/<id>``), inside a lab.

    Outside the hub there is no logo to show; a tenant id that is not a plain id
    never reaches the page.
    """
    base = os.environ.get("JUPYTERHUB_BASE_URL")
    tenant = (me or {}).get("tenant")
    if base is None or not isinstance(tenant, str) or not TENANT_ID.fullmatch(tenant):
        return ""
    return html('<img class="classroom-logo" src="{}" alt="" '
                'style="height:1.4em;vertical-align:middle;margin-right:6px">',
                f"{base.rstrip('/')}/hub/classroom/logo/{tenant}")


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
    """The school's name and colour above a widget, with the widget's own title."""

    def __init__(self, title: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.title = title
        self.practice = False
        self._me: dict[str, Any] | None = None
        self.update(None)

    def update(self, me: dict[str, Any] | None, *, practice: bool | None = None) -> None:
        if me is not None:
            self._me = me
        if practice is not None:
            self.practice = practice
        me = self._me or {}
        school = (
            (me.get("branding") or {}).get("page_title")
            or me.get("tenant_display_name")
            or "AI Classroom"
        )
        who: Safe | str = ""
        if me.get("name"):
            text = f"{me['name']}" + (f" · {me['role']}" if me.get("role") else "")
            who = html('<span style="float:right;opacity:.65">{}</span>', text)
        badge = (
            ' <span title="classroom.use_mock(False) turns it off" style="font-size:80%;'
            'padding:0 6px;border-radius:8px;background:#f0ad4e;color:#222">practice mode: '
            "mock models</span>"
            if self.practice
            else ""
        )
        self.value = html(
            '<div class="classroom-header" style="border-left:4px solid {accent};'
            'padding:2px 10px;margin-bottom:4px">{who}{logo}<b>{school}</b>'
            '<span style="opacity:.65"> · {title}</span>{badge}</div>',
            accent=accent_color(me), who=who, logo=logo_img(me), school=school,
            title=self.title, badge=Safe(badge),
        )


class ErrorBox(w.VBox):
    """A problem, said in words, with what it means and what to do; hidden while there is none.

    ``text`` is the one-sentence explanation; the table from the error explainer
    adds the meaning and the next step, and "Explain more" asks a cheap model.
    """

    def __init__(self, client: GatewayClient | None = None, **kwargs: Any) -> None:
        self.message = w.HTML()
        self.more_button = w.Button(
            description="Explain more", icon="question-circle",
            tooltip="Ask a cheap model to explain this error in more depth",
            layout=w.Layout(width="auto"),
        )
        self.more = w.HTML()
        super().__init__([self.message, self.more_button, self.more], **kwargs)
        self.client = client
        self.text = ""
        self.error: BaseException | str | None = None
        self.explanation: Explanation | None = None
        self._more_thread: threading.Thread | None = None
        self.more_button.on_click(lambda _: self._explain_more_in_background())
        self.clear()

    def show(
        self, error: BaseException | str, available_models: Iterable[str] | None = None
    ) -> None:
        self.error = error
        self.text = describe_error(error, available_models)
        self.explanation = None if isinstance(error, str) else explain(error)
        details: Safe | str = ""
        if self.explanation is not None:
            e = self.explanation
            details = html(
                '<div style="margin-top:4px;font-size:92%"><b>{}</b> '
                "<code>{}</code><br><b>What it means:</b> "
                "{}<br><b>What to do:</b> {}</div>", e.title, e.code, e.meaning, e.todo,
            )
        self.message.value = html(
            '<div role="alert" class="classroom-error" style="border:1px solid #d9534f;'
            'border-left-width:4px;background:rgba(217,83,79,.08);padding:6px 10px;'
            'border-radius:3px"><b>Problem:</b> {}{}</div>', self.text, details,
        )
        can_explain = self.client is not None and isinstance(error, GatewayError)
        self.more_button.layout.display = None if can_explain else "none"
        self.more_button.disabled = False
        self.more.value = ""
        self.layout.display = None

    def clear(self) -> None:
        self.text = ""
        self.error = None
        self.explanation = None
        self.message.value = ""
        self.more.value = ""
        self.layout.display = "none"

    def explain_more(self) -> str:
        """Ask a cheap model about the error shown; the answer is shown and returned."""
        if self.error is None or self.client is None:
            return ""
        self.more_button.disabled = True
        self.more.value = '<div style="opacity:.6;font-style:italic">Asking a model…</div>'
        try:
            answer = explain_more(self.error, self.client)
        except Exception as exc:  # the explainer must never hide the original error
            self.more.value = html(
                '<div style="opacity:.75">Could not ask for more: {}</div>', describe_error(exc)
            )
            return ""
        finally:
            self.more_button.disabled = False
        self.more.value = html(
            '<div class="jp-RenderedHTMLCommon" style="border-left:3px solid #999;'
            'padding-left:8px">{}</div>', render_markdown(answer)
        )
        return answer

    def _explain_more_in_background(self) -> None:
        self._more_thread = threading.Thread(
            target=self.explain_more, name="classroom-explain", daemon=True
        )
        self._more_thread.start()


def describe_error(
    error: BaseException | str, available_models: Iterable[str] | None = None
) -> str:
    """A sentence for the student: the gateway's explanation, or what broke here."""
    if isinstance(error, str):
        return error
    if isinstance(error, GatewayError):
        return error.explain(available_models)
    if isinstance(error, ValueError):
        return str(error)  # the widget's own words about what to fill in
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


def render_markdown(text: str) -> Safe:
    """Markdown to HTML that is safe to show.

    Raw HTML in ``text`` is escaped, and markdown-it refuses ``javascript:``,
    ``vbscript:``, ``file:`` and (but for raster images) ``data:`` links.
    """
    if _MARKDOWN is None:  # pragma: no cover
        return html('<pre style="white-space:pre-wrap">{}</pre>', text)
    return Safe(_MARKDOWN.render(text))
