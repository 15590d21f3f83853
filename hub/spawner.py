"""The lab spawner: a local JupyterLab per user, wired to the gateway.

When the hub runs as root (the normal case for a school server), every lab
runs as its own OS user (:mod:`hub.users`: ``cls-<name>``, created at the first
spawn) in its home ``<data dir>/home/<name>``, mode 0700 and owned by that
user. Without root, labs share the hub's OS user
(:class:`~jupyterhub.spawner.SimpleLocalProcessSpawner`) and are not isolated:
``classroom run`` and the hub's home page say so.

Before each start the lesson notebooks are copied into ``<home>/lessons/``
(never over a copy the student has edited) and ``~/published`` is linked to
the school's folder of published dashboards (``<data dir>/published/<tenant>``)
by :mod:`hub.homes`, run as the student's own user when labs are isolated. The
lab's environment points every official AI SDK at the gateway with the lab's
own hub token as API key, so no provider key ever reaches a kernel.

Labs start a few at a time (:mod:`hub.startqueue`): a spawn first waits for a
place in the hub's start queue (no timeout runs while it waits; the spawn
page shows the place in line and an estimate), then prepares the home, starts
the lab and keeps the place until the lab answers HTTP. ``start_timeout``
therefore covers one lab's own start, which the queue keeps short.

The published folder is read-only for labs: with isolation it is
``root:clsg-<tenant>`` mode 2750 (the school's users read it, only the gateway,
running as root, writes it, on a teacher's request); without isolation its
mode is 0555, and in both cases the lab's contents manager refuses saves into
it (:mod:`hub.labhooks`).
"""

from __future__ import annotations

import asyncio
import grp
import inspect
import json
import math
import os
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
from jupyterhub.spawner import SimpleLocalProcessSpawner
from traitlets import Bool, Float, List, default

from . import homes, memlimit
from .capacity import MEASURED_CPU_PER_LAB
from .homes import copy_missing
from .labs import VENV_BIN, ClassroomLab
from .startqueue import NOW, LabStarts, Place, StartQueue, Ticket
from .users import LabAccount, SystemUserError, ensure_lab_account, school_group, system_username

__all__ = ["ClassroomSpawner", "copy_missing"]

HOMES_MODE = 0o711  # <data dir>/home: labs pass through to their own home, list nothing
HOME_MODE = 0o700
PUBLISHED_MODE = 0o2750  # root:clsg-<tenant>; new files keep the school's group


def chown_tree(top: Path, uid: int, gid: int) -> int:
    """Give ``top`` and everything below it to ``uid:gid`` without following links."""
    count = 0
    for root, dirs, files in os.walk(top, followlinks=False):
        for name in [*dirs, *files]:
            os.chown(os.path.join(root, name), uid, gid, follow_symlinks=False)
            count += 1
    os.chown(top, uid, gid, follow_symlinks=False)
    return count + 1


def about(seconds: float) -> str:
    """An estimate as people say it: rounded up to 5 s, then to the minute."""
    if seconds < 60:
        return f"about {max(5, math.ceil(seconds / 5) * 5)} s"
    return f"about {math.ceil(seconds / 60)} min"


def waiting_event(place: Place) -> dict[str, Any]:
    """The progress event of a lab waiting in the start queue."""
    others = place.place - 1
    return {
        "progress": 10,
        "message": (
            f"Many labs are starting at once. You are number {place.place} in line "
            f"({others} before you, {place.starting} starting now); "
            f"your lab should be ready in {about(place.ready_s)}. Keep this page open."
        ),
        "queue": {
            "place": place.place,
            "waiting": place.waiting,
            "starting": place.starting,
            "ready_in_s": round(place.ready_s),
        },
    }


