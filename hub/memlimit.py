"""A lab's memory limit, enforced by the kernel: one cgroup per lab (root only).

``Spawner.mem_limit`` (``CLASSROOM_LAB_MEMORY_LIMIT``) is only a hint for most
local spawners. When the hub runs as root and the machine has a writable
memory cgroup hierarchy, each lab gets its own cgroup below the hub's own,
``<hub's cgroup>/classroom-labs/<lab>``, with the limit on memory (and on
memory plus swap, so a lab cannot page its way past it); the lab process
joins it before it starts, and its kernels and terminals, being its children,
count against the same limit. A lab that needs more than its limit has its
largest process (usually the student's kernel) stopped by the kernel's OOM
killer, not the machine. The cgroup is removed when the lab stops.

cgroup v2 (``/sys/fs/cgroup`` with the ``memory`` controller) and v1
(``/sys/fs/cgroup/memory``) are both handled. Without either, or without root,
:func:`lab_cgroup` returns None and the spawner says once that the limit is
not enforced. Plain Python (no JupyterHub import).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
PARENT = "classroom-labs"


class MemoryLimitError(RuntimeError):
    """The cgroup could not be made or joined."""


def _own_path(version: int, proc_cgroup: str) -> str:
    """This process's cgroup path in the hierarchy of ``version``."""
    for line in proc_cgroup.splitlines():
        number, controllers, path = line.split(":", 2)
        if version == 2 and number == "0" and controllers == "":
            return path
        if version == 1 and "memory" in controllers.split(","):
            return path
    return "/"


def hierarchy(root: Path = ROOT) -> tuple[int, Path] | None:
    """(version, mount point) of a memory cgroup hierarchy we can write, or None."""
    controllers = root / "cgroup.controllers"
    if controllers.exists() and "memory" in controllers.read_text().split():
        return 2, root
    if (root / "memory" / "memory.limit_in_bytes").exists():
        return 1, root / "memory"
    return None


@dataclass(frozen=True)
class LabCgroup:
    """One lab's cgroup."""

    path: Path
    version: int
    limit_bytes: int

    def configure(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        if self.version == 2:
            _write(self.path / "memory.max", str(self.limit_bytes))
            swap = self.path / "memory.swap.max"
            if swap.exists():
                _write(swap, "0")
        else:
            _write(self.path / "memory.limit_in_bytes", str(self.limit_bytes))
            swap = self.path / "memory.memsw.limit_in_bytes"
            if swap.exists():
                _write(swap, str(self.limit_bytes))

    def join(self, pid: int = 0) -> None:
        """Move ``pid`` (0: the calling process) into the cgroup; run in the lab's preexec."""
        _write(self.path / "cgroup.procs", str(pid or os.getpid()))

    def usage_bytes(self) -> int:
        name = "memory.current" if self.version == 2 else "memory.usage_in_bytes"
        return int((self.path / name).read_text().strip())

    def remove(self) -> bool:
        """Remove the cgroup once nothing runs in it; False when something still does."""
        try:
            self.path.rmdir()
        except FileNotFoundError:
            return True
        except OSError:
            return False
        return True


def lab_cgroup(name: str, limit_bytes: int, *, root: Path = ROOT,
               proc_cgroup: str | None = None) -> LabCgroup | None:
    """The cgroup for lab ``name`` (made, with the limit set), or None when not enforceable."""
    if limit_bytes <= 0 or os.geteuid() != 0:
        return None
    found = hierarchy(root)
    if found is None:
        return None
    version, mount = found
    if proc_cgroup is None:
        proc_cgroup = Path("/proc/self/cgroup").read_text()
    own = _own_path(version, proc_cgroup).strip("/")
    group = LabCgroup(mount / own / PARENT / name, version, limit_bytes)
    try:
        if version == 2:
            # Children of the parent get the memory controller.
            parent = group.path.parent
            parent.mkdir(parents=True, exist_ok=True)
            _write(parent / "cgroup.subtree_control", "+memory")
        group.configure()
    except OSError as exc:
        raise MemoryLimitError(f"cannot set up the memory cgroup {group.path}: {exc}") from exc
    return group


def _write(path: Path, text: str) -> None:
    with open(path, "w") as file:
        file.write(text)
