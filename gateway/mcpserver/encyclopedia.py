"""A small encyclopedia over bundled data (``encyclopedia.json``): look a topic up, or
search every entry for words."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib.resources import files

WORD = re.compile(r"[a-z0-9]+")


@lru_cache(maxsize=1)
def entries() -> dict[str, str]:
    data = json.loads(files("gateway.mcpserver").joinpath("encyclopedia.json").read_text("utf-8"))
    return dict(data["entries"])


def lookup(topic: str) -> str | None:
    """The entry on a topic (case and surrounding words ignored), or None."""
    wanted = " ".join(WORD.findall(topic.lower()))
    known = entries()
    if wanted in known:
        return known[wanted]
    for name, text in known.items():
        if name in wanted or (wanted and wanted in name):
            return text
    return None


def search(query: str, limit: int = 3) -> list[dict[str, str]]:
    """The entries sharing the most words with the query, best first."""
    words = set(WORD.findall(query.lower()))
    scored = []
    for name, text in entries().items():
        score = len(words & set(WORD.findall(f"{name} {text}".lower())))
        if score:
            scored.append((-score, name, text))
    return [{"topic": name, "text": text} for _, name, text in sorted(scored)[:limit]]
