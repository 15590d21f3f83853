"""What a lab finds in its home: the lessons, its role's notebooks, and ``~/published``.

Everyone gets ``~/lessons`` (the repository's, and those the school's teachers
published, ``<published folder>/lessons``); a teacher also gets ``~/dashboards``, an admin
``~/admin`` and ``~/dashboards`` (:data:`ROLE_FOLDERS`, copied from the
repository's ``notebooks/`` by the spawner's ``role_notebooks``). Students get
neither. Like the lessons, these are copied file by file and never over an
edited copy.

Plain Python without JupyterHub imports, because with isolated labs it runs
as the student's own OS user, never as root inside a folder the student
controls (a student could plant links there to make root write elsewhere)::

    python -m hub.homes --home <home> [--lessons <dir>] [--folder <dir> ...] [--published <folder>]
                        [--class-lessons < {"name.ipynb": "<notebook JSON>", ...}]

The lessons published to the user's classes are in a folder labs cannot read; the
hub reads them and hands them over on stdin (``--class-lessons``).

prints a JSON report ``{"copied": [...], "linked": ..., "warnings": [...]}``.
The spawner calls the functions directly when labs share the hub's user.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from gateway.contract import LESSONS_DIR as LESSONS
from gateway.contract import PUBLISHED_DIR as PUBLISHED

ROLE_FOLDERS: dict[str, tuple[str, ...]] = {
    "teacher": ("dashboards",),
    "admin": ("admin", "dashboards"),
}
"""The folders of ``notebooks/`` each role finds in its home, besides the lessons."""


def copy_missing(source: Path, target: Path) -> list[Path]:
    """Copy files of ``source`` that ``target`` lacks; return what was copied.

    Existing files are never touched, so a student's edits survive and new
    lessons still arrive. Hidden entries, caches and symlinks are skipped, and
    a symlink in ``target`` is never followed.
    """
    copied: list[Path] = []
    if not source.is_dir() or target.is_symlink():
        return copied
    target.mkdir(parents=True, exist_ok=True)
    for entry in sorted(source.iterdir()):
        if entry.name.startswith(".") or entry.name == "__pycache__" or entry.is_symlink():
            continue
        destination = target / entry.name
        if entry.is_dir():
            if destination.is_symlink() or (destination.exists() and not destination.is_dir()):
                continue
            copied.extend(copy_missing(entry, destination))
        elif entry.is_file() and not destination.exists() and not destination.is_symlink():
            shutil.copy2(entry, destination)
            copied.append(destination)
    return copied


def seed_folder(source: Path, home: Path, name: str | None = None) -> tuple[list[Path], list[str]]:
    """Copy new files of ``source`` into ``home/<name>`` (default: the source's own name)."""
    target = home / (name or source.name)
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        return [], [f"not copying {source.name}: {target} is not a directory"]
    return copy_missing(source, target), []


def seed_lessons(lessons_dir: Path, home: Path) -> tuple[list[Path], list[str]]:
    """Copy new lesson files into ``home/lessons``; return them and any warnings."""
    return seed_folder(lessons_dir, home, LESSONS)


def seed_school_lessons(folder: Path, home: Path) -> tuple[list[Path], list[str]]:
    """Copy lessons the school's teachers published (``<folder>/lessons``) into ``~/lessons``."""
    if not (folder / LESSONS).is_dir():
        return [], []
    return seed_folder(folder / LESSONS, home, LESSONS)


def write_missing(files: dict[str, bytes], home: Path) -> tuple[list[Path], list[str]]:
    """Write the lessons ``files`` (name → content: a class's, handed over by the hub or the
    gateway) that ``~/lessons`` lacks; never over a file, never through a link."""
    target = home / LESSONS
    if not files:
        return [], []
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        return [], [f"not copying class lessons: {target} is not a directory"]
    target.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, content in sorted(files.items()):
        if "/" in name or name.startswith(".") or not name.endswith(".ipynb"):
            continue
        destination = target / name
        if destination.exists() or destination.is_symlink():
            continue
        try:  # O_EXCL: never over a file (or a link) made meanwhile
            fd = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        except OSError:
            continue
        with os.fdopen(fd, "wb") as file:
            file.write(content)
        written.append(destination)
    return written, []


def link_published(home: Path, folder: Path) -> tuple[bool, list[str]]:
    """Point ``home/published`` at ``folder``; return whether it links there, and warnings."""
    link = home / PUBLISHED
    if link.is_symlink():
        if os.readlink(link) == str(folder):
            return True, []
        link.unlink()  # the user moved school
    elif link.exists():
        return False, [f"not linking published dashboards: {link} already exists"]
    link.symlink_to(folder, target_is_directory=True)
    return True, []


def prepare(home: Path, lessons: Path | None, published: Path | None,
            folders: list[Path] | None = None,
            given: dict[str, bytes] | None = None) -> dict[str, object]:
    """Seed the lessons and the role's folders, link the published folder, write the class
    lessons ``given``; the CLI's report."""
    copied: list[Path] = []
    warnings: list[str] = []
    linked = False
    if lessons is not None:
        copied, problems = seed_lessons(lessons, home)
        warnings += problems
    for folder in folders or []:
        more, problems = seed_folder(folder, home)
        copied += more
        warnings += problems
    if published is not None:
        linked, problems = link_published(home, published)
        more, others = seed_school_lessons(published, home)
        copied, warnings = copied + more, warnings + problems + others
    if given:
        more, problems = write_missing(given, home)
        copied, warnings = copied + more, warnings + problems
    return {"copied": [str(p) for p in copied], "linked": linked, "warnings": warnings}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hub.homes", description=__doc__)
    parser.add_argument("--home", required=True)
    parser.add_argument("--lessons")
    parser.add_argument("--folder", action="append", default=[],
                        help="another folder copied into the home under its own name")
    parser.add_argument("--published")
    parser.add_argument("--class-lessons", action="store_true",
                        help="read the user's class lessons from stdin: JSON {name: text}")
    args = parser.parse_args(argv)
    given = ({name: str(text).encode() for name, text in json.load(sys.stdin).items()}
             if args.class_lessons else None)
    report = prepare(
        Path(args.home),
        Path(args.lessons) if args.lessons else None,
        Path(args.published) if args.published else None,
        [Path(f) for f in args.folder],
        given,
    )
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
