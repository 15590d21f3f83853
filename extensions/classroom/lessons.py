"""Teachers' own lessons: publish a lesson notebook to your school or one class, and get new ones.

``classroom.lessons.publish("my_lesson.ipynb")`` (teachers; admins name a
``tenant``) sends the notebook, outputs cleared, to the gateway (``POST
/api/lessons/published``, audited). It lands in the school's published folder
under ``lessons/``; each student of the school finds it in ``~/lessons`` at
their next lab start, never over a copy they have edited. With ``group="7b"``
it goes to one class only: the members of the hub group ``class-<school>-7b``
(students outside it never get it). In a running lab
``classroom.lessons.update()`` fetches new ones at once.
``classroom.lessons.withdraw("my_lesson.ipynb")`` (with the same ``group``)
takes it back: nobody gets it any more, and copies students already have (their
work) stay theirs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ._exceptions import GatewayError
from .publish import Published, _read_notebook

LESSONS_PATH = "/api/lessons/published"


def publish(notebook: str | Path, *, name: str | None = None, tenant: str | None = None,
            group: str | None = None, client: Any = None) -> Published:
    """Publish the lesson ``notebook`` to your school (or ``tenant``, for administrators),
    or to one of its classes (``group``: the label, or the hub group's whole name)."""
    path = Path(notebook).expanduser()
    body: dict[str, Any] = {"name": name or path.name, "notebook": _read_notebook(path)}
    if tenant:
        body["tenant"] = tenant
    if group:
        body["group"] = group
    answer = _client(client).post(LESSONS_PATH, json=body)
    return Published(answer["name"], answer["tenant"], answer.get("title", ""), answer["url"])


def withdraw(name: str, *, tenant: str | None = None, group: str | None = None,
             client: Any = None) -> None:
    """Take a published lesson back (students' own copies stay theirs)."""
    params = {k: v for k, v in (("tenant", tenant), ("group", group)) if v}
    _client(client).request("DELETE", f"{LESSONS_PATH}/{name}", params=params or None)


def published(*, client: Any = None) -> list[dict[str, Any]]:
    """The lessons published to your school."""
    return list(_client(client).get(LESSONS_PATH)["items"])


def update(home: str | Path | None = None, *, client: Any = None) -> list[str]:
    """Copy lessons published since your lab started into ``~/lessons`` (your school's from
    ``~/published``, your classes' from the gateway); the files copied."""
    from hub.homes import LESSONS, PUBLISHED, seed_folder, write_missing

    home = Path(home or Path.home())
    copied, warnings = seed_folder(home / PUBLISHED / LESSONS, home, LESSONS)
    gateway = _client(client)
    if gateway.configured:
        given: dict[str, bytes] = {}
        try:
            for item in published(client=gateway):
                if item.get("class") and item["name"] not in given:
                    answer = gateway.get(f"{LESSONS_PATH}/{item['name']}/notebook",
                                         params={"group": item["class"]})
                    given[item["name"]] = json.dumps(answer["notebook"], ensure_ascii=False,
                                                     indent=1).encode()
        except GatewayError as error:  # the school's lessons are copied all the same
            warnings.append(f"your classes' lessons could not be fetched now ({error}); "
                            "run classroom.lessons.update() again later")
        more, problems = write_missing(given, home)
        copied, warnings = copied + more, warnings + problems
    for warning in warnings:
        print(f"classroom.lessons: {warning}")
    return [str(p.relative_to(home)) for p in copied]


def _client(client: Any) -> Any:
    if client is None:
        from ._client import GatewayClient

        client = GatewayClient(source="lesson")
    return client
