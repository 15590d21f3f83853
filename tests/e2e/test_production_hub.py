"""The hub as production runs it: its database on PostgreSQL, a memory limit per lab.

One real hub (``classroom run``) with ``CLASSROOM_HUB_DB_URL`` on the session's
real PostgreSQL (``postgres`` fixture, ``postgresql+psycopg://``, the driver the
z2jh values name) and ``CLASSROOM_LAB_MEMORY_LIMIT``:

- a student signs in through the login form, gets a lab and calls a model
  through the gateway with the official SDK from a kernel; the call is in the
  gateway's history, and the hub's own tables (users, spawners with the lab's
  state, OAuth clients) are in PostgreSQL: there is no hub SQLite file;
- the lab process runs in a memory cgroup with exactly that limit, read from
  outside (``/proc/<pid>/cgroup`` and the cgroup's own files); a kernel that
  allocates past it is stopped by the OOM killer, and the lab goes on serving
  and starts a new kernel. Needs root and a memory cgroup, as the limit does
  (docs/isolation.md).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from hub import memlimit
from tests.e2e.conftest import running_hub
from tests.support.hub import Hub
from tests.support.lab_ui import in_kernel
from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.e2e

LIMIT = "600M"
LIMIT_BYTES = 600 * 1024 * 1024
STUDENT, PASSWORD = "pgstu", "pg-student-pass-42"


def lab_pid(database_url: str, name: str) -> int | None:
    """The lab's PID as the hub recorded it, read from the hub's PostgreSQL tables."""
    rows = query(database_url, "select s.state from spawners s join users u"
                 " on u.id = s.user_id where u.name = %s", name)
    for (state,) in rows:
        pid = json.loads(state or "{}").get("pid") if isinstance(state, str) else (
            (state or {}).get("pid"))
        if pid:
            return int(pid)
    return None


def query(database_url: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://")) as db:
        return list(db.execute(sql, args).fetchall())


@dataclass
class ProductionHub:
    hub: Hub
    database_url: str
    token: str  # the student's own hub token


@pytest.fixture(scope="module")
def production(reachable_tmp: Path, postgres: PostgresServer) -> Iterator[ProductionHub]:
    database_url = postgres.create_database("hub")
    with running_hub(reachable_tmp, "production", CLASSROOM_HUB_DB_URL=database_url,
                     CLASSROOM_LAB_MEMORY_LIMIT=LIMIT) as hub:
        hub.classroom("accounts", "add", "--tenant", "school_a", "--role", "student",
                      "--password", PASSWORD, STUDENT)
        session = hub.login(STUDENT, PASSWORD)  # the login form, as a browser
        token = hub.token_for(session, STUDENT)
        hub.start_server(token, STUDENT)  # the student asks for their own lab
        yield ProductionHub(hub, database_url, token)


def test_the_hub_keeps_its_state_in_postgresql_and_a_student_calls_a_model(
    production: ProductionHub,
) -> None:
    hub, url = production.hub, production.database_url
    out = in_kernel(hub, STUDENT, production.token, (
        "from openai import OpenAI\n"
        "answer = OpenAI().chat.completions.create(model='mock/echo',"
        " messages=[{'role': 'user', 'content': 'hello from postgres'}])\n"
        "print(answer.choices[0].message.content)"))
    assert "hello from postgres" in out

    admin = hub.token_for(hub.login(hub.admin_user, hub.admin_password), hub.admin_user)
    runs = requests.get(f"{hub.gateway_url}/api/runs", params={"user": STUDENT}, timeout=30,
                        headers={"Authorization": f"Bearer {admin}"})
    assert runs.status_code == 200, runs.text
    calls = [r for r in runs.json()["items"] if r["model"] == "mock/echo"]
    assert [(r["status"], r["source"], r["tenant"]) for r in calls] == [
        ("ok", "sdk", "school_a")]

    # The hub's own tables are in PostgreSQL, with this session's users and lab in them.
    tables = {t for (t,) in query(url, "select table_name from information_schema.tables"
                                       " where table_schema = 'public'")}
    assert {"users", "spawners", "api_tokens", "oauth_clients", "alembic_version"} <= tables
    users = {n for (n,) in query(url, "select name from users")}
    assert {STUDENT, hub.admin_user} <= users
    pid = lab_pid(url, STUDENT)
    assert pid is not None and Path(f"/proc/{pid}").exists()
    assert query(url, "select count(*) from oauth_clients where identifier = %s",
                 f"jupyterhub-user-{STUDENT}") == [(1,)]
    assert not (hub.data_dir / "jupyterhub.sqlite").exists()


def cgroup_of(pid: int) -> Path:
    """The memory cgroup folder of process ``pid``, read from ``/proc``."""
    found = memlimit.hierarchy()
    assert found is not None
    version, mount = found
    own = memlimit._own_path(version, Path(f"/proc/{pid}/cgroup").read_text())
    return mount / own.strip("/")


def kernel_pids(lab: int) -> set[int]:
    from hub.supervisor import descendants

    return {p for p in descendants(lab)
            if b"ipykernel" in Path(f"/proc/{p}/cmdline").read_bytes()}


@pytest.mark.skipif(os.geteuid() != 0 or memlimit.hierarchy() is None,
                    reason="the memory limit is enforced only by root with a memory cgroup")
def test_the_lab_runs_under_its_memory_limit_and_survives_a_kernel_past_it(
    production: ProductionHub,
) -> None:
    hub, url, token = production.hub, production.database_url, production.token
    pid = lab_pid(url, STUDENT)
    assert pid is not None
    group = cgroup_of(pid)
    assert group.parent.name == memlimit.PARENT
    version = memlimit.hierarchy()[0]  # type: ignore[index]
    limit_file = "memory.max" if version == 2 else "memory.limit_in_bytes"
    assert int((group / limit_file).read_text()) == LIMIT_BYTES
    swap_file = group / ("memory.swap.max" if version == 2 else "memory.memsw.limit_in_bytes")
    if swap_file.exists():
        assert int(swap_file.read_text()) == (0 if version == 2 else LIMIT_BYTES)

    async def greedy() -> tuple[set[int], bool]:
        from tests.support.kernel import RemoteKernel

        kernel = RemoteKernel(f"{hub.url}/user/{STUDENT}", token)
        before = kernel_pids(pid)
        await kernel.start()
        try:
            await kernel.execute("1")
            mine = kernel_pids(pid) - before
            assert len(mine) == 1 and cgroup_of(next(iter(mine))) == group
            # More than the whole limit, every page touched.
            task = asyncio.ensure_future(kernel.execute(
                f"b = bytearray({LIMIT_BYTES + 300 * 1024 * 1024})\n"
                "for i in range(0, len(b), 4096): b[i] = 1\nprint('survived')", timeout=300))
            while not task.done() and all(Path(f"/proc/{p}").exists() for p in mine):
                await asyncio.sleep(0.2)  # polling the kernel process; its death decides
            killed = not task.done()
            task.cancel()
            return mine, killed
        finally:
            await kernel.shutdown()

    def run(coroutine: Any) -> Any:
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, coroutine).result(timeout=600)

    kernel, killed = run(greedy())
    assert killed, "the kernel allocated past the lab's limit and was not stopped"
    assert not any(Path(f"/proc/{p}").exists() for p in kernel)
    if version == 1:
        oom = dict(line.split() for line in (group / "memory.oom_control").read_text().splitlines())
        assert int(oom["oom_kill"]) >= 1
    else:
        events = dict(line.split() for line in (group / "memory.events").read_text().splitlines())
        assert int(events["oom_kill"]) >= 1

    # The lab itself was not the one stopped: it serves, and runs a new kernel.
    assert Path(f"/proc/{pid}").exists()
    status = requests.get(f"{hub.url}/user/{STUDENT}/api/status", timeout=30,
                          headers={"Authorization": f"token {token}"})
    assert status.status_code == 200 and "started" in status.json()
    assert in_kernel(hub, STUDENT, token, "print(2 + 2)").strip() == "4"