def is_lab_process(pid: int) -> bool:
    """Whether ``pid`` is a live single-user server (not a zombie, not a reused PID)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            if stat.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                return False
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            command = cmdline.read()
            return b"jupyterhub-singleuser" in command or b"hub.labstart" in command
    except (OSError, IndexError):
        return False


class ClassroomSpawner(ClassroomLab, SimpleLocalProcessSpawner):
    """A local lab with lessons seeded and the gateway in its environment.

    The classroom's options (``gateway_url``, ``lessons_dir``, ``role_notebooks``,
    ``published_root``)
    and the lab's environment come from :class:`hub.labs.ClassroomLab`, shared
    with the Kubernetes spawner."""

    isolated = Bool(
        config=True,
        help="""
        Run each lab as its own OS user (see `hub.users` for the names).

        Default: True when the hub runs as root, which it needs to switch users.
        The user is created at the first spawn; its home (`home_dir`) is made
        mode 0700 and given to it, also when an earlier run left it to root.
        False: labs run as the hub's own OS user and can read everything it can.
        """,
    )

    @default("isolated")
    def _default_isolated(self) -> bool:
        return os.geteuid() == 0

    start_cuts = Bool(
        True,
        config=True,
        help="""
        Start labs without what a classroom lab does not need at start.

        True (default): the lab runs as `python -m hub.labstart` (jupyterhub-singleuser
        without the `rfc3987_syntax` import, about 1 CPU s per lab) and without
        `disabled_server_extensions`. False: plain `jupyterhub-singleuser` with every
        installed server extension, as before these cuts; for telling whether a
        problem comes from them, and for the benchmark's "before" row
        (`python -m benchmarks labstart`, benchmarks/RESULTS.md).
        """,
    )

    disabled_server_extensions = List(
        ["jupyter_lsp"],
        config=True,
        help="""
        Jupyter server extensions installed in the venv that labs do not load.

        Default: `jupyter_lsp`, the language-server bridge, which looks for a
        dozen language servers (none is installed) at every start: up to 0.1
        CPU s and 1 s of wall time per lab (benchmarks/RESULTS.md). Empty:
        every installed extension loads.
        """,
    )

    lab_start_cpu_seconds = Float(
        MEASURED_CPU_PER_LAB,
        config=True,
        help="""
        CPU seconds one lab takes to start on this kind of machine (measured).

        `make bench` measures it (benchmarks/RESULTS.md, "one lab's start").
        The default timeouts are made from it: with at most
        `LabStarts.parallel` labs starting at once on the machine's cores, a
        lab's own start takes about this long in wall time, and
        `start_timeout` allows ten times that (at least 120 s) for a machine
        busy with other work. Waiting in the start queue is not timed.
        Default: `hub.capacity.MEASURED_CPU_PER_LAB`.
        """,
    )

    def expected_start_seconds(self) -> float:
        """Wall time one lab's start should take with the queue's parallel starts."""
        cores = max(1, os.cpu_count() or 1)
        parallel = LabStarts.instance(config=self.config).parallel
        return self.lab_start_cpu_seconds * max(1.0, parallel / cores)

    @default("start_timeout")
    def _default_start_timeout(self) -> int:
        return max(120, math.ceil(10 * self.expected_start_seconds()))

    @default("http_timeout")
    def _default_http_timeout(self) -> int:
        # start() returns only once the lab answers; this is the hub's own re-check.
        return max(60, math.ceil(5 * self.expected_start_seconds()))

    @default("cmd")
    def _default_cmd(self) -> list[str]:
        # jupyterhub-singleuser of the venv, whatever PATH the hub was started with,
        # without what a lab does not need at start (hub.labstart).
        if not self.start_cuts:
            return [str(Path(VENV_BIN) / "jupyterhub-singleuser")]
        return [str(Path(VENV_BIN) / "python"), "-m", "hub.labstart"]

    @default("args")
    def _default_args(self) -> list[str]:
        # Only a lab that really runs as root needs (and gets) --allow-root.
        return ["--allow-root"] if os.geteuid() == 0 and not self.isolated else []

    @default("default_url")
    def _default_default_url(self) -> str:
        return "/lab"

    _account: LabAccount | None = None
    _cgroup: memlimit.LabCgroup | None = None
    _ticket: Ticket | None = None
    #: Set to ``"ahead"`` before a teacher's pre-start spawns it (hub.classstart).
    start_tier: str = NOW

    @property
    def system_username(self) -> str:
        """The OS user the lab runs as."""
        return system_username(self.user.name) if self.isolated else self.user.name

    # -- shared-user labs: prepared in the hub's process -------------------------

    def seed_lessons(self) -> list[Path]:
        """Copy new lesson files into the user's home; return what was copied."""
        if not self.lessons_dir:
            return []
        home = Path(self.home_dir)
        home.mkdir(mode=HOME_MODE, parents=True, exist_ok=True)
        copied, warnings = homes.seed_lessons(Path(self.lessons_dir), home)
        for folder in self.role_folders():
            more, problems = homes.seed_folder(folder, home)
            copied, warnings = copied + more, warnings + problems
        self._report(copied, warnings)
        return copied

    def link_published(self) -> Path | None:
        """Point ``~/published`` at the school's folder; return the folder linked."""
        folder = self.school_folder()
        if folder is None:
            return None
        if not folder.exists():
            folder.mkdir(parents=True, exist_ok=True)
            folder.chmod(0o555)
        home = Path(self.home_dir)
        home.mkdir(mode=HOME_MODE, parents=True, exist_ok=True)
        linked, warnings = homes.link_published(home, folder)
        copied, problems = homes.seed_school_lessons(folder, home)  # teachers' own lessons
        more, others = homes.write_missing(self.class_lessons(), home)  # and their classes'
        self._report(copied + more, warnings + problems + others)
        return folder if linked else None

    def _report(self, copied: list[Any], warnings: list[str]) -> None:
        for warning in warnings:
            self.log.warning("%s: %s", self.user.name, warning)
        if copied:
            self.log.info("Copied %d lesson file(s) for %s", len(copied), self.user.name)

    # -- isolated labs: root makes the account and the home, the user fills it ---

    def prepare_account(self) -> LabAccount:
        """Create or check the lab's OS user, its home and its school's folder (as root)."""
        tenant = self.user_tenant()
        home = Path(self.home_dir)
        account = ensure_lab_account(self.user.name, home, tenant)
        if not home.parent.exists():
            home.parent.mkdir(parents=True, exist_ok=True)
            home.parent.chmod(HOMES_MODE)
        if home.is_symlink():
            raise SystemUserError(f"{home} is a symbolic link; refusing to use it as a home")
        try:
            home.mkdir(mode=HOME_MODE)
            os.chown(home, account.uid, account.gid)
        except FileExistsError:
            if home.lstat().st_uid != account.uid:
                count = chown_tree(home, account.uid, account.gid)  # a home of an earlier run
                self.log.info("Gave %s (%d entries) to %s", home, count, account.name)
        home.chmod(HOME_MODE)
        folder = self.school_folder()
        if folder is not None and tenant is not None:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            gid = grp.getgrnam(school_group(tenant)).gr_gid
            os.chown(folder, 0, gid, follow_symlinks=False)
            folder.chmod(PUBLISHED_MODE)
            lessons = folder / homes.LESSONS  # teachers' own lessons: the school reads them too
            if lessons.is_dir() and not lessons.is_symlink():
                os.chown(lessons, 0, gid, follow_symlinks=False)
                lessons.chmod(PUBLISHED_MODE)
        self._account = account
        return account

    def fill_home_as_user(self, account: LabAccount) -> None:
        """Seed lessons and link ``~/published`` with the user's own rights (``hub.homes``)."""
        home = Path(self.home_dir)
        command = self.home_command(str(home))
        # The lessons of the user's classes: in a folder only the hub reads, handed over.
        given = {name: content.decode() for name, content in self.class_lessons().items()}
        if given:
            command.append("--class-lessons")
        result = subprocess.run(
            command, cwd=home, user=account.uid, group=account.gid,
            extra_groups=list(account.groups), capture_output=True, text=True, timeout=120,
            env={"PATH": os.defpath, "HOME": str(home), "LANG": "C.UTF-8"}, check=False,
            input=json.dumps(given) if given else None,
        )
        if result.returncode != 0:
            self.log.error(
                "Preparing the home of %s failed: %s", self.user.name, result.stderr.strip()[-2000:]
            )
            return
        report = json.loads(result.stdout)
        self._report(report.get("copied", []), report.get("warnings", []))

    def prepare_lab(self) -> None:
        """Everything the lab needs on disk before it starts, and its memory limit."""
        if self.isolated:
            self.fill_home_as_user(self.prepare_account())
        else:
            self.seed_lessons()
            self.link_published()
        self.prepare_memory_limit()

    def prepare_memory_limit(self) -> None:
        """A cgroup with ``mem_limit`` for the lab and its kernels, where one can be made."""
        self._cgroup = None
        if not self.mem_limit:
            return
        self._cgroup = memlimit.lab_cgroup(self.system_username, int(self.mem_limit))
        if self._cgroup is None:
            self.log.warning(
                "The memory limit of %s (%s bytes) is not enforced: that needs the hub to run "
                "as root on a machine with a memory cgroup (docs/isolation.md).",
                self.user.name, self.mem_limit,
            )

    # -- the start queue ------------------------------------------------------------------

    @property
    def start_queue(self) -> StartQueue:
        return LabStarts.instance(config=self.config).queue

    async def run_pre_spawn_hook(self) -> None:
        queue = self.start_queue
        tier, self.start_tier = self.start_tier, NOW
        self._leave_queue()
        self._ticket = ticket = queue.join(self.user.name, tier)
        if ticket.waiting:
            self.log.info(
                "Start of %s waits in line (%s): number %d, %d starting",
                self.user.name, tier, queue.place(ticket).place, len(queue.starting),
            )
        await queue.wait(ticket)  # a cancelled spawn gives its place up
        try:
            # useradd, chown and the seeding subprocess must not block the hub's loop.
            await asyncio.to_thread(self.prepare_lab)
            result = super().run_pre_spawn_hook()
            if inspect.isawaitable(result):
                await result
        except BaseException:
            self._leave_queue()
            raise

    def _leave_queue(self, ok: bool = False) -> None:
        ticket, self._ticket = self._ticket, None
        if ticket is not None:
            self.start_queue.leave(ticket, ok=ok)

    async def start(self) -> Any:
        try:
            address = await super().start()
            await self.wait_for_lab(*address)
        except BaseException:
            self._leave_queue()
            raise
        self._leave_queue(ok=True)
        return address

    async def wait_for_lab(self, ip: str, port: int) -> None:
        """Until the lab answers HTTP; fail at once when its process has exited."""
        url = f"http://{ip or '127.0.0.1'}:{port}{self.user.url}api"
        delay = 0.05
        async with httpx.AsyncClient(timeout=5.0) as client:
            while True:
                code = self.proc.poll() if self.proc is not None else None
                if code is not None:
                    raise RuntimeError(f"the lab of {self.user.name} exited with code {code}")
                try:
                    await client.get(url)
                    return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(delay)  # polling interval; the answer decides
                delay = min(delay * 1.5, 0.5)

    async def stop(self, now: bool = False) -> None:
        self._leave_queue()
        await super().stop(now=now)
        if self._cgroup is not None and self._cgroup.remove():
            self._cgroup = None

    async def progress(self) -> AsyncIterator[dict[str, Any]]:
        """The spawn page's messages: place in line and estimate, updated as the line moves."""
        queue = self.start_queue
        began = time.monotonic()
        while True:
            ticket = self._ticket
            seen = queue.version
            if ticket is None:
                yield {"progress": 5, "message": "Getting your lab ready…"}
            elif ticket.waiting:
                queue.promote(ticket)  # someone is watching this spawn: its owner is here
                yield waiting_event(queue.place(ticket))
            elif ticket.starting:
                left = queue.place(ticket).ready_s
                yield {
                    "progress": 60,
                    "message": f"Starting your lab: ready in {about(left)}"
                    if left > 0 else "Starting your lab: almost ready (taking longer than usual)",
                    "queue": {"place": 0, "ready_in_s": round(left)},
                }
            if time.monotonic() - began > 24 * 3600:  # pragma: no cover - a stuck spawn
                return
            await queue.changed(timeout=5 if ticket is not None else 0.5, since=seen)

    def make_preexec_fn(self, name: str) -> Callable[[], None]:
        cgroup = self._cgroup
        if not self.isolated:
            inner = super().make_preexec_fn(name)

            def shared() -> None:
                if cgroup is not None:
                    cgroup.join()
                inner()

            return shared
        account = self._account or self.prepare_account()
        home = self.home_dir

        def preexec() -> None:
            if cgroup is not None:
                cgroup.join()  # as root, before giving root up
            # Not jupyterhub's set_user_setuid: it starts in the passwd home,
            # which another classroom on this machine may have set.
            os.setgid(account.gid)
            os.setgroups(list(account.groups))
            os.setuid(account.uid)
            os.chdir(home)

        return preexec

    def user_env(self, env: dict[str, str]) -> dict[str, str]:
        env["USER"] = env["LOGNAME"] = self.system_username
        env["HOME"] = self.home_dir
        env["SHELL"] = "/bin/bash"
        return env

    async def poll(self) -> int | None:
        # After a hub restart only the PID is known; it may have been reused.
        if self.proc is None and self.pid and not is_lab_process(self.pid):
            self.clear_state()
            return 0
        return await super().poll()

    def get_args(self) -> list[str]:
        return [
            *super().get_args(),
            "--ContentsManager.pre_save_hook=hub.labhooks.refuse_save_in_published",
            # Voila's default runs the cells on the server while the page streams in; the
            # page's widget manager then talks to the kernel before the last cell is done,
            # and the render never finishes (most renders after the first, once the page's
            # scripts are cached; voila#1428). Progressive rendering lets the page ask for
            # each cell once it has loaded, so nothing else talks to the kernel meanwhile.
            "--VoilaConfiguration.progressive_rendering=True",
            *(f"--ServerApp.jpserver_extensions={name}=False"
              for name in (self.disabled_server_extensions if self.start_cuts else ())),
        ]

    def get_env(self) -> dict[str, str]:
        env = super().get_env()
        path = [p for p in env.get("PATH", os.defpath).split(os.pathsep) if p and p != VENV_BIN]
        env["PATH"] = os.pathsep.join([VENV_BIN, *path])
        env.update(self.gateway_env())
        return env
