"""Isolation on one machine, end to end: a real hub run as root, real labs as students.

Each lab runs as its own OS user. From inside a student's kernel we try to
read everything that is not theirs (the gateway's database and master key, the
hub's cookie secret and database, another student's home, another school's
dashboards) and to use the lab's token against admin and other-user endpoints
of hub and gateway: every attempt must be refused. Then the hub is restarted
twice under the student's feet (killed, and by the documented SIGHUP): the lab,
its kernel, the proxy and the gateway keep running and the history is whole.
"""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import signal
import socket
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from gateway.published import publish
from hub.users import school_group, system_username
from tests.e2e.conftest import data_dir_in
from tests.support.hub import Hub, descendants, start_hub
from tests.support.kernel import RemoteKernel
from tests.support.procs import ARTIFACTS, pid_alive, wait_until

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="labs run as their own OS users only under root"),
]

STUDENT, OTHER = "iso_stu_a", "iso_stu_b"  # school_a, school_b
PASSWORD = "isolation-pass-1234"
DASHBOARD = (
    '{"cells": [{"cell_type": "markdown", "metadata": {}, "source": ["# Pulse"]}],'
    ' "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'
)

# Runs inside the student's kernel: how each attempt on the file system ended.
PROBE = '''
import json, os
def probe(action, path):
    try:
        if action == "read":
            with open(path, "rb") as f:
                f.read(1)
        elif action == "list":
            os.listdir(path)
        elif action == "write":
            with open(path, "w") as f:
                f.write("mine now")
        return "allowed"
    except PermissionError:
        return "denied"
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return type(exc).__name__
'''


@dataclass
class Classroom:
    hub: Hub
    admin_token: str

    @property
    def data(self) -> Path:
        return self.hub.data_dir

    def home(self, name: str) -> Path:
        return self.data / "home" / name

    def kernel(self, name: str) -> RemoteKernel:
        return RemoteKernel(f"{self.hub.url}/user/{name}", self.admin_token)


@pytest.fixture(scope="module")
def classroom(reachable_tmp: Path) -> Iterator[Classroom]:
    hub = start_hub(data_dir_in(reachable_tmp, "isolation"))
    try:
        admin = hub.token_for(hub.login(hub.admin_user, hub.admin_password), hub.admin_user)
        for name, school in ((STUDENT, "school_a"), (OTHER, "school_b")):
            hub.classroom("accounts", "add", "--tenant", school, "--password", PASSWORD, name)
            hub.login(name, PASSWORD)  # gives the hub user its school's groups
        for name in (STUDENT, OTHER):
            requests.post(f"{hub.api}/users/{name}/server",
                          headers={"Authorization": f"token {admin}"}, timeout=60)
        for name in (STUDENT, OTHER):
            hub.start_server(admin, name)
        for school in ("school_a", "school_b"):
            publish(hub.data_dir, school, "pulse.ipynb", DASHBOARD)
        # The other student has work at the gateway, so there is something to protect.
        other = hub.token_for(hub.login(OTHER, PASSWORD), OTHER)
        reply = requests.post(
            hub.gateway_url + "/v1/chat/completions", timeout=60,
            headers={"Authorization": f"Bearer {other}"},
            json={"model": "mock/echo", "messages": [{"role": "user", "content": "mine"}]},
        )
        assert reply.status_code == 200, reply.text
        yield Classroom(hub, admin)
    finally:
        hub.stop()
        logs = ARTIFACTS / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        (logs / "isolation-hub.log").write_text(hub.log())


def run_in_kernel(classroom: Classroom, name: str, *cells: str) -> list[str]:
    async def scenario() -> list[str]:
        kernel = classroom.kernel(name)
        await kernel.start()
        try:
            return [(await kernel.execute(cell)).text for cell in cells]
        finally:
            await kernel.shutdown()

    return asyncio.run(scenario())


def process_of(hub: Hub, needle: str) -> int:
    for pid in descendants(hub.process.pid):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if needle in cmdline:
            return pid
    raise AssertionError(f"no process {needle!r} under classroom run")


