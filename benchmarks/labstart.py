"""One lab's start, measured and taken apart: CPU seconds and wall time, cold and warm.

A lab is started exactly as the spawner starts it (same command, arguments
and environment variables), but alone: a tiny stand-in answers the hub API's
version check, so nothing else on the machine is measured. CPU is the lab
process's own user + system time (``/proc``) when it first answers HTTP.

- cold: a fresh home (a student's first start: runtime files, cookie secret);
- warm: the same home again (every later start).

The parts: the interpreter alone, the lab's imports, each server extension
(the lab started without it), the lessons copied into a home
(``python -m hub.homes``, cold and warm) and the kernel extension
(``import classroom`` and loading it, as every kernel does).

Every process started here is stopped by its PID.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from benchmarks._common import REPO, VENV_BIN, free_port, percentile, stop_process
from tests.support.labs import cpu_seconds, rss_mib

PYTHON = str(VENV_BIN / "python")
# Each server extension a lab loads, to take its share apart (jupyter_lsp is off now).
EXTENSIONS = ("jupyter_server_terminals", "voila.server_extension", "notebook_shim")


def spawner_command(start_cuts: bool = True) -> list[str]:
    """The spawner's own command and arguments (non-root, not isolated).

    ``start_cuts=False``: ``c.ClassroomSpawner.start_cuts = False``, the lab as it
    started before the start-time cuts (the "before" row).
    """
    from types import SimpleNamespace

    from jupyterhub.objects import Hub

    from hub.spawner import ClassroomSpawner

    user = SimpleNamespace(name="bench", url="/user/bench/", escaped_name="bench", id=1)
    spawner = ClassroomSpawner(user=user, hub=Hub(), isolated=False, start_cuts=start_cuts)
    return [*spawner.cmd, *spawner.get_args()]


class _HubStandIn(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        import jupyterhub

        body = json.dumps({"version": jupyterhub.__version__}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return


def lab_env(home: Path, port: int, hub_port: int) -> dict[str, str]:
    prefix = "/user/bench/"
    return {
        "PATH": f"{VENV_BIN}:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "JUPYTERHUB_API_TOKEN": "bench-token",
        "JUPYTERHUB_API_URL": f"http://127.0.0.1:{hub_port}/hub/api",
        "JUPYTERHUB_CLIENT_ID": "jupyterhub-user-bench",
        "JUPYTERHUB_USER": "bench",
        "JUPYTERHUB_SERVER_NAME": "",
        "JUPYTERHUB_SERVICE_PREFIX": prefix,
        "JUPYTERHUB_BASE_URL": "/",
        "JUPYTERHUB_SERVICE_URL": f"http://127.0.0.1:{port}{prefix}",
        "JUPYTERHUB_OAUTH_CALLBACK_URL": f"{prefix}oauth_callback",
        "JUPYTERHUB_OAUTH_SCOPES": "[]",
        "JUPYTERHUB_OAUTH_ACCESS_SCOPES": "[]",
        "JUPYTERHUB_ACTIVITY_URL": "",
    }


def start_lab(command: list[str], home: Path, hub_port: int, timeout: float = 120) -> dict:
    """Start one lab, wait until it answers, return its wall time, CPU and memory."""
    port = free_port()
    args = [*command, "--allow-root"] if os.geteuid() == 0 else list(command)
    log = open(home.parent / f"lab-{port}.log", "wb")  # noqa: SIM115 - closed below
    began = time.perf_counter()
    proc = subprocess.Popen(args, env=lab_env(home, port, hub_port), cwd=home, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}/user/bench/api"
        deadline = began + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the lab exited with {proc.returncode}")
            try:
                httpx.get(url, timeout=2)
                break
            except httpx.HTTPError:
                if time.perf_counter() > deadline:
                    raise TimeoutError("the lab did not answer") from None
                time.sleep(0.02)  # polling interval; the answer decides
        wall = time.perf_counter() - began
        cpu = cpu_seconds(proc.pid)
        rss_ready = rss_mib(proc.pid)
        time.sleep(3)  # let it settle: idle memory is what a started class holds
        return {"wall_s": wall, "cpu_s": cpu, "rss_mib": rss_ready,
                "idle_rss_mib": rss_mib(proc.pid)}
    finally:
        stop_process(proc, timeout=15)
        log.close()


def child_cost(args: list[str], cwd: Path | None = None) -> tuple[float, float]:
    """(CPU s, wall s) of one child process run to its end."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True, cwd=cwd, timeout=120)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall


def _median(rows: list[tuple[float, float]]) -> tuple[float, float]:
    return (percentile([r[0] for r in rows], 0.5), percentile([r[1] for r in rows], 0.5))


