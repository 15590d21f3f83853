"""A class of students asking for their labs, observed from the outside.

Shared by the spawn-queue end-to-end test and the class-start benchmark:

- :func:`make_class` imports a roster of N students into a running hub;
- :func:`ask_in_order` asks for their labs as at the bell: every request is
  sent before any lab is ready, each one after the hub has the previous one
  (so the order they were asked in is known);
- :func:`lab_processes` reads each lab's PID from the hub's database, and
  :func:`started_at` / :func:`serving_since` tell, from ``/proc`` and the
  server file the lab writes when it starts serving, when each lab process
  started and when it was up: the queue's order and limit are checked from
  these, not from the hub's own counters.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import requests

from tests.support.hub import Hub
from tests.support.procs import wait_until

TICKS = os.sysconf("SC_CLK_TCK")


def make_class(hub: Hub, school: str, count: int, prefix: str, workdir: Path,
               timeout: float = 120) -> list[str]:
    """Students ``<prefix>01..`` of ``school``, made by ``classroom accounts import``.

    Each password is hashed with argon2: forty of them on a busy machine take minutes.
    """
    names = [f"{prefix}{i:02d}" for i in range(1, count + 1)]
    roster = workdir / f"{prefix}-roster.csv"
    rows = ["username,display_name,tenant,role,password"]
    rows += [f"{n},Student {n},{school},student,pw-{n}-long-enough" for n in names]
    roster.write_text("\n".join(rows) + "\n")
    hub.classroom("accounts", "import", str(roster), "--credentials", str(workdir / "creds.csv"),
                  timeout=timeout)
    return names


def server_model(hub: Hub, token: str, name: str) -> dict[str, Any]:
    response = requests.get(f"{hub.api}/users/{name}", headers={"Authorization": f"token {token}"},
                            timeout=30)
    response.raise_for_status()
    server: dict[str, Any] = response.json().get("servers", {}).get("", {}) or {}
    return server


def ask_in_order(hub: Hub, token: str, names: list[str]) -> list[threading.Thread]:
    """Ask for each lab; the next request goes once the hub holds the previous one."""
    answers: dict[str, int] = {}

    def ask(name: str) -> None:
        response = requests.post(f"{hub.api}/users/{name}/server",
                                 headers={"Authorization": f"token {token}"}, timeout=120)
        answers[name] = response.status_code

    threads = []
    for name in names:
        thread = threading.Thread(target=ask, args=(name,), daemon=True)
        thread.start()
        threads.append(thread)
        wait_until(lambda name=name: bool(server_model(hub, token, name)) or name in answers,
                   60, f"the hub to take the request of {name}")
        if answers.get(name, 202) >= 400:
            raise AssertionError(f"spawn of {name} refused: {answers[name]}")
    return threads


def lab_processes(hub: Hub) -> dict[str, int]:
    """Each user's lab PID, from the hub's database (what the spawner recorded)."""
    with sqlite3.connect(hub.data_dir / "jupyterhub.sqlite") as db:
        rows = db.execute(
            "select users.name, spawners.state from spawners"
            " join users on users.id = spawners.user_id"
        ).fetchall()
    found = {}
    for name, state in rows:
        pid = json.loads(state or "{}").get("pid")
        if pid:
            found[name] = int(pid)
    return found


def _boot_time() -> float:
    with open("/proc/uptime") as uptime:
        return time.time() - float(uptime.read().split()[0])


def started_at(pid: int) -> float:
    """When process ``pid`` started (UNIX time, to a clock tick)."""
    with open(f"/proc/{pid}/stat", "rb") as stat:
        ticks = int(stat.read().rsplit(b")", 1)[1].split()[19])
    return _boot_time() + ticks / TICKS


def cpu_seconds(pid: int) -> float:
    """User + system CPU time process ``pid`` has used so far."""
    with open(f"/proc/{pid}/stat", "rb") as stat:
        fields = stat.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def serving_since(home: Path, pid: int) -> float | None:
    """When the lab wrote its server file (it does so once it serves), or None."""
    path = home / ".local" / "share" / "jupyter" / "runtime" / f"jpserver-{pid}.json"
    try:
        return path.stat().st_mtime
    except OSError:
        return None