def test_each_lab_runs_as_its_own_os_user_in_a_private_home(classroom: Classroom) -> None:
    (out,) = run_in_kernel(classroom, STUDENT, (
        "import grp, json, os, pwd, jupyter_core.paths\n"
        "print(json.dumps({'user': pwd.getpwuid(os.getuid()).pw_name, 'euid': os.geteuid(),\n"
        "  'groups': sorted(grp.getgrgid(g).gr_name for g in os.getgroups()),\n"
        "  'home': os.environ['HOME'], 'cwd': os.getcwd(),\n"
        "  'runtime': jupyter_core.paths.jupyter_runtime_dir(),\n"
        "  'lab': open(f'/proc/{os.getppid()}/cmdline').read().split(chr(0))}))"
    ))
    seen = json.loads(out)
    account = pwd.getpwnam(system_username(STUDENT))
    home = classroom.home(STUDENT)
    assert seen["user"] == account.pw_name == "cls-iso_stu_a"
    assert seen["euid"] == account.pw_uid != 0
    assert school_group("school_a") in seen["groups"]
    assert school_group("school_b") not in seen["groups"]
    assert seen["home"] == str(home) and Path(seen["cwd"]) == home
    assert seen["runtime"].startswith(str(home) + "/")
    assert seen["lab"][1:3] == ["-m", "hub.labstart"]  # jupyterhub-singleuser, via hub.labstart
    assert "--allow-root" not in seen["lab"]
    info = home.stat()
    assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (account.pw_uid, 0o700)
    lesson = home / "lessons" / "01_first_chat.ipynb"
    assert lesson.stat().st_uid == account.pw_uid  # lessons were copied as the student


def test_data_dir_is_roots_and_private(classroom: Classroom) -> None:
    data = classroom.data
    assert (data.stat().st_uid, stat.S_IMODE(data.stat().st_mode)) == (0, 0o711)
    for name in ("home", "published"):
        assert stat.S_IMODE((data / name).stat().st_mode) == 0o711
    for entry in data.iterdir():
        if entry.name in ("home", "published") or entry.is_symlink():
            continue
        info = entry.stat()
        assert info.st_uid == 0, entry
        assert stat.S_IMODE(info.st_mode) & 0o077 == 0, f"{entry} is {oct(info.st_mode)}"
    folder = data / "published" / "school_b"
    info = folder.stat()
    assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (0, 0o2750)
    import grp

    assert grp.getgrgid(info.st_gid).gr_name == school_group("school_b")


def test_student_reaches_no_secret_and_nothing_of_others(classroom: Classroom) -> None:
    data, proc = classroom.data, Path("/proc")
    other_home = classroom.home(OTHER)
    gateway = process_of(classroom.hub, "gateway serve")
    attempts = {
        "gateway database": ("read", data / "gateway.sqlite"),
        "master key": ("read", data / "master.key"),
        "hub cookie secret": ("read", data / "jupyterhub_cookie_secret"),
        "hub database": ("read", data / "jupyterhub.sqlite"),
        "accounts database": ("read", data / "accounts.sqlite"),
        "admin service token": ("read", data / "classroom-admin.json"),
        "data dir listing": ("list", data),
        "homes listing": ("list", data / "home"),
        "schools listing": ("list", data / "published"),
        "other student's home": ("list", other_home),
        "other student's lesson": ("read", other_home / "lessons" / "01_first_chat.ipynb"),
        "other school's dashboards": ("list", data / "published" / "school_b"),
        "other school's dashboard": ("read", data / "published" / "school_b" / "pulse.ipynb"),
        "own school's folder, writing": ("write", data / "published" / "school_a" / "mine.ipynb"),
        "own school's dashboard, overwriting": (
            "write", data / "published" / "school_a" / "pulse.ipynb"),
        "~/published, writing": ("write", classroom.home(STUDENT) / "published" / "mine.ipynb"),
        "gateway's environment": ("read", proc / str(gateway) / "environ"),
        "classroom run's environment": ("read", proc / str(classroom.hub.process.pid) / "environ"),
    }
    if (data / "artifacts").exists():
        attempts["artifacts"] = ("list", data / "artifacts")
    for what, (action, path) in attempts.items():
        if action != "write":
            assert path.exists(), f"{what}: {path} must exist for the attempt to mean anything"
    allowed = {
        "own school's dashboards": ("list", data / "published" / "school_a"),
        "own school's dashboard": ("read", data / "published" / "school_a" / "pulse.ipynb"),
        "~/published": ("read", classroom.home(STUDENT) / "published" / "pulse.ipynb"),
        "own lesson": ("read", classroom.home(STUDENT) / "lessons" / "01_first_chat.ipynb"),
    }
    cases = {what: (action, str(path)) for what, (action, path) in {**attempts, **allowed}.items()}
    code = PROBE + (
        f"cases = {cases!r}\n"
        "print(json.dumps({what: probe(action, path) for what, (action, path) in cases.items()}))"
    )
    (out,) = run_in_kernel(classroom, STUDENT, code)
    results = json.loads(out)
    assert {what: results[what] for what in attempts} == {what: "denied" for what in attempts}
    assert {what: results[what] for what in allowed} == {what: "allowed" for what in allowed}
    assert not (data / "published" / "school_a" / "mine.ipynb").exists()