def parts(repeat: int) -> list[dict]:
    """The pieces of a start, each timed on its own (median of ``repeat``)."""
    rows = []

    def add(name: str, args: list[str], cwd: Path | None = None, minus: str | None = None,
            prepare: Any = None) -> None:
        samples = []
        for _ in range(repeat):
            if prepare is not None:
                prepare()
            samples.append(child_cost(args, cwd))
        cpu, wall = _median(samples)
        if minus is not None:
            base = next(r for r in rows if r["part"] == minus)
            cpu, wall = cpu - base["cpu_s"], wall - base["wall_s"]
        rows.append({"part": name, "cpu_s": cpu, "wall_s": wall})

    add("interpreter (python -c pass)", [PYTHON, "-c", "pass"])
    add("lab imports, before (jupyterhub.singleuser)",
        [PYTHON, "-c", "import jupyterhub.singleuser.app"], minus="interpreter (python -c pass)")
    add("lab imports, after, rfc3987_syntax cut only",
        [PYTHON, "-c", "from hub import labstart; labstart.prepare(stand_ins=False); "
         "import jupyterhub.singleuser.app"], minus="interpreter (python -c pass)")
    add("lab imports, after (hub.labstart)",
        [PYTHON, "-c", "from hub import labstart; labstart.prepare(); "
         "import jupyterhub.singleuser.app"], minus="interpreter (python -c pass)")
    work = Path(tempfile.mkdtemp(prefix="bench-homes-"))
    lessons = str(REPO / "notebooks" / "lessons")
    home = work / "home"

    def fresh() -> None:
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir()

    copy = [PYTHON, "-I", "-m", "hub.homes", "--home", str(home), "--lessons", lessons]
    try:
        add("lesson copy, cold (python -m hub.homes)", copy, cwd=REPO, prepare=fresh)
        add("lesson copy, warm (nothing new to copy)", copy, cwd=REPO)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    add("kernel extension (import classroom, load it)",
        [PYTHON, "-c", "import classroom; classroom.load_ipython_extension(None)"],
        minus="interpreter (python -c pass)")
    return rows


LESSON_IMPORTS = ("from openai import OpenAI; import anthropic; from google import genai; "
                  "import ipywidgets; import classroom; classroom.Chat; classroom.client")


def kernel(extension: bool, lesson: bool = False) -> dict[str, float]:
    """One kernel of the venv (as a lab starts it): CPU and wall to ready, idle memory."""
    from jupyter_client.manager import KernelManager

    manager = KernelManager(kernel_name="python3")
    extra = [] if extension else ["--InteractiveShellApp.extensions=[]"]
    began = time.perf_counter()
    manager.start_kernel(extra_arguments=extra, env={**os.environ, "PATH":
                                                     f"{VENV_BIN}:{os.environ.get('PATH', '')}"})
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=120)
        wall = time.perf_counter() - began
        pid = manager.provisioner.process.pid  # type: ignore[union-attr]
        cpu = cpu_seconds(pid)
        if lesson:
            client.execute_interactive(LESSON_IMPORTS, timeout=120)
        time.sleep(2)  # idle, as a student's kernel between cells
        return {"cpu_s": cpu, "wall_s": wall, "idle_rss_mib": rss_mib(pid)}
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def kernels(repeat: int) -> list[dict[str, Any]]:
    rows = []
    for name, extension, lesson in (
        ("with the classroom extension (every kernel)", True, False),
        ("without it", False, False),
        ("with it, after a lesson's imports (3 SDKs, widgets)", True, True),
    ):
        samples = [kernel(extension, lesson) for _ in range(repeat)]
        rows.append({"kernel": name,
                     **{k: percentile([s[k] for s in samples], 0.5) for k in samples[0]}})
    return rows


def run(quick: bool = False) -> dict[str, Any]:
    """Before/after per lab (cold, warm), each server extension's share, the parts."""
    repeat = 2 if quick else 4
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HubStandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    hub_port = server.server_address[1]
    after = spawner_command()
    variants: list[tuple[str, list[str]]] = [
        ("before (start_cuts off)", spawner_command(start_cuts=False)),
        ("after: hub.labstart only", [a for a in after if "jupyter_lsp" not in a]),
        ("after, without the hub-only stand-ins",
         [PYTHON, "-c", "import sys; from hub import labstart; "
          "sys.exit(labstart.main(stand_ins=False))", *after[3:]]),
        ("after", after),
    ]
    if not quick:
        for name in EXTENSIONS:
            variants.append((f"after, without {name}",
                             [*after, f"--ServerApp.jpserver_extensions={name}=False"]))
    results: dict[str, dict[str, list[dict]]] = {}
    work = Path(tempfile.mkdtemp(prefix="bench-lab-"))
    try:
        for index in range(repeat):
            for name, command in variants:  # interleaved: the machine's noise hits all alike
                home = work / f"{name.replace(' ', '_').replace(',', '')}-{index}"
                home.mkdir()
                cold = start_lab(command, home, hub_port)
                warm = start_lab(command, home, hub_port)
                results.setdefault(name, {"cold": [], "warm": []})
                results[name]["cold"].append(cold)
                results[name]["warm"].append(warm)
    finally:
        server.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    table = []
    for name, runs in results.items():
        for kind in ("cold", "warm"):
            samples = runs[kind]
            table.append({
                "variant": name, "start": kind, "runs": len(samples),
                "cpu_s": percentile([s["cpu_s"] for s in samples], 0.5),
                "wall_s": percentile([s["wall_s"] for s in samples], 0.5),
                "rss_mib": percentile([s["rss_mib"] for s in samples], 0.5),
                "idle_rss_mib": percentile([s["idle_rss_mib"] for s in samples], 0.5),
            })
    return {"labs": table, "parts": parts(repeat), "kernels": kernels(repeat), "command": after,
            "before_command": variants[0][1]}
