"""The one way the classroom turns text into HTML: escape everything a user controls.

Text a user controls (prompts, replies, conversation titles and messages, file,
dashboard and load-test names, display names, error messages a vendor sent)
becomes HTML **only** through this module: in widgets, dashboards and admin
notebooks, hub pages, the load-test HTML report. Raw f-string HTML with user
data in it is not allowed anywhere (``docs/safe-views.md`` says why and how)::

    from gateway.safehtml import html, join

    html("<h4>{}</h4>", conversation["title"])          # the title is escaped
    html("<b>{name}</b> {rest}", name=who, rest=html("<i>{}</i>", note))
    join(html("<td>{}</td>", c) for c in cells)          # pieces stay HTML
    html('<a href="{}">{}</a>', link(url), url)          # link(): http(s) or relative only

``html(template, *values)`` formats a *constant* template with every value
escaped, unless the value is itself the result of :func:`html` (a
:class:`Safe` string), so pieces nest without being escaped twice. A format
spec works as in :meth:`str.format` (``{:.3f}``). The values are escaped for
text and for quoted attribute values alike (``<``, ``>``, ``&``, ``"`` and
``'``). Jinja templates (the hub's pages) autoescape the same way.

Plotly draws titles, labels and hover text from a small HTML subset: pass user
text through :func:`escape` there too (plotly shows the entities as the characters).

Plain Python on `markupsafe <https://markupsafe.palletsprojects.com>`_ (Jinja's
own escaping), with no server framework, so the gateway, the hub, the kernel's
widgets and the notebooks share it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from markupsafe import Markup
from markupsafe import escape as _escape

__all__ = ["Safe", "escape", "html", "join", "link"]

Safe = Markup
"""A string that is already HTML (what :func:`html`, :func:`escape` and :func:`join` return)."""

_LINK_SCHEMES = {"http", "https", "mailto", ""}
_IGNORED_LEAD = "".join(map(chr, range(33)))  # C0 controls and space


def escape(value: Any) -> Safe:
    """``value`` as HTML text (``None`` is empty); a :class:`Safe` value is kept as it is."""
    return Markup("") if value is None else _escape(value)


def html(template: str, /, *args: Any, **kwargs: Any) -> Safe:
    """The constant ``template`` with ``{}`` fields filled by escaped values."""
    return Markup(template).format(*args, **kwargs)


def join(parts: Iterable[Any], separator: str = "") -> Safe:
    """Pieces joined into one HTML string; pieces that are not :class:`Safe` are escaped."""
    return Markup(separator).join(parts)


def link(url: Any) -> str:
    """``url`` if it is safe in an ``href`` or ``src`` (http, https, mailto, relative), else ``#``.

    Escaping alone does not stop ``javascript:`` or ``data:`` URLs; this does.
    The result still goes through :func:`html` like any other value.
    """
    text = "" if url is None else str(url)
    # Browsers ignore leading control characters and spaces, and tabs and newlines
    # anywhere in a scheme ("java\tscript:"): so does the check.
    squeezed = "".join(ch for ch in text if ch not in "\t\n\r").lstrip(_IGNORED_LEAD)
    try:
        scheme = urlsplit(squeezed).scheme.lower()
    except ValueError:
        return "#"
    return text.strip() if scheme in _LINK_SCHEMES else "#"
