"""Start your class's labs before the lesson (teachers), from a notebook or a dashboard.

::

    from classroom.classstart import start_class, class_status
    start_class()            # every stopped student lab of your school, one after another
    class_status()           # each student's lab: ready, starting, waiting (place), stopped

Both call the hub's ``/hub/api/classroom/class-start`` (see the hub's
``hub.classstart``) with this lab's own token (``JUPYTERHUB_API_TOKEN``), which
carries a teacher's right to start their own school's class and nothing more.
The labs start in the hub's start queue after any student who is waiting
right now, so starting a class never slows down a lesson in progress.
Admins name the school: ``start_class("school_a")``.
"""

from __future__ import annotations

import os
from typing import Any

from ._exceptions import GatewayError

__all__ = ["class_status", "start_class"]

PATH = "classroom/class-start"


def _call(method: str, school: str | None, timeout: float) -> dict[str, Any]:
    import httpx

    api = os.environ.get("JUPYTERHUB_API_URL", "").rstrip("/")
    token = os.environ.get("JUPYTERHUB_API_TOKEN", "")
    if not api or not token:
        raise GatewayError("Starting a class works from a lab of the classroom's hub "
                           "(JUPYTERHUB_API_URL and JUPYTERHUB_API_TOKEN are not set).",
                           code="not_in_hub")
    url = f"{api}/{PATH}"
    try:
        response = httpx.request(
            method, url, headers={"Authorization": f"token {token}"}, timeout=timeout,
            params={"school": school} if school and method == "GET" else None,
            json={"school": school} if method == "POST" else None,
        )
    except httpx.HTTPError as exc:
        raise GatewayError(f"The hub does not answer ({type(exc).__name__}).",
                           code="hub_unavailable", url=url) from None
    if response.status_code >= 400:
        try:
            message = str(response.json().get("message") or response.text)
        except ValueError:
            message = response.text[:300]
        code = {400: "invalid_request", 403: "forbidden", 404: "not_found"}.get(
            response.status_code, "hub_error")
        raise GatewayError(message, code=code, status=response.status_code, url=url)
    result: dict[str, Any] = response.json()
    return result


def start_class(school: str | None = None, *, timeout: float = 120) -> dict[str, Any]:
    """Start every stopped student lab of ``school`` (default: yours); the class's status.

    The answer has ``queued`` (names whose labs were asked for), ``refused``
    (name → why) and, per student, ``labs``: ``{"name", "state", ...}`` where a
    waiting lab has its ``place`` in line and ``ready_in_s``.
    """
    return _call("POST", school, timeout)


def class_status(school: str | None = None, *, timeout: float = 30) -> dict[str, Any]:
    """Each student's lab of ``school`` (default: yours) and how many are in each state."""
    return _call("GET", school, timeout)
