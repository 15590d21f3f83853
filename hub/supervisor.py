"""What ``classroom run`` becomes: the parent of the proxy, the gateway and the hub.

It starts, each in its own session (so a terminal's Ctrl-C reaches only it):

1. configurable-http-proxy on ``CLASSROOM_PORT``, the public address;
2. the gateway (``classroom gateway serve``), which the hub knows as an
   external service with a token made for this run;
3. the hub (``jupyterhub -f jupyterhub_config.py`` with
   ``CLASSROOM_SUPERVISED=1``), which spawns the labs and leaves them, the
   proxy and the gateway running when it stops.

Signals and exits:

- ``SIGINT`` (Ctrl-C) or ``SIGTERM``: stop the hub, then every lab, kernel
  and other process started below us, then the gateway and the proxy.
- ``SIGHUP``: restart the hub alone (``kill -HUP $(cat <data dir>/classroom-run.pid)``).
  Labs, kernels, the proxy and the gateway keep running; the new hub finds the
  labs in its database and their routes in the proxy.
- The hub exiting by itself (a crash, ``kill <hub pid>``) is restarted the same
  way; the gateway is restarted alone; the proxy is restarted and then the hub,
  which puts the routes back. More than five restarts of one part in five
  minutes, or a hub that never came up, stop everything.

It is a child subreaper (``prctl``), so labs started by a hub that has since
exited become its children: it reaps them and stops them on the way out.
"""

from __future__ import annotations

import ctypes
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .config import VENV_BIN, HubSettings, free_port

PID_FILE = "classroom-run.pid"  # inside CLASSROOM_DATA_DIR
PROXY_PID_FILE = "jupyterhub-proxy.pid"
GATEWAY_PID_FILE = "gateway.pid"
MCP_PID_FILE = "classroom-mcp.pid"
HUB_PID_FILE = "jupyterhub.pid"  # written by the hub itself
# What each pid file's process runs, so that a reused PID is never signalled.
LEFTOVERS = {
    PROXY_PID_FILE: b"configurable-http-proxy",
    GATEWAY_PID_FILE: b"gateway\0serve",
    MCP_PID_FILE: b"gateway.mcpserver",
    HUB_PID_FILE: b"jupyterhub\0-f",
}
RESTART_WINDOW = 300.0
MAX_RESTARTS = 5
_PR_SET_CHILD_SUBREAPER = 36


def say(message: str) -> None:
    print(f"classroom run: {message}", file=sys.stderr, flush=True)


