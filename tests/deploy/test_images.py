"""The images' install steps, run here in fresh venvs: an image that would not build fails.

No image is built on this machine (no container runtime). Each image file runs
``deploy/images/install.sh <role> <source>``; this test runs the same script for each
role against a copy of the source (as ``COPY . /tmp/classroom-src`` would give it), in
a fresh venv made from ``/usr/bin/python3``, with ``--no-deps`` (the image's own pip
resolves the dependencies; here they are lent from the test venv by a ``.pth`` file
placed after the fresh site-packages). What it proves: the distribution builds from
the source, installs every package and data file the role imports and reads (the
script's own ``check.py`` imports them from the installed copy, never the source),
and the notebooks, tenants and kernel configuration land where the charts expect them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.support.procs import REPO

BASE_PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
ENTRY = {"hub": "hub.kube", "lab": "hub.homes", "gateway": "gateway.edge.app"}
DOCKERFILES = {"hub": "hub.Dockerfile", "lab": "lab.Dockerfile", "gateway": "gateway.Dockerfile"}


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The source as an image build receives it (tracked and new files, no build output)."""
    target = tmp_path_factory.mktemp("src") / "classroom-src"
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        path = REPO / name
        if path.is_file() and not name.startswith("tests/deploy/z2jh_chart/"):
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target / name)
    return target


@pytest.mark.parametrize("role", ["hub", "lab", "gateway"])
def test_the_image_install_script_installs_and_checks_each_role(role, source, tmp_path):
    dockerfile = (REPO / "deploy" / "images" / DOCKERFILES[role]).read_text()
    assert f"install.sh {role} /tmp/classroom-src" in dockerfile  # the image runs this script
    venv = tmp_path / "venv"
    subprocess.run([BASE_PYTHON, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                           "['purelib'])"], capture_output=True, text=True, check=True)
    lent = Path(sysconfig.get_paths()["purelib"])  # the test venv's dependencies
    (Path(site.stdout.strip()) / "zz-lent-dependencies.pth").write_text(f"{lent}\n")
    share = tmp_path / "share"
    env = {"PATH": os.environ.get("PATH", os.defpath), "HOME": str(tmp_path),
           "PYTHON": str(python), "CLASSROOM_SHARE": str(share),
           "CLASSROOM_PIP_ARGS": "--no-deps"}
    result = subprocess.run(["sh", str(source / "deploy" / "images" / "install.sh"), role,
                             str(source)], env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    checks = [line for line in result.stdout.splitlines() if line.startswith("image check:")]
    assert f"image check: {role}: import {ENTRY[role]}" in checks
    installed = Path(site.stdout.strip())
    assert (installed / ("classroom" if role == "lab" else role) / "__init__.py").exists()
    if role == "lab":
        assert (share / "notebooks" / "lessons" / "01_first_chat.ipynb").exists()
        kernel_config = venv / "etc" / "ipython" / "ipython_kernel_config.py"
        assert kernel_config.read_text() == (
            REPO / "extensions" / "classroom" / "ipython_kernel_config.py").read_text()
        server_config = venv / "etc" / "jupyter" / "jupyter_server_config.py"
        assert server_config.read_text() == (
            REPO / "extensions" / "classroom" / "jupyter_server_config.py").read_text()
    else:
        assert sorted(p.name for p in (share / "tenants").glob("*.json")) == sorted(
            p.name for p in (REPO / "tenants").glob("*.json"))


def test_the_install_script_refuses_what_is_not_a_role_or_a_source(tmp_path):
    script = str(REPO / "deploy" / "images" / "install.sh")
    wrong_role = subprocess.run(["sh", script, "worker", str(REPO)], capture_output=True,
                                text=True)
    assert wrong_role.returncode == 2 and "usage" in wrong_role.stderr
    wrong_source = subprocess.run(["sh", script, "hub", str(tmp_path)], capture_output=True,
                                  text=True)
    assert wrong_source.returncode == 2 and "is not the classroom's source" in wrong_source.stderr
