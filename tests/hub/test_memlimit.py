"""Memory limits: a real cgroup per lab stops a process that goes over it (root only)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
from jupyterhub.objects import Hub

from hub import memlimit
from hub.spawner import ClassroomSpawner

needs_cgroup = pytest.mark.skipif(
    os.geteuid() != 0 or memlimit.hierarchy() is None,
    reason="needs root and a memory cgroup hierarchy",
)
GREEDY = ("b = bytearray(400 * 1024 * 1024)\n"
          "for i in range(0, len(b), 4096): b[i] = 1\nprint('done')")


def test_own_cgroup_path_is_read_for_each_version() -> None:
    text = "12:memory:/box/a\n4:cpu,cpuacct:/box\n0::/unified/b\n"
    assert memlimit._own_path(1, text) == "/box/a"
    assert memlimit._own_path(2, text) == "/unified/b"
    assert memlimit._own_path(1, "0::/x\n") == "/"


def test_no_limit_or_no_root_means_no_cgroup(tmp_path: Path) -> None:
    assert memlimit.lab_cgroup("x", 0, root=tmp_path) is None
    assert memlimit.lab_cgroup("x", 1 << 30, root=tmp_path) is None  # no hierarchy there


@needs_cgroup
def test_a_process_over_its_labs_limit_is_stopped_and_one_under_it_is_not() -> None:
    group = memlimit.lab_cgroup(f"t-{uuid.uuid4().hex[:8]}", 128 * 1024 * 1024)
    assert group is not None
    try:
        over = subprocess.run([sys.executable, "-c", GREEDY], preexec_fn=group.join,
                              capture_output=True, text=True, timeout=120)
        assert over.returncode == -9 and "done" not in over.stdout  # the OOM killer's SIGKILL
        under = subprocess.run([sys.executable, "-c", "b = bytearray(16 * 1024 * 1024)\n"
                                "print('done')"], preexec_fn=group.join,
                               capture_output=True, text=True, timeout=120)
        assert under.returncode == 0 and "done" in under.stdout
    finally:
        assert group.remove()


@needs_cgroup
def test_the_spawner_puts_the_lab_in_its_cgroup_with_the_limit(tmp_path: Path) -> None:
    user = SimpleNamespace(name=f"m{os.getpid()}", url="/user/m/", escaped_name="m", id=1,
                           groups=[])
    spawner = ClassroomSpawner(user=user, hub=Hub(), isolated=False, mem_limit="256M",
                               home_dir_template=str(tmp_path / "{username}"))
    spawner.prepare_memory_limit()
    group = spawner._cgroup
    assert group is not None and group.limit_bytes == 256 * 1024 * 1024
    try:
        child = subprocess.run(["cat", "/proc/self/cgroup"], preexec_fn=group.join,
                               capture_output=True, text=True, timeout=30, check=True)
        assert f"{memlimit.PARENT}/{user.name}" in child.stdout
    finally:
        assert group.remove()