def become_subreaper() -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return False


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                parent = int(stat.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry))
    found: set[int] = set()
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def runs(pid: int, needle: bytes) -> bool:
    """Whether ``pid`` is alive and its command line contains ``needle``."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return alive(pid) and needle in cmdline.read()
    except OSError:
        return False


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class Part:
    """One process we keep running."""

    name: str
    command: list[str]
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    exit_code: int | None = None
    restarts: deque[float] = field(default_factory=deque)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None and self.exit_code is None else None


def run_environment(settings: HubSettings, environ: Mapping[str, str]) -> dict[str, str]:
    """The environment the parts start from: absolute directories, our programs first."""
    env = dict(environ)
    # The hub runs in the data directory, so relative paths must not leak through.
    env["CLASSROOM_DATA_DIR"] = str(settings.data_dir)
    env["CLASSROOM_TENANTS_DIR"] = str(settings.tenants_dir)
    node_bin = settings.repo_dir / ".node" / "node_modules" / ".bin"
    path = [str(node_bin), VENV_BIN, *env.get("PATH", os.defpath).split(os.pathsep)]
    env["PATH"] = os.pathsep.join(dict.fromkeys(p for p in path if p))
    return env


def define_parts(settings: HubSettings, config_file: Path, env: dict[str, str],
                 proxy_token: str, gateway_token: str) -> tuple[Part, Part, Part]:
    """The proxy, the gateway and the supervised hub: commands and environments.

    One definition for ``classroom run`` and for the systemd units (:mod:`hub.units`)."""
    base = {k: v for k, v in env.items() if k in ("PATH", "LANG", "LC_ALL", "TZ")}
    proxy = Part(
        "proxy",
        [*settings.proxy_command, *settings.proxy_args],
        {**base, "CONFIGPROXY_AUTH_TOKEN": proxy_token},
    )
    gateway_env = settings.gateway_process_environment(gateway_token)
    gateway_env["PATH"] = env.get("PATH", gateway_env.get("PATH", os.defpath))
    gateway = Part("gateway", settings.gateway_command, gateway_env)
    hub_env = dict(env)
    hub_env.update(
        CLASSROOM_SUPERVISED="1",
        CONFIGPROXY_AUTH_TOKEN=proxy_token,
        CLASSROOM_GATEWAY_API_TOKEN=gateway_token,
        CLASSROOM_PORT=str(settings.port),
        CLASSROOM_HUB_PORT=str(settings.hub_port),
        CLASSROOM_PROXY_API_PORT=str(settings.proxy_api_port),
        CLASSROOM_GATEWAY_PORT=str(settings.gateway_port),
    )
    jupyterhub = Path(sys.prefix) / "bin" / "jupyterhub"
    program = str(jupyterhub) if jupyterhub.exists() else "jupyterhub"
    return proxy, gateway, Part("hub", [program, "-f", str(config_file)], hub_env)


def mcp_part(gateway: Part, env: Mapping[str, str]) -> Part:
    """The classroom's MCP server (``gateway.mcpserver``) on a loopback port
    (``CLASSROOM_MCP_PORT``, default a free one); the gateway is told its URL, which it
    allows for every school, unless ``CLASSROOM_MCP_SERVER_URL`` already names another."""
    raw = env.get("CLASSROOM_MCP_PORT", "").strip()
    port = int(raw) if raw.isdigit() else free_port()
    gateway.env.setdefault("CLASSROOM_MCP_SERVER_URL", f"http://127.0.0.1:{port}/mcp")
    base = {k: v for k, v in env.items() if k in ("PATH", "LANG", "LC_ALL", "TZ")}
    python = str(Path(VENV_BIN) / "python")
    return Part("MCP server", [python if Path(python).exists() else sys.executable, "-m",
                               "gateway.mcpserver", "--host", "127.0.0.1", "--port",
                               str(port)], base)


class Supervisor:
    """Start the parts, keep them running, stop them all in order."""

    def __init__(self, settings: HubSettings, config_file: Path, env: dict[str, str]) -> None:
        self.settings = settings
        self.data_dir = settings.data_dir
        self.proxy, self.gateway, self.hub = define_parts(
            settings, config_file, env, secrets.token_hex(32), secrets.token_hex(32))
        self.mcp = mcp_part(self.gateway, env)
        self.parts = (self.proxy, self.mcp, self.gateway, self.hub)
        self.request: str | None = None
        self.hub_came_up = False

    # -- processes ----------------------------------------------------------------

    def start(self, part: Part) -> None:
        part.exit_code = None
        part.process = subprocess.Popen(
            part.command, env=part.env, cwd=self.data_dir, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        if part is self.proxy:
            self._write(PROXY_PID_FILE, part.process.pid)
        elif part is self.gateway:
            self._write(GATEWAY_PID_FILE, part.process.pid)
        elif part is self.mcp:
            self._write(MCP_PID_FILE, part.process.pid)

    def reap(self) -> list[Part]:
        """Collect every exited child; return our parts among them."""
        exited: list[Part] = []
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            for part in self.parts:
                if part.pid == pid and part.process is not None:
                    part.exit_code = part.process.returncode = os.waitstatus_to_exitcode(status)
                    exited.append(part)
        return exited

    def wait_gone(self, pids: Iterable[int], timeout: float) -> set[int]:
        """Reap until ``pids`` have exited or ``timeout`` passed; return those still alive."""
        pending = set(pids)
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            self.reap()
            pending = {p for p in pending if alive(p)}
            if pending:
                time.sleep(0.1)
        return pending

    def terminate(self, pids: Iterable[int], timeout: float) -> None:
        """SIGTERM, wait, then SIGKILL what is left."""
        pids = [p for p in pids if alive(p)]
        for pid in pids:
            _signal(pid, signal.SIGTERM)
        for pid in self.wait_gone(pids, timeout):
            _signal(pid, signal.SIGKILL)
        self.wait_gone(pids, 5)

    def stop(self, part: Part, timeout: float = 30) -> None:
        if part.pid is not None:
            self.terminate([part.pid], timeout)
        self.reap()

    def restart(self, part: Part, reason: str) -> bool:
        """Start ``part`` again unless it restarts too often; False: give up."""
        now = time.monotonic()
        while part.restarts and now - part.restarts[0] > RESTART_WINDOW:
            part.restarts.popleft()
        if len(part.restarts) >= MAX_RESTARTS:
            say(f"the {part.name} {reason}, {MAX_RESTARTS} restarts in a row; stopping")
            return False
        part.restarts.append(now)
        say(f"the {part.name} {reason}; restarting it (labs keep running)")
        self.stop(part)
        self.start(part)
        return True

    # -- the whole ----------------------------------------------------------------------

    def stop_leftovers(self) -> None:
        """Refuse to share the data dir; stop what a killed ``classroom run`` left behind.

        Labs are left alone: the new hub finds them in its database.
        """
        other = read_pid(self.data_dir / PID_FILE)
        if other is not None and other != os.getpid() and runs(other, b"classroom\0run"):
            raise SystemExit(
                f"classroom run: another classroom run (PID {other}) uses {self.data_dir}"
            )
        found = []
        for name, needle in LEFTOVERS.items():
            pid = read_pid(self.data_dir / name)
            if pid is not None and runs(pid, needle):
                found.append(pid)
        if found:
            say(f"stopping what an earlier run left behind: PIDs {sorted(found)}")
            self.terminate(found, timeout=15)

    def run(self) -> int:
        """Start everything and supervise until asked to stop; return the exit status."""
        self.stop_leftovers()
        if not become_subreaper():
            say("warning: cannot adopt orphaned labs (no PR_SET_CHILD_SUBREAPER)")
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_restart)
        self._write(PID_FILE, os.getpid())
        code = 0
        try:
            code = self._supervise()
        finally:
            self.shutdown()
        return code

    def _supervise(self) -> int:
        self.start(self.proxy)
        deadline = time.monotonic() + 30
        while not listening(self.settings.proxy_api_port):
            if self.reap() or time.monotonic() > deadline or self.request == "stop":
                say("the proxy did not start")
                return 1
            time.sleep(0.1)
        self.start(self.mcp)
        self.start(self.gateway)
        self.start(self.hub)
        while self.request != "stop":
            if self.request == "restart":
                self.request = None
                if not self.restart(self.hub, "was asked to restart (SIGHUP)"):
                    return 1
            for part in self.reap():
                if part is self.hub and not self.hub_came_up:
                    say(f"the hub exited with code {part.exit_code} before it started")
                    return part.exit_code or 1
                reason = f"exited with code {part.exit_code}"
                if not self.restart(part, reason):
                    return 1
                if part is self.proxy and not self.restart(self.hub, "lost its proxy"):
                    return 1
            if not self.hub_came_up and listening(self.settings.hub_port):
                self.hub_came_up = True
            time.sleep(0.2)
        return 0

    def shutdown(self) -> None:
        """The hub first (labs stay), then everything below us, the gateway and the proxy last."""
        for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(number, signal.SIG_IGN)
        self.stop(self.hub)
        keep = {p for p in (self.gateway.pid, self.proxy.pid, self.mcp.pid) if p is not None}
        self.terminate(descendants(os.getpid()) - keep, timeout=20)
        self.stop(self.gateway, timeout=20)
        self.stop(self.mcp, timeout=10)
        self.stop(self.proxy, timeout=10)
        self.terminate(descendants(os.getpid()), timeout=5)
        self.reap()
        for name in (PID_FILE, PROXY_PID_FILE, GATEWAY_PID_FILE):
            (self.data_dir / name).unlink(missing_ok=True)

    def _write(self, name: str, pid: int) -> None:
        (self.data_dir / name).write_text(f"{pid}\n")

    def _on_stop(self, number: int, frame: object) -> None:
        self.request = "stop"

    def _on_restart(self, number: int, frame: object) -> None:
        if self.request != "stop":
            self.request = "restart"


def _signal(pid: int, number: int) -> None:
    try:
        os.kill(pid, number)
    except ProcessLookupError:
        pass
