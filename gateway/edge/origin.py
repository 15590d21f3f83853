"""Where a call came from inside a lab: the notebook and the cell that made it.

The classroom kernel extension sends two headers on every request to the gateway,
from the official SDKs as from the widgets (:mod:`classroom._origin`):

- ``X-Classroom-Notebook``: the kernel's session path relative to the lab's root
  (``lessons/01_first_chat.ipynb``), percent-encoded (UTF-8) so that any file name
  survives an HTTP header;
- ``X-Classroom-Cell``: the id of the executing cell (nbformat 4.5 cell ids, sent by
  JupyterLab in each ``execute_request``);
- ``X-Classroom-Cell-Position``: ``7/12``, that cell's place among the notebook's code
  cells as saved in the lab (1-based), so that "how far" needs no copy of the lesson.

They are recorded on the run (``runs.notebook``, ``runs.cell``) so that lesson
progress is exact (:mod:`gateway.history.progress`). They are *claims* by the
caller's own kernel, so they are never identity and never authorise anything: a
student can send any value and learns nothing and gains nothing by it. They are
bounded here (a value that is not a plain relative path or a cell id is dropped,
not an error: an odd file name must never fail a student's call), and, being text
a user controls, escaped wherever they become HTML (:mod:`gateway.safehtml`).

The edge of the app reads them once per request (:func:`origin_of_scope`) and
keeps them in a context variable for the request's task and what it starts, so
every door (OpenAI, Anthropic and Google faces, media, jobs, the fast chat path)
records them through the one place rows are started, :meth:`gateway.services.calls.Calls.start`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from gateway import contract

NOTEBOOK_HEADER = contract.NOTEBOOK_HEADER.lower()  # as the ASGI scope carries them
CELL_HEADER = contract.CELL_HEADER.lower()
POSITION_HEADER = contract.POSITION_HEADER.lower()
MAX_CELLS = 10_000
MAX_NOTEBOOK_CHARS = 255  # runs.notebook is String(255)
MAX_HEADER_CHARS = 2048  # the encoded header; anything longer is not a path of ours
MAX_DEPTH = 16
# nbformat 4.5: "^[a-zA-Z0-9-_]+$", 1 to 64 characters.
_CELL_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class Origin:
    notebook: str | None = None
    cell: str | None = None
    position: int | None = None  # 1-based, among the notebook's code cells
    cells: int | None = None  # the notebook's code cells


NOWHERE = Origin()
_WANTED = (NOTEBOOK_HEADER.encode(), CELL_HEADER.encode(), POSITION_HEADER.encode())
_current: ContextVar[Origin] = ContextVar("classroom_origin", default=NOWHERE)


def clean_notebook(value: str | None) -> str | None:
    """The notebook path from its header, normalised, or None when it is not a usable one.

    Kept: a relative POSIX path of at most 16 parts and 255 characters, with no
    control or format characters, no ``..`` and no empty parts (``./`` and a
    leading ``/`` are removed). Anything else (HTML is allowed: it is a legal
    file name, and it is escaped where it is shown) is still text, never markup.
    """
    if not value or len(value) > MAX_HEADER_CHARS:
        return None
    try:
        path = unquote(value.strip(), errors="strict")
    except UnicodeDecodeError:
        return None
    path = unicodedata.normalize("NFC", path)
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp") for ch in path):
        return None
    if "\\" in path:
        return None
    parts = [part for part in path.strip("/").split("/") if part != "."]
    if not parts or len(parts) > MAX_DEPTH or any(p in ("", "..") or p != p.strip()
                                                  for p in parts):
        return None
    cleaned = "/".join(parts)
    return cleaned if len(cleaned) <= MAX_NOTEBOOK_CHARS else None


def clean_cell(value: str | None) -> str | None:
    """The cell id from its header, or None when it is not an nbformat cell id."""
    if not value:
        return None
    value = value.strip()
    return value if _CELL_ID.fullmatch(value) else None


def clean_position(value: str | None) -> tuple[int, int] | None:
    """``(position, cells)`` from ``"7/12"``, or None unless 1 <= position <= cells <= 10000."""
    if not value:
        return None
    position, slash, cells = value.strip().partition("/")
    if not (slash and position.isascii() and position.isdigit() and cells.isascii()
            and cells.isdigit() and len(position) <= 5 and len(cells) <= 5):
        return None
    where, total = int(position), int(cells)
    return (where, total) if 1 <= where <= total <= MAX_CELLS else None


def origin_of(headers: Mapping[str, str]) -> Origin:
    """The origin claimed by a request's (lower-case) headers; a cell only with a notebook,
    a position only with a cell."""
    notebook = clean_notebook(headers.get(NOTEBOOK_HEADER))
    if notebook is None:
        return NOWHERE
    cell = clean_cell(headers.get(CELL_HEADER))
    place = clean_position(headers.get(POSITION_HEADER)) if cell else None
    return Origin(notebook, cell, *(place or (None, None)))


def origin_of_scope(scope: Mapping[str, Any]) -> Origin:
    """The origin claimed by an ASGI request (the first of each header, as Starlette reads)."""
    wanted: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", ()):
        if raw_name in _WANTED:
            wanted.setdefault(raw_name.decode("latin-1"), raw_value.decode("latin-1"))
    return origin_of(wanted) if wanted else NOWHERE


def current_origin() -> Origin:
    """The origin of the request being answered (``NOWHERE`` outside a request)."""
    return _current.get()


@contextmanager
def calls_from(origin: Origin) -> Iterator[None]:
    """Calls started inside this block (and tasks it starts) record ``origin``."""
    token = _current.set(origin)
    try:
        yield
    finally:
        _current.reset(token)