def test_lab_token_is_refused_by_admin_and_other_user_endpoints(classroom: Classroom) -> None:
    hub_calls = [
        ("GET", "/users"),
        ("GET", f"/users/{OTHER}"),
        ("POST", f"/users/{OTHER}/server"),
        ("DELETE", f"/users/{OTHER}/server"),
        ("GET", f"/users/{OTHER}/tokens"),
        ("POST", f"/users/{STUDENT}/tokens"),
        ("POST", "/users/iso_intruder"),
        ("PATCH", f"/users/{STUDENT}"),
        ("DELETE", f"/users/{OTHER}"),
        ("GET", "/groups"),
        ("POST", "/groups/tenant-school_b/users"),
        ("GET", "/proxy"),
        ("GET", "/services"),
        ("POST", "/shutdown"),
    ]
    gateway_calls = [
        ("GET", "/api/pool"),
        ("GET", f"/api/runs?user={OTHER}"),
        ("GET", f"/api/students/{OTHER}"),
        ("GET", "/api/admin/tables"),
        ("GET", "/api/keys"),
        ("GET", f"/api/audit?actor={OTHER}"),
        ("GET", "/api/audit?tenant=school_b"),
    ]
    code = (
        "import httpx, json, os\n"
        "token = os.environ['JUPYTERHUB_API_TOKEN']\n"
        "assert token == os.environ['CLASSROOM_API_TOKEN']\n"
        "headers = {'Authorization': f'token {token}'}\n"
        "hub, gateway = os.environ['JUPYTERHUB_API_URL'], os.environ['CLASSROOM_GATEWAY_URL']\n"
        "def call(base, method, path):\n"
        "    body = {'admin': True} if method == 'PATCH' else None\n"
        "    body = {'users': ['x']} if 'groups/' in path else body\n"
        "    answer = httpx.request(method, base + path, headers=headers, json=body, timeout=30)\n"
        "    return answer.status_code\n"
        f"hub_calls, gateway_calls = {hub_calls!r}, {gateway_calls!r}\n"
        "me = httpx.get(hub + '/user', headers=headers, timeout=30).json()\n"
        "print(json.dumps({'name': me['name'], 'scopes': me['scopes'],\n"
        "  'me at gateway': httpx.get(gateway + '/api/me', headers=headers).status_code,\n"
        "  'hub': {f'{m} {p}': call(hub, m, p) for m, p in hub_calls},\n"
        "  'gateway': {f'{m} {p}': call(gateway, m, p) for m, p in gateway_calls}}))"
    )
    (out,) = run_in_kernel(classroom, STUDENT, code)
    seen = json.loads(out)
    assert seen["name"] == STUDENT and seen["me at gateway"] == 200
    # Only what a student's lab needs: its own server, activity and name, the gateway.
    for scope in seen["scopes"]:
        assert scope == "custom:gateway:use" or scope.endswith(
            (f"!user={STUDENT}", f"!server={STUDENT}/")
        ), scope
    assert not any(s.startswith(("admin", "custom:gateway:teach", "custom:gateway:admin"))
                   for s in seen["scopes"])
    assert {call: status for call, status in seen["hub"].items() if status not in (403, 404)} == {}
    # Gateway endpoints the admin reads (below): refused, not merely empty.
    assert seen["gateway"] == {f"{m} {p}": 403 for m, p in gateway_calls}
    # The gateway endpoints exist: an admin gets an answer from each.
    admin = {"Authorization": f"Bearer {classroom.admin_token}"}
    for method, path in gateway_calls:
        url = classroom.hub.gateway_url + path
        response = requests.request(method, url, headers=admin, timeout=30)
        assert response.status_code < 400, (path, response.status_code, response.text[:200])
    other = requests.get(f"{classroom.hub.api}/users/{OTHER}",
                         headers={"Authorization": f"token {classroom.admin_token}"}, timeout=30)
    assert other.json()["servers"][""]["ready"]  # the other lab was not stopped


