"""Published dashboards: one folder of notebooks per school, ``<data dir>/published/<tenant>/``.

Lessons a teacher publishes go to ``<tenant>/lessons/`` beside them; each lab of
the school copies new ones into ``~/lessons`` at its start (:mod:`hub.homes`),
and ``classroom.lessons.update()`` does so in a running lab.

A lesson can go to one class instead of the whole school. A class is a JupyterHub
group of the school named ``class-<tenant>-<label>`` (:func:`class_group`; made and
filled in the hub's admin panel like any group). Its lessons live in
``<tenant>/classes/<label>/``, which labs cannot read (root-only where labs are
isolated): the hub hands them to the lab of each member at its start, and the
gateway serves them to members only (``GET /api/lessons/published/<name>/notebook``).

Teachers publish with ``classroom.publish("my_dashboard.ipynb")`` (through
``POST /api/dashboards/published``); every lab of that school sees the folder
read-only at ``~/published`` (the hub's spawner links it), and the hub's
*Dashboards* page links each one to ``/hub/user-redirect/voila/render/published/<name>``,
so each viewer runs it in their own server with their own rights.

Plain Python, shared by the gateway (writes) and the hub (lists).

On disk the folder is read-only for labs. Run as root (labs isolated, see
docs/isolation.md), the writer is the only one with write access anyway: a
new school folder is made 0700, and the hub's spawner opens it to the school's
group only (``root:clsg-<tenant>``, 2750), a mode left alone here. Run as the
labs' own user, the folder is 0555 and opened (0755) just for a write.
"""

from __future__ import annotations

import json
import os
import re
import stat
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from gateway.contract import (
    CLASS_GROUP_PREFIX,
    CLASSES_DIR,
    LESSONS_DIR,
    PUBLISHED_DIR,
    TENANT_ID,
)

_LABEL = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
MAX_NOTEBOOK_BYTES = 5 * 1024 * 1024
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._()-]{0,99}\.ipynb$")
_TENANT = TENANT_ID
# Writers open a school's folder for a moment; one writer at a time keeps it closed after.
_writing = threading.Lock()


class PublishError(ValueError):
    """A dashboard that cannot be published; the message says why."""


@dataclass(frozen=True)
class Dashboard:
    name: str
    title: str
    modified: float
    size: int


def clean_name(name: str) -> str:
    """The file name a dashboard is published under (``.ipynb`` added when missing)."""
    base = str(name).strip()
    if "/" in base or "\\" in base:
        raise PublishError(f"{name!r} is a path; give the dashboard's file name only.")
    if base and not base.endswith(".ipynb"):
        base += ".ipynb"
    if not _NAME.fullmatch(base):
        raise PublishError(
            f"{name!r} is not a usable dashboard name: use letters, digits, spaces, "
            "'.', '_', '-' or '()', at most 100 characters, ending in .ipynb."
        )
    return base


def class_group(tenant: str, label: str) -> str:
    """The JupyterHub group of one class of a school: ``class-<tenant>-<label>``."""
    return f"{CLASS_GROUP_PREFIX}{tenant}-{label}"


def clean_class(tenant: str, value: str) -> str:
    """The class label from ``7b`` or ``class-<tenant>-7b``; :class:`PublishError` if not one."""
    label = value.strip().removeprefix(class_group(tenant, ""))
    if not _LABEL.fullmatch(label) or label.startswith(CLASS_GROUP_PREFIX):  # another school's
        raise PublishError(
            f"{value!r} is not a class of {tenant}: name its group class-{tenant}-"
            + "<label> (lower-case letters, digits, '_' or '-', at most 40) or give the label."
        )
    return label


def classes_of(groups: object, tenant: str) -> list[str]:
    """The labels of the classes of ``tenant`` among hub ``groups`` (names or group objects)."""
    prefix = class_group(tenant, "")
    labels = []
    for group in groups or ():  # type: ignore[attr-defined]
        name = str(getattr(group, "name", group))
        if name.startswith(prefix) and _LABEL.fullmatch(name.removeprefix(prefix)):
            labels.append(name.removeprefix(prefix))
    return sorted(set(labels))


def school_dir(data_dir: Path, tenant: str, folder: str | None = None,
               klass: str | None = None) -> Path:
    """The school's published folder, its ``folder`` (``lessons``) inside it, or with
    ``klass`` that class's lessons (``classes/<label>``)."""
    if not _TENANT.fullmatch(tenant):
        raise PublishError(f"{tenant!r} is not a school id.")
    if folder not in (None, LESSONS_DIR):
        raise PublishError(f"{folder!r} is not a published folder.")
    top = Path(data_dir) / PUBLISHED_DIR / tenant
    if klass is not None:
        if folder != LESSONS_DIR:
            raise PublishError("Only lessons are published to a class; dashboards go to the "
                               "whole school.")
        return top / CLASSES_DIR / clean_class(tenant, klass)
    return top / folder if folder else top


def notebook_title(content: dict) -> str:
    """The first Markdown heading of a notebook, else ''."""
    for cell in content.get("cells", []):
        if cell.get("cell_type") != "markdown":
            continue
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        for line in text.splitlines():
            if line.startswith("#"):
                return line.lstrip("#").strip()[:200]
    return ""


def check_notebook(raw: bytes | str) -> dict:
    """The notebook as JSON, or :class:`PublishError` when it is not one."""
    if len(raw) > MAX_NOTEBOOK_BYTES:
        raise PublishError(f"The notebook is larger than {MAX_NOTEBOOK_BYTES // 2**20} MiB.")
    try:
        content = json.loads(raw)
    except ValueError:
        raise PublishError("The file is not a notebook (not JSON).") from None
    if not isinstance(content, dict) or not isinstance(content.get("cells"), list):
        raise PublishError("The file is not a notebook (no cells).")
    if content.get("nbformat") != 4:
        raise PublishError("Only nbformat 4 notebooks can be published.")
    return content


