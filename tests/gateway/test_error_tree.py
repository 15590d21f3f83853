"""The error tree drawn in gateway/errors.py's docstring is the real class tree.

Each line names a class, its HTTP status and its stable ``code``; its indentation
says which class it derives from. A class added, moved or re-coded without the
drawing (or the other way round) fails here.
"""

from __future__ import annotations

import inspect
import re

from gateway import errors

LINE = re.compile(r"^(?P<indent>[ │├└─]*)(?P<name>[A-Z]\w+)\s+(?P<status>\d{3}) (?P<code>[a-z_]+)")


def drawn_tree() -> list[tuple[str, str | None, int, str]]:
    """``(class, parent, status, code)`` for each line of the drawing, top down."""
    rows: list[tuple[str, str | None, int, str]] = []
    stack: list[tuple[int, str]] = []
    for line in (errors.__doc__ or "").splitlines():
        match = LINE.match(line)
        if not match:
            continue
        depth = len(match["indent"])
        while stack and stack[-1][0] >= depth:
            stack.pop()
        rows.append((match["name"], stack[-1][1] if stack else None, int(match["status"]),
                     match["code"]))
        stack.append((depth, match["name"]))
    return rows


def real_classes() -> dict[str, type[errors.ClassroomError]]:
    return {name: cls for name, cls in vars(errors).items()
            if inspect.isclass(cls) and issubclass(cls, errors.ClassroomError)}


def test_the_drawing_names_every_error_class_once():
    names = [name for name, _, _, _ in drawn_tree()]
    assert len(names) == len(set(names))
    assert sorted(names) == sorted(real_classes())


def test_each_drawn_class_has_the_drawn_parent_status_and_code():
    classes = real_classes()
    for name, parent, status, code in drawn_tree():
        cls = classes[name]
        base = cls.__bases__[0]
        assert (base.__name__ if parent else base) == (parent or Exception), name
        assert (cls.status, cls.code) == (status, code), name


def test_no_error_class_is_defined_outside_the_tree():
    import gateway.edge.app  # noqa: F401 - loads every module a running gateway uses

    def subclasses(cls: type) -> set[type]:
        found = set(cls.__subclasses__())
        for sub in list(found):
            found |= subclasses(sub)
        return found

    outside = {c.__module__ + "." + c.__qualname__ for c in subclasses(errors.ClassroomError)
               if c.__module__.startswith("gateway.") and c.__module__ != errors.__name__}
    assert outside == set()
