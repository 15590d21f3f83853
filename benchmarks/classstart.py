"""The bell: N students of one school ask for their labs in the same second.

For each class size a fresh classroom (``classroom run``, the same start queue
and timeouts as ``make run``) on free loopback ports:

- at the bell: every student's spawn is requested at once (one thread each);
  each lab's time from the request to ready is read from the hub's REST API,
  a lab whose server disappears counts as failed, and so does one not ready
  by the bound (``--bound``, default 10 min); CPU per lab is the lab
  process's own CPU plus the hub's (with the children it reaped: the home
  preparation) over the burst, divided by N;
- started ahead: a teacher of the school starts the class through
  ``POST /hub/api/classroom/class-start``; when the last lab is ready the
  students arrive and ask for their labs: those already ready count as ready
  on arrival.

Beside each, the planner's prediction (:mod:`hub.capacity`) from the measured
CPU per lab. Every process started is stopped by PID (``Hub.stop``), also when
the bound is hit.
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests

from benchmarks._common import percentile
from hub.capacity import predict_class_start
from tests.support.hub import Hub, start_hub
from tests.support.labs import cpu_seconds, lab_processes, make_class, rss_mib

SCHOOL = "school_a"


def _hub_pid(hub: Hub) -> int:
    return int((hub.data_dir / "jupyterhub.pid").read_text().strip())


def _hub_cpu(pid: int) -> float:
    """The hub's CPU with that of the children it reaped (home preparation, useradd)."""
    import os

    with open(f"/proc/{pid}/stat", "rb") as stat:
        fields = stat.read().rsplit(b")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _users(hub: Hub, token: str) -> dict[str, dict[str, Any]]:
    response = requests.get(f"{hub.api}/users", headers={"Authorization": f"token {token}"},
                            params={"limit": 1000}, timeout=60)
    response.raise_for_status()
    body = response.json()
    items = body["items"] if isinstance(body, dict) else body
    return {u["name"]: (u.get("servers") or {}).get("", {}) for u in items}


def _watch(hub: Hub, token: str, names: list[str], asked: dict[str, float],
           answers: dict[str, int], bound: float) -> tuple[dict[str, float], set[str]]:
    """Until every lab is ready or failed (or the bound): ready times, failures."""
    ready: dict[str, float] = {}
    failed: set[str] = set()
    deadline = time.monotonic() + bound
    while len(ready) + len(failed) < len(names):
        if time.monotonic() > deadline:
            failed |= set(names) - set(ready)
            break
        servers = _users(hub, token)
        now = time.monotonic()
        for name in names:
            if name in ready or name in failed:
                continue
            server = servers.get(name) or {}
            if server.get("ready"):
                ready[name] = now - asked.get(name, now)
            elif not server and answers.get(name, 0) >= 400:
                failed.add(name)
            elif not server and name in answers:
                failed.add(name)  # asked, answered, and the server is gone: a failed spawn
        time.sleep(0.25)  # polling interval; the hub's answer decides
    return ready, failed


def _ask_all(hub: Hub, token: str, names: list[str]) -> tuple[dict[str, float], dict[str, int]]:
    asked: dict[str, float] = {}
    answers: dict[str, int] = {}
    gate = threading.Barrier(len(names))

    def ask(name: str) -> None:
        gate.wait()
        asked[name] = time.monotonic()
        try:
            response = requests.post(f"{hub.api}/users/{name}/server",
                                     headers={"Authorization": f"token {token}"}, timeout=600)
            answers[name] = response.status_code
        except requests.RequestException:
            answers[name] = 599

    threads = [threading.Thread(target=ask, args=(n,), daemon=True) for n in names]
    for thread in threads:
        thread.start()
    while len(asked) < len(names):
        time.sleep(0.01)  # until every thread has sent its request
    return asked, answers


def _start_hub(students: int, top: Path, **env: str) -> Hub:
    """A fresh hub; tried twice, since a free port can be taken by another program first."""
    for attempt in (1, 2):
        data = Path(tempfile.mkdtemp(prefix=f"bench-class{students}-", dir=top)) / "data"
        try:
            return start_hub(data, CLASSROOM_IDLE_CULL_SECONDS="0", **env)
        except RuntimeError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def one_class(students: int, ahead: bool, top: Path, bound: float,
              parallel: int | None = None) -> dict[str, Any]:
    env = {"CLASSROOM_PARALLEL_STARTS": str(parallel)} if parallel else {}
    hub = _start_hub(students, top, **env)
    data = hub.data_dir
    try:
        admin = hub.token_for(hub.login(hub.admin_user, hub.admin_password), hub.admin_user)
        # Not part of the measured start; on a machine busy with other work it takes minutes.
        names = make_class(hub, SCHOOL, students, "cs", data.parent, timeout=bound)
        hub.classroom("accounts", "add", "--tenant", SCHOOL, "--role", "teacher",
                      "--password", "teacher-pass-bench-1", "teach1")
        teacher = hub.token_for(hub.login("teach1", "teacher-pass-bench-1"), "teach1")
        hub_pid = _hub_pid(hub)
        cpu_before = _hub_cpu(hub_pid)
        began = time.monotonic()
        if ahead:
            response = requests.post(f"{hub.api}/classroom/class-start",
                                     headers={"Authorization": f"token {teacher}"},
                                     json={"school": SCHOOL}, timeout=600)
            response.raise_for_status()
            asked = {n: began for n in names}
            answers = {n: 202 for n in response.json()["queued"]}
            _, failed = _watch(hub, admin, names, asked, answers, bound)
            class_ready_s = time.monotonic() - began
            # The bell: the students arrive and ask for their labs.
            servers = _users(hub, admin)
            on_arrival = [n for n in names if (servers.get(n) or {}).get("ready")]
            asked, answers = _ask_all(hub, admin, names)
            ready, failed_late = _watch(hub, admin, names, asked, answers, bound)
            failed |= failed_late
        else:
            asked, answers = _ask_all(hub, admin, names)
            ready, failed = _watch(hub, admin, names, asked, answers, bound)
            class_ready_s = time.monotonic() - began
            on_arrival = []
        hub_cpu = _hub_cpu(hub_pid) - cpu_before
        pids = lab_processes(hub)
        lab_cpu = [cpu_seconds(pids[n]) for n in names if n in pids]
        idle_rss = [rss_mib(pids[n]) for n in names if n in pids]
        waits = list(ready.values())
        return {
            "students": students,
            "ahead": ahead,
            "ready": len(ready),
            "failed": len(failed),
            "ready_on_arrival": len(on_arrival),
            "p50_s": percentile(waits, 0.5),
            "p95_s": percentile(waits, 0.95),
            "max_s": max(waits) if waits else float("nan"),
            "class_ready_s": class_ready_s,
            "lab_cpu_s": sum(lab_cpu) / max(1, len(lab_cpu)),
            "hub_cpu_per_lab_s": hub_cpu / students,
            "idle_rss_mib": sum(idle_rss) / max(1, len(idle_rss)),
        }
    finally:
        hub.stop()


def run(sizes: tuple[int, ...] = (10, 20, 40), bound: float = 600) -> list[dict[str, Any]]:
    import os

    top = Path(tempfile.mkdtemp(prefix="bench-classstart-"))
    top.chmod(0o711)  # labs run as their own users and pass through to their homes
    rows = []
    try:
        for students in sizes:
            for ahead in (False, True):
                row = one_class(students, ahead, top, bound)
                cores = os.cpu_count() or 1
                cpu = row["lab_cpu_s"] + row["hub_cpu_per_lab_s"]
                predicted = predict_class_start(students, cores=cores, cpu_per_lab=cpu)
                row["predicted_p95_s"] = predicted.quantile(0.95)
                row["predicted_all_s"] = predicted.all_ready_s
                rows.append(row)
                # Each row as it is measured: a later row that fails leaves these on record.
                print(f"classstart row: {row}", flush=True)
    finally:
        import shutil

        shutil.rmtree(top, ignore_errors=True)
    return rows
