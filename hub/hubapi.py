"""The ``classroom-admin`` hub service: how the CLI changes hub users while the hub runs.

The hub configuration (:func:`hub.config.configure`) registers an API-only
service ``classroom-admin`` whose token lives in
``<CLASSROOM_DATA_DIR>/classroom-admin.json`` (mode 0600, created once and kept)
together with the hub's API URL of the current run. The service's role allows
exactly what a roster import needs: create users and put them in groups.

When the file is missing or the hub does not answer, the accounts store alone
is enough: the authenticator gives every person their groups at sign-in and at
each auth refresh (``manage_groups``). Syncing through the API only makes new
people and their groups appear in the admin panel at once.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from .roles import CLASSROOM_GROUP_PREFIXES

SERVICE_NAME = "classroom-admin"
SERVICE_FILE = "classroom-admin.json"  # inside CLASSROOM_DATA_DIR
SERVICE_SCOPES = ["admin:users", "admin:groups", "list:users", "list:groups"]


class HubUnavailable(Exception):
    """The hub is not running, or refused the service's token."""


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(text)
    path.chmod(0o600)


def prepare_service(data_dir: Path, api_url: str) -> dict[str, Any]:
    """The hub's ``services`` entry; writes the token file (kept across restarts)."""
    path = data_dir / SERVICE_FILE
    token = None
    try:
        token = json.loads(path.read_text(encoding="utf-8")).get("token")
    except (OSError, ValueError, AttributeError):
        token = None
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_hex(32)
    _write_private(path, json.dumps({"api_url": api_url, "token": token}, indent=2) + "\n")
    return {"name": SERVICE_NAME, "api_token": token, "display": False}


def service_role() -> dict[str, Any]:
    return {
        "name": "classroom-admin-service",
        "description": "The classroom CLI: create hub users and keep their groups in step.",
        "scopes": list(SERVICE_SCOPES),
        "services": [SERVICE_NAME],
    }


@dataclass
class HubClient:
    """A small synchronous client of the hub's REST API, with the service token."""

    api_url: str
    token: str
    timeout: float = 10.0

    @classmethod
    def from_data_dir(cls, data_dir: Path) -> HubClient | None:
        """The client the hub configured for this data dir, or None when there is none."""
        try:
            raw = json.loads((data_dir / SERVICE_FILE).read_text(encoding="utf-8"))
            return cls(str(raw["api_url"]).rstrip("/"), str(raw["token"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _request(self, method: str, path: str, body: Any = None) -> httpx.Response:
        try:
            response = httpx.request(
                method,
                f"{self.api_url}/{path.lstrip('/')}",
                headers={"Authorization": f"token {self.token}"},
                json=body,
                timeout=self.timeout,
            )
        except httpx.HTTPError as exc:
            raise HubUnavailable(f"the hub at {self.api_url} does not answer") from exc
        if response.status_code in (401, 403):
            raise HubUnavailable(
                f"the hub refused the {SERVICE_NAME} token ({response.status_code})"
            )
        return response

    def is_running(self) -> bool:
        try:
            return self._request("GET", "/").status_code == 200
        except HubUnavailable:
            return False

    def _check(self, response: httpx.Response, what: str) -> None:
        if response.status_code >= 400:
            raise HubUnavailable(
                f"{what}: hub answered {response.status_code} {response.text[:200]}"
            )

    def sync_user(self, name: str, groups: list[str]) -> str:
        """Make hub user ``name`` exist with exactly these classroom groups.

        Groups not made by the classroom (other prefixes) are left alone.
        Returns ``created``, ``updated`` or ``unchanged``.
        """
        response = self._request("GET", f"/users/{name}")
        if response.status_code == 404:
            self._check(self._request("POST", f"/users/{name}"), f"create user {name}")
            current: set[str] = set()
            action = "created"
        else:
            self._check(response, f"read user {name}")
            current = set(response.json().get("groups") or [])
            action = "unchanged"
        wanted = set(groups)
        stale = {g for g in current - wanted if g.startswith(CLASSROOM_GROUP_PREFIXES)}
        for group in sorted(wanted - current):
            created = self._request("POST", f"/groups/{group}")
            if created.status_code not in (201, 409):
                self._check(created, f"create group {group}")
            self._check(
                self._request("POST", f"/groups/{group}/users", {"users": [name]}),
                f"add {name} to {group}",
            )
        for group in sorted(stale):
            self._check(
                self._request("DELETE", f"/groups/{group}/users", {"users": [name]}),
                f"remove {name} from {group}",
            )
        if action == "unchanged" and (wanted - current or stale):
            action = "updated"
        return action
