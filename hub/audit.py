"""The hub's side of the audit log: account changes, password changes, lockouts.

The gateway owns the audit log (``GET /api/audit``). Account actions happen on
the hub side — the ``classroom accounts`` command, the password page, the login
form, the admin panel — sometimes while the gateway is down. So the hub appends
each action as one JSON line to ``DATA_DIR/hub-audit.jsonl`` (mode 0600, root's),
and the gateway imports new lines into its audit log (``gateway.history.audit``).
Nothing secret is ever written: no password, no token.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any

AUDIT_FILE = "hub-audit.jsonl"


def record(
    data_dir: Path | str, *, actor: str, actor_role: str, action: str, target: str | None = None,
    tenant: str | None = None, details: dict[str, Any] | None = None,
) -> None:
    entry = {
        "at": time.time(), "actor": actor, "actor_role": actor_role, "action": action,
        "target": target, "tenant": tenant, "details": details or {},
    }
    line = (json.dumps(entry, sort_keys=True) + "\n").encode()
    fd = os.open(Path(data_dir) / AUDIT_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # one whole line at a time, whoever writes
        os.write(fd, line)
    finally:
        os.close(fd)
