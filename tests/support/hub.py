"""A real classroom hub for end-to-end tests: started with ``classroom run`` on free
loopback ports, driven through its login form and REST API, and stopped by PID
(the hub, and every process it started, even when the hub does not clean up)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from hub.supervisor import descendants  # the product's own walk of /proc
from tests.support import secrets
from tests.support.procs import (
    REPO,
    VENV_BIN,
    free_port,
    http_ok,
    pid_alive,
    stop_process,
    wait_until,
)


@dataclass
class Hub:
    url: str
    data_dir: Path
    env: dict[str, str]
    process: subprocess.Popen
    log_path: Path
    admin_user: str
    admin_password: str
    known_pids: set[int] = field(default_factory=set)

    @property
    def api(self) -> str:
        return self.url + "/hub/api"

    @property
    def gateway_url(self) -> str:
        return self.url + "/services/gateway"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def remember_children(self) -> None:
        """Record the hub's descendants (proxy, gateway, labs) so they can be stopped by PID."""
        self.known_pids |= descendants(self.process.pid)

    def classroom(self, *args: str, check: bool = True,
                  timeout: float = 120) -> subprocess.CompletedProcess:
        for flag, value in zip(args, args[1:], strict=False):
            if flag == "--password":
                secrets.remember(value)
        result = subprocess.run(
            [str(VENV_BIN / "classroom"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"classroom {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
            )
        return result

    def login(self, username: str, password: str) -> requests.Session:
        """Log in through the hub's login form, as a browser would."""
        secrets.remember(password)
        session = requests.Session()
        page = session.get(self.url + "/hub/login", timeout=30)
        page.raise_for_status()
        xsrf = session.cookies.get("_xsrf", "")
        response = session.post(
            self.url + "/hub/login?next=",
            data={"username": username, "password": password, "_xsrf": xsrf},
            allow_redirects=False,
            timeout=30,
        )
        if response.status_code not in (302, 303):
            raise AssertionError(f"login of {username} refused: {response.status_code}")
        return session

    def token_for(self, session: requests.Session, username: str, note: str = "test") -> str:
        """A new API token for a logged-in user, created through the REST API."""
        self.remember_children()
        xsrf = session.cookies.get("_xsrf", "")
        response = session.post(
            f"{self.api}/users/{username}/tokens",
            json={"note": note, "expires_in": 3600},
            headers={"X-XSRFToken": xsrf},
            timeout=30,
        )
        response.raise_for_status()
        token = str(response.json()["token"])
        secrets.remember(token)
        return token

    def start_server(self, token: str, username: str, timeout: float = 120) -> dict[str, Any]:
        headers = {"Authorization": f"token {token}"}
        response = requests.post(f"{self.api}/users/{username}/server", headers=headers, timeout=60)
        if response.status_code not in (201, 202, 400):  # 400: already running
            raise AssertionError(f"spawn of {username}: {response.status_code} {response.text}")

        def ready() -> bool:
            model = requests.get(f"{self.api}/users/{username}", headers=headers, timeout=30).json()
            server = model.get("servers", {}).get("")
            return bool(server and server.get("ready"))

        wait_until(ready, timeout, f"server of {username}", self.process)
        self.remember_children()
        return requests.get(f"{self.api}/users/{username}", headers=headers, timeout=30).json()

    def stop_server(self, token: str, username: str) -> None:
        headers = {"Authorization": f"token {token}"}
        requests.delete(f"{self.api}/users/{username}/server", headers=headers, timeout=60)

        def stopped() -> bool:
            model = requests.get(f"{self.api}/users/{username}", headers=headers, timeout=30).json()
            return not model.get("servers")

        wait_until(stopped, 60, f"stop of {username}'s server", self.process)

    def spawner_pids(self) -> set[int]:
        db = self.data_dir / "jupyterhub.sqlite"
        if not db.exists():
            return set()
        with sqlite3.connect(db) as conn:
            rows = conn.execute("select state from spawners").fetchall()
        pids = set()
        for (state,) in rows:
            try:
                pid = json.loads(state or "{}").get("pid")
            except ValueError:
                continue
            if pid:
                pids.add(int(pid))
        return pids

    def stop(self) -> list[int]:
        """Stop the hub, then anything it started that is still alive. Returns leftovers."""
        self.remember_children()
        self.known_pids |= self.spawner_pids()
        proxy_pid_file = self.data_dir / "jupyterhub-proxy.pid"
        if proxy_pid_file.exists():
            try:
                self.known_pids.add(int(proxy_pid_file.read_text().strip()))
            except ValueError:
                pass
        stop_process(self.process, timeout=30)
        if self.log_path.is_file():  # scanned for secrets at the end, even if deleted by then
            secrets.captured(f"{self.log_path} (hub log)", self.log())
        leftovers = [pid for pid in sorted(self.known_pids) if pid_alive(pid)]
        for pid in leftovers:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while any(pid_alive(p) for p in leftovers) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in leftovers:
            if pid_alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        return leftovers


def start_hub(data_dir: Path, **extra_env: str) -> Hub:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("JUPYTERHUB_", "CLASSROOM_"))},
        "PATH": f"{REPO / '.node' / 'node_modules' / '.bin'}:{VENV_BIN}:{os.environ.get('PATH', '')}",
        "CLASSROOM_PORT": str(port),
        "CLASSROOM_HUB_PORT": str(free_port()),
        "CLASSROOM_PROXY_API_PORT": str(free_port()),
        "CLASSROOM_GATEWAY_PORT": str(free_port()),
        "CLASSROOM_DATA_DIR": str(data_dir),
        "CLASSROOM_ADMIN_USER": "admin",
        "CLASSROOM_ADMIN_PASSWORD": "admin-pass-e2e-1234",
        "CLASSROOM_MOCK_TTFT_MS": "20",
        "CLASSROOM_MOCK_TOKENS_PER_SECOND": "400",
        **extra_env,
    }
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir.parent / f"{data_dir.name}-hub.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(VENV_BIN / "classroom"), "run"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=str(REPO),
            start_new_session=True,
        )
    hub = Hub(
        f"http://127.0.0.1:{port}",
        data_dir,
        env,
        process,
        log_path,
        env["CLASSROOM_ADMIN_USER"],
        env["CLASSROOM_ADMIN_PASSWORD"],
    )
    try:
        wait_until(http_ok(hub.url + "/hub/api"), 90, "hub", process)
        wait_until(
            lambda: (
                requests.get(hub.gateway_url + "/health", timeout=5).json().get("status") == "ok"
            ),
            60,
            "gateway service behind the proxy",
            process,
        )
    except Exception:
        hub.stop()
        raise RuntimeError(f"the hub did not start:\n{hub.log()[-6000:]}") from None
    hub.remember_children()
    secrets.remember(hub.admin_password)
    for name in ("master.key", "jupyterhub_cookie_secret"):
        secrets.remember_file(data_dir / name)
    return hub