def publish(data_dir: Path, tenant: str, name: str, raw: bytes | str,
            folder: str | None = None, klass: str | None = None) -> Dashboard:
    """Write a notebook into the school's folder (or its ``lessons``, or a class's),
    atomically, read-only."""
    content = check_notebook(raw)
    target_dir = school_dir(data_dir, tenant, folder, klass)
    filename = clean_name(name)
    with _writing:
        return _write(target_dir, filename, raw, content, klass is not None)


class _Opened:
    """The folder writable by us for a moment; a no-op for root (see the module docstring)."""

    def __init__(self, folder: Path, in_class: bool = False) -> None:
        self.folder = folder
        self.in_class = in_class  # ``<school>/classes/<label>``
        self.as_root = os.geteuid() == 0

    def __enter__(self) -> Path:
        if self.in_class:
            return self._class_folder()
        if not self.folder.exists():
            parent = self.folder.parent
            if not self.as_root and self.folder.name == LESSONS_DIR and parent.is_dir():
                parent.chmod(0o755)  # the school's folder is 0555 between writes
                try:
                    self.folder.mkdir(exist_ok=True)
                finally:
                    parent.chmod(0o555)
            self.folder.mkdir(parents=True, exist_ok=True)
            if self.as_root and self.folder.name == LESSONS_DIR:
                # Inside the school's folder: readable by the school, like the folder itself.
                school = self.folder.parent.stat()
                os.chown(self.folder, 0, school.st_gid)
                self.folder.chmod(0o2750)
            elif self.as_root:
                self.folder.chmod(0o700)
        if not self.as_root:
            self.folder.chmod(0o755)
        return self.folder

    def _class_folder(self) -> Path:
        """``<school>/classes/<label>``: root's only (as root), else like the school's folder."""
        classes, school = self.folder.parent, self.folder.parent.parent
        if self.as_root:
            school.mkdir(mode=0o700, parents=True, exist_ok=True)
            for folder in (classes, self.folder):
                folder.mkdir(mode=0o700, exist_ok=True)
                os.chown(folder, 0, 0)
                folder.chmod(0o700)  # never the school's: only the hub and the gateway read it
            return self.folder
        school.mkdir(parents=True, exist_ok=True)
        for folder in (school, classes, self.folder):
            folder.mkdir(exist_ok=True)
            folder.chmod(0o755)
        return self.folder

    def __exit__(self, *exc: object) -> None:
        if self.as_root:
            return
        self.folder.chmod(0o555)
        if self.in_class:
            self.folder.parent.chmod(0o555)
            self.folder.parent.parent.chmod(0o555)


def _write(target_dir: Path, filename: str, raw: bytes | str, content: dict,
           in_class: bool = False) -> Dashboard:
    with _Opened(target_dir, in_class):
        fd, tmp = tempfile.mkstemp(dir=target_dir, prefix=".publish-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(raw.encode() if isinstance(raw, str) else raw)
            os.chmod(tmp, 0o444)
            os.replace(tmp, target_dir / filename)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    info = (target_dir / filename).stat()
    return Dashboard(filename, notebook_title(content), info.st_mtime, info.st_size)


def unpublish(data_dir: Path, tenant: str, name: str, folder: str | None = None,
              klass: str | None = None) -> bool:
    target_dir = school_dir(data_dir, tenant, folder, klass)
    path = target_dir / clean_name(name)
    with _writing:
        if not path.is_file():
            return False
        with _Opened(target_dir, klass is not None):
            path.unlink()
    return True


def list_dashboards(data_dir: Path, tenant: str, kind: str | None = None,
                    klass: str | None = None) -> list[Dashboard]:
    """The school's published notebooks (or its published ``lessons``, or a class's), by name."""
    folder = school_dir(data_dir, tenant, kind, klass)
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.iterdir()):
        if not _NAME.fullmatch(path.name):
            continue
        try:
            info = path.lstat()
            if not stat.S_ISREG(info.st_mode):
                continue  # never follow a link out of the folder
            title = notebook_title(json.loads(path.read_bytes()))
        except (OSError, ValueError):
            continue
        found.append(Dashboard(path.name, title, info.st_mtime, info.st_size))
    return found


def list_classes(data_dir: Path, tenant: str) -> list[str]:
    """The classes of the school that have lessons published to them."""
    folder = school_dir(data_dir, tenant) / CLASSES_DIR
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir()
                  if _LABEL.fullmatch(p.name) and p.is_dir() and not p.is_symlink())


def read_published(data_dir: Path, tenant: str, name: str, klass: str | None = None) -> bytes:
    """A published lesson's file (the school's, or ``klass``'s); FileNotFoundError if none."""
    path = school_dir(data_dir, tenant, LESSONS_DIR, klass) / clean_name(name)
    if path.is_symlink() or not path.is_file():
        raise FileNotFoundError(path)
    return path.read_bytes()


def class_lessons(school: Path, tenant: str, groups: object) -> dict[str, bytes]:
    """Every lesson published to a class among ``groups`` (file name → content), read from
    the school's published folder ``school`` (wherever it is mounted)."""
    found: dict[str, bytes] = {}
    for label in classes_of(groups, tenant):
        folder = Path(school) / CLASSES_DIR / label
        if folder.is_symlink() or not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if _NAME.fullmatch(path.name) and path.is_file() and not path.is_symlink():
                found.setdefault(path.name, path.read_bytes())
    return found
