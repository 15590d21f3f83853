"""The reference table of ``docs/tenants.md``, made from the schema in
:mod:`gateway.config.tenants`.

The field descriptions in the pydantic models are the documentation; this
module turns them into a Markdown table. ``python -m hub.tenant_docs`` rewrites
the table in ``docs/tenants.md``; a test fails when the file is out of date or
a key has no description.
"""

from __future__ import annotations

import sys
import typing
from collections.abc import Callable, Iterator
from pathlib import Path

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from gateway.config.tenants import Tenant

DOC = Path(__file__).resolve().parent.parent / "docs" / "tenants.md"
START, END = "<!-- fields:start -->", "<!-- fields:end -->"


def _model_of(annotation: object) -> tuple[type[BaseModel] | None, str]:
    """The nested model of a field and the path segment it adds (``''`` or ``<role>.``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, ""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is dict and len(args) == 2:
        value = args[1]
        if isinstance(value, type) and issubclass(value, BaseModel):
            return value, "<role>."
    return None, ""


def _type_name(annotation: object) -> str:
    text = str(annotation).replace("typing.", "").replace("gateway.config.tenants.", "")
    if isinstance(annotation, type):
        text = annotation.__name__
    text = text.replace("Literal['student', 'teacher', 'admin', 'viewer']", "role")
    return text.replace(" | None", " or null")


def fields(model: type[BaseModel] = Tenant, prefix: str = "") -> Iterator[tuple[str, FieldInfo]]:
    """Every key of the schema as a dotted path, with its field, parents first."""
    for name, info in model.model_fields.items():
        path = prefix + name
        yield path, info
        nested, extra = _model_of(info.annotation)
        if nested is not None:
            yield from fields(nested, f"{path}.{extra}")


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    if info.default_factory is not None:
        return "optional (empty)"
    return f"optional, default `{'null' if info.default is None else info.default}`"


def table() -> str:
    lines = ["| key | type | | meaning |", "| --- | --- | --- | --- |"]
    for path, info in fields():
        description = (info.description or "").replace("|", "\\|")
        kind = _type_name(info.annotation)
        lines.append(f"| `{path}` | {kind} | {_default(info)} | {description} |")
    return "\n".join(lines)


def replace_between(document: str, start: str, end: str, table: str) -> str:
    """``document`` with what is between the ``start`` and ``end`` markers replaced."""
    head, found, rest = document.partition(start)
    if not found:
        raise ValueError(f"{start} is not in the document")
    _, _, tail = rest.partition(end)
    return f"{head}{start}\n{table}\n{end}{tail}"


def rewrite(path: Path, render: Callable[[str], str], what: str) -> int:
    """Write ``render(path's text)`` back to ``path`` (the maintenance commands' main)."""
    path.write_text(render(path.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"rewrote the {what} of {path}")
    return 0


def render(document: str) -> str:
    """``document`` with the table between the markers replaced by the current one."""
    return replace_between(document, START, END, table())


def main() -> int:  # pragma: no cover - maintenance command
    return rewrite(DOC, render, "field table")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
