"""The classroom's notebook widgets (ipywidgets 8)."""

from __future__ import annotations

from .chat import Chat

__all__ = ["Chat"]
