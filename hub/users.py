"""The OS accounts labs run as when the hub runs as root.

Every hub user gets a system user of their own, made at their first spawn;
every school gets a system group whose members may read its published
dashboards. The names are derived, never chosen by a person:

================  ==========================================================
hub user ``ann``  system user ``cls-ann`` (and its private group ``cls-ann``)
school ``s_a``    system group ``clsg-s_a``
================  ==========================================================

A hub name that is not already a plain system name (``[a-z][a-z0-9_-]*``)
or that would make a name longer than 32 characters is written as
``cls_<readable part>_<10 hex digits of sha256(name)>`` (``clsg_...`` for
schools): ``ann.lee`` becomes ``cls_ann_lee_<hash>``. The four prefixes
``cls-``, ``cls_``, ``clsg-``, ``clsg_`` never overlap, so no two hub users, no
user and school, and neither rule with the other can share a name.

The user is an ordinary locked account (no password, shell ``nologin``, UID
from the normal range, so a school may have thousands) whose comment names
the hub user (``AI Classroom lab of ann``). An existing system user of the
same name without that comment is never taken over: the spawn fails instead.
The home in the password file is informational; labs start in the spawner's
``home_dir`` whatever it says.
"""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import re
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

USER_PREFIX = "cls"
GROUP_PREFIX = "clsg"
MAX_NAME = 32  # useradd's limit on Linux
COMMENT = "AI Classroom lab of {hub_name}"
NOLOGIN = "/usr/sbin/nologin"
_PLAIN = re.compile(r"[a-z][a-z0-9_-]*")
_UNSAFE = re.compile(r"[^a-z0-9_]+")
# useradd/groupadd lock /etc/passwd and /etc/group; one at a time in this process.
_accounts_lock = threading.Lock()


class SystemUserError(RuntimeError):
    """A lab's OS account could not be made or is not ours; the message says which."""


def _derived(prefix: str, name: str) -> str:
    if _PLAIN.fullmatch(name) and len(prefix) + 1 + len(name) <= MAX_NAME:
        return f"{prefix}-{name}"
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:10]
    room = MAX_NAME - len(prefix) - len(digest) - 2
    readable = _UNSAFE.sub("_", name.lower()).strip("_")[:room] or "x"
    return f"{prefix}_{readable}_{digest}"


def system_username(hub_name: str) -> str:
    """The system user a hub user's lab runs as (see the module docstring)."""
    return _derived(USER_PREFIX, hub_name)


def school_group(tenant: str) -> str:
    """The system group whose members read school ``tenant``'s published dashboards."""
    return _derived(GROUP_PREFIX, tenant)


@dataclass(frozen=True)
class LabAccount:
    """A lab's OS identity: what the spawner switches to."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]  # every group, the primary one included


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    """Run useradd & co, retrying while another process holds the account files' lock."""
    for attempt in range(20):
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 10:  # 10: cannot lock /etc/passwd or /etc/group
            return result
        time.sleep(0.05 * (attempt + 1))
    return result


def ensure_group(name: str) -> int:
    """The GID of system group ``name``, created when missing."""
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        pass
    with _accounts_lock:
        result = _run(["groupadd", name])
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        raise SystemUserError(
            f"could not create the system group {name!r}: {result.stderr.strip()}"
        ) from None


def _ours(entry: pwd.struct_passwd, hub_name: str) -> bool:
    return entry.pw_gecos.split(",")[0] == COMMENT.format(hub_name=hub_name)


def ensure_user(hub_name: str, home: Path) -> pwd.struct_passwd:
    """The system user of ``hub_name``, created (locked, no home made) when missing."""
    name = system_username(hub_name)
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        command = [
            "useradd", "--no-create-home", "--home-dir", str(home), "--shell", NOLOGIN,
            "--comment", COMMENT.format(hub_name=hub_name),
        ]
        try:
            grp.getgrnam(name)
            command += ["--gid", name]  # a private group left by an earlier attempt
        except KeyError:
            command += ["--user-group"]
        with _accounts_lock:
            result = _run([*command, name])
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            raise SystemUserError(
                f"could not create the system user {name!r} for {hub_name!r}: "
                f"{result.stderr.strip()}"
            ) from None
    if not _ours(entry, hub_name):
        raise SystemUserError(
            f"the system user {name!r} already exists and is not the classroom's account "
            f"of {hub_name!r} (its comment is {entry.pw_gecos!r}); refusing to run a lab as it"
        )
    if entry.pw_uid == 0 or entry.pw_gid == 0:
        raise SystemUserError(f"the system user {name!r} has UID or GID 0; refusing to use it")
    return entry


def set_school_groups(entry: pwd.struct_passwd, groups: list[str]) -> None:
    """Make ``groups`` the user's supplementary groups (a move of school drops the old one)."""
    wanted = sorted(set(groups))
    current = sorted(g.gr_name for g in grp.getgrall() if entry.pw_name in g.gr_mem)
    if current == wanted:
        return
    with _accounts_lock:
        result = _run(["usermod", "-G", ",".join(wanted), entry.pw_name])
    if result.returncode != 0:
        raise SystemUserError(
            f"could not set the groups of {entry.pw_name!r}: {result.stderr.strip()}"
        )


def ensure_lab_account(hub_name: str, home: Path, tenant: str | None) -> LabAccount:
    """Create or check the OS user of ``hub_name`` and its school group; return its identity."""
    entry = ensure_user(hub_name, home)
    school = [school_group(tenant)] if tenant else []
    for group in school:
        ensure_group(group)
    set_school_groups(entry, school)
    gids = tuple(os.getgrouplist(entry.pw_name, entry.pw_gid))
    return LabAccount(entry.pw_name, entry.pw_uid, entry.pw_gid, gids)

