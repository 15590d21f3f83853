"""Mistakes in configuration files (tenants, keys), said the way an editor shows them:
``file:line: field 'x': what is wrong``, one line per mistake.

:class:`ConfigFileError` keeps the parts apart as well, so the reload API can answer
with them; the helpers find the line a JSON path or a TOML table entry is on.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Problem:
    text: str
    line: int | None = None
    field: str | None = None
    where: str | None = None  # e.g. "openai[0] (openai-main)"

    def render(self, file: str) -> str:
        parts = [f"{file}:{self.line}" if self.line else file]
        if self.where:
            parts.append(self.where)
        if self.field:
            parts.append(f"field '{self.field}'")
        return ": ".join(parts) + f": {self.text}"


class ConfigFileError(ValueError):
    """A configuration file that cannot be used: which file, which line, which field, why."""

    def __init__(self, file: str, problems: Sequence[Problem] | str, *, line: int | None = None,
                 field: str | None = None, where: str | None = None) -> None:
        self.file = file
        self.problems = ([Problem(problems, line, field, where)] if isinstance(problems, str)
                         else list(problems))
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(problem.render(self.file) for problem in self.problems)

    @property
    def line(self) -> int | None:
        return self.problems[0].line if self.problems else None

    @property
    def field(self) -> str | None:
        return self.problems[0].field if self.problems else None

    def public(self) -> dict[str, Any]:
        return {"file": self.file, "problems": [
            {"line": p.line, "field": p.field, "where": p.where, "problem": p.text}
            for p in self.problems]}


def line_at(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def json_line(text: str, path: Sequence[Any]) -> int | None:
    """The line of the deepest key of ``path`` (``("branding", "accent_color")``) in a JSON
    text, found key by key from the top; list indices are skipped. None if not found."""
    position, found = 0, None
    for part in path:
        if not isinstance(part, str):
            continue
        match = re.compile(r'"' + re.escape(part) + r'"\s*:').search(text, position)
        if match is None:
            break
        position, found = match.end(), match.start()
    return line_at(text, found) if found is not None else None


def toml_table_line(text: str, table: str, index: int, key: str | None = None) -> int | None:
    """The line of ``key`` in the ``index``-th ``[[table]]`` of a TOML text (the table's
    header line when the key is not written in it). None if there is no such table."""
    header = re.compile(r"^\s*\[\[\s*" + re.escape(table) + r"\s*\]\]\s*(#.*)?$")
    any_header = re.compile(r"^\s*\[")
    lines = text.splitlines()
    seen, start = -1, None
    for number, line in enumerate(lines, 1):
        if header.match(line):
            seen += 1
            if seen == index:
                start = number
                break
    if start is None:
        return None
    if key is not None:
        assignment = re.compile(r"^\s*\"?" + re.escape(key) + r"\"?\s*=")
        for number in range(start + 1, len(lines) + 1):
            line = lines[number - 1]
            if any_header.match(line):
                break
            if assignment.match(line):
                return number
    return start