CHAT = (
    "from openai import OpenAI\n"
    "reply = OpenAI().chat.completions.create(model='mock/echo', "
    "messages=[{{'role': 'user', 'content': '{word}'}}])\n"
    "print(reply.choices[0].message.content)"
)


def hub_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def test_hub_restarts_while_students_keep_working(classroom: Classroom) -> None:
    hub, data = classroom.hub, classroom.data
    hub_port = int(hub.env["CLASSROOM_HUB_PORT"])
    admin = {"Authorization": f"Bearer {classroom.admin_token}"}

    def runs() -> list[dict]:
        response = requests.get(hub.gateway_url + "/api/runs", headers=admin, timeout=30,
                                params={"user": STUDENT, "limit": 500})
        assert response.status_code == 200, response.text
        return response.json()["items"]

    def hub_pid() -> int:
        return int((data / "jupyterhub.pid").read_text())

    def new_hub_ready(old: int) -> bool:
        if not (data / "jupyterhub.pid").exists() or hub_pid() == old:
            return False
        model = requests.get(f"{hub.api}/users/{STUDENT}",
                             headers={"Authorization": f"token {classroom.admin_token}"}, timeout=5)
        return model.status_code == 200 and bool(model.json()["servers"][""]["ready"])

    before_runs = {r["id"] for r in runs()}
    lab_pids = hub.spawner_pids()
    gateway_pid = process_of(hub, "gateway serve")
    proxy_pid = int((data / "jupyterhub-proxy.pid").read_text())

    async def scenario() -> list[str]:
        kernel = classroom.kernel(STUDENT)
        await kernel.start()
        said = []
        try:
            first = "notes = ['kept']\n" + CHAT.format(word="before")
            said.append((await kernel.execute(first)).text)

            # 1. The hub dies (a crash, an operator's kill): classroom run restarts it.
            old = hub_pid()
            os.kill(old, signal.SIGTERM)
            wait_until(lambda: not pid_alive(old), 30, "the hub to exit")
            assert not hub_answers(hub_port)
            said.append((await kernel.execute(CHAT.format(word="during"))).text)
            assert not hub_answers(hub_port), "the call must happen while the hub is down"
            wait_until(lambda: new_hub_ready(old), 90, "the restarted hub")

            # 2. The documented restart: SIGHUP to classroom run.
            old = hub_pid()
            os.kill(hub.process.pid, signal.SIGHUP)
            wait_until(lambda: new_hub_ready(old), 90, "the hub restarted by SIGHUP")
            said.append((await kernel.execute(
                "notes.append('still here')\n" + CHAT.format(word="after"))).text)
            said.append((await kernel.execute("print(notes)")).text)
        finally:
            await kernel.shutdown()
        return said

    said = asyncio.run(scenario())
    assert [s.strip() for s in said[:3]] == ["before", "during", "after"]
    assert said[3].strip() == "['kept', 'still here']"  # the same kernel throughout
    assert hub.spawner_pids() == lab_pids and all(pid_alive(p) for p in lab_pids)
    assert process_of(hub, "gateway serve") == gateway_pid
    assert int((data / "jupyterhub-proxy.pid").read_text()) == proxy_pid
    new = [r for r in runs() if r["id"] not in before_runs]
    assert len(new) == 3 and {r["status"] for r in new} == {"ok"}
    assert "restarting it (labs keep running)" in hub.log()
