"""Start the class ahead of the bell: a teacher starts all of their school's student labs.

=========================================  ==========================================
``GET  /hub/classroom/class[?school=<id>]``  the page: each student's lab (ready,
                                           starting, waiting with place, stopped)
                                           and a "start the class" button
``POST /hub/classroom/class``              the button (form, ``_xsrf``)
``GET  /hub/api/classroom/class-start``    the same as JSON (``?school=<id>``)
``POST /hub/api/classroom/class-start``    start them: ``{"school": "<id>"}``
``GET  /hub/api/classroom/start-queue``    the start queue: how many start and wait,
                                           with the names of your school's students
=========================================  ==========================================

Who may: holders of ``custom:classroom:start`` (:data:`hub.roles.SCOPE_START`),
which a school's teachers hold filtered to their school's group
(``!group=tenant-<id>``) and admins hold for every school. The scope is in
the lab's token too (``SERVER_TOKEN_SCOPES``), so a teacher's dashboard can
call the API with its own ``JUPYTERHUB_API_TOKEN``
(:func:`classroom.classstart.start_class`).

The labs join the start queue (:mod:`hub.startqueue`) in its ``ahead`` tier:
one after another (``LabStarts.ahead_parallel`` at once), after anyone who is
waiting for their lab right now, so the machine stays responsive while the
class starts and a student who arrives early goes first.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from jupyterhub import orm
from jupyterhub.apihandlers.base import APIHandler
from jupyterhub.handlers import BaseHandler
from jupyterhub.scopes import Scope
from tornado import web

from gateway.contract import tenants_in

from .roles import SCOPE_START, role_group, tenant_group
from .startqueue import AHEAD, LabStarts

STUDENT_GROUP = role_group("student")


class ClassStartMixin:
    """What the page and the API share: who may, which students, their labs' state."""

    def schools_allowed(self: Any) -> set[str] | None:
        """Schools whose class the caller may start; None: every school."""
        sub = self.parsed_scopes.get(SCOPE_START)
        if sub is None:
            return set()
        if sub == Scope.ALL:
            return None
        groups = sub.get("group", set()) if isinstance(sub, dict) else set()
        return set(tenants_in(groups))

    def school_for(self: Any, asked: str | None) -> str:
        """The school named (or the caller's only one); 403/404/400 otherwise."""
        allowed = self.schools_allowed()
        if allowed is not None and not allowed:
            raise web.HTTPError(403, "Only a school's teachers can start its class.")
        tenants = self.authenticator.tenants
        if not asked:
            if allowed is not None and len(allowed) == 1:
                asked = next(iter(allowed))
            else:
                raise web.HTTPError(400, "Name the school whose class to start (school=<id>).")
        if allowed is not None and asked not in allowed:
            raise web.HTTPError(
                403, f"You can start the class of your own school only, not {asked!r}."
            )
        if asked not in tenants:
            raise web.HTTPError(404, f"There is no school {asked!r}.")
        return str(asked)

    def students(self: Any, school: str) -> list[Any]:
        """The hub users who are students of ``school``, by name."""
        group = orm.Group.find(self.db, tenant_group(school))
        if group is None:
            return []
        found = [u for u in group.users if any(g.name == STUDENT_GROUP for g in u.groups)]
        return [self.users[u] for u in sorted(found, key=lambda u: u.name)]

    def lab_state(self: Any, user: Any) -> dict[str, Any]:
        spawner = user.spawner
        queue = LabStarts.instance(config=spawner.config).queue
        ticket = getattr(spawner, "_ticket", None)
        state: dict[str, Any] = {"name": user.name}
        if spawner.ready:
            state["state"] = "ready"
        elif spawner.pending == "spawn":
            if ticket is not None and ticket.waiting:
                place = queue.place(ticket)
                state.update(state="waiting", place=place.place, ready_in_s=round(place.ready_s))
            else:
                state["state"] = "starting"
        elif spawner.pending:
            state["state"] = str(spawner.pending)  # stopping
        else:
            state["state"] = "stopped"
        return state

    def class_status(self: Any, school: str) -> dict[str, Any]:
        labs = [self.lab_state(user) for user in self.students(school)]
        counts: dict[str, int] = {}
        for lab in labs:
            counts[lab["state"]] = counts.get(lab["state"], 0) + 1
        return {"school": school, "students": len(labs), "counts": counts, "labs": labs}

    async def start_class(self: Any, school: str) -> dict[str, Any]:
        """Spawn every stopped student lab of ``school`` in the queue's ``ahead`` tier."""
        to_start = []
        for user in self.students(school):
            spawner = user.spawner
            if not spawner.active:
                spawner.start_tier = AHEAD
                to_start.append(user)
        results = await asyncio.gather(
            *(self.spawn_single_user(user) for user in to_start), return_exceptions=True
        )
        refused: dict[str, str] = {}
        for user, result in zip(to_start, results, strict=True):
            if isinstance(result, BaseException):
                user.spawner.start_tier = "now"
                refused[user.name] = getattr(result, "log_message", None) or str(result)
        started = [u.name for u in to_start if u.name not in refused]
        actor = self.current_user
        self.log.info(
            "%s started the class of %s ahead: %d lab(s) queued, %d refused",
            actor.name, school, len(started), len(refused),
        )
        self.authenticator.audit(
            "class.start", actor.name, actor=actor.name,
            actor_role="admin" if actor.admin else "teacher",
            details={"school": school, "queued": len(started), "refused": len(refused)},
        )
        return {**self.class_status(school), "queued": started, "refused": refused}


class ClassStartAPIHandler(ClassStartMixin, APIHandler):
    """``/hub/api/classroom/class-start``: the class's labs, and starting them."""

    @web.authenticated
    async def get(self) -> None:
        school = self.school_for(self.get_argument("school", None))
        self.write(json.dumps(self.class_status(school)))

    @web.authenticated
    async def post(self) -> None:
        body = self.get_json_body() or {}
        if not isinstance(body, dict):
            raise web.HTTPError(400, 'The body must be a JSON object such as {"school": "..."}.')
        school = self.school_for(body.get("school") or self.get_argument("school", None))
        self.write(json.dumps(await self.start_class(school)))


class StartQueueAPIHandler(ClassStartMixin, APIHandler):
    """``/hub/api/classroom/start-queue``: labs starting and waiting, in order."""

    @web.authenticated
    async def get(self) -> None:
        allowed = self.schools_allowed()
        if allowed is not None and not allowed:
            raise web.HTTPError(403, "Only teachers and admins can see the start queue.")
        snapshot = LabStarts.instance(config=self.config).queue.snapshot()
        if allowed is not None:
            visible = {u.name for school in allowed for u in self.students(school)}
            for key in ("starting", "waiting", "granted"):
                names = snapshot[key]
                assert isinstance(names, list)
                snapshot[key] = [n for n in names if n in visible]
        self.write(json.dumps(snapshot))


class ClassStartPageHandler(ClassStartMixin, BaseHandler):
    """``/hub/classroom/class``: the teacher's page."""

    async def _page(self, school: str, result: dict[str, Any] | None = None) -> None:
        allowed = self.schools_allowed()
        tenants = self.authenticator.tenants
        schools = sorted(tenants if allowed is None else allowed & set(tenants))
        html = await self.render_template(
            "classroom_class.html",
            school=school,
            school_name=tenants[school].display_name,
            schools=[{"id": s, "name": tenants[s].display_name} for s in schools],
            status=self.class_status(school),
            result=result,
        )
        self.finish(html)

    @web.authenticated
    async def get(self) -> None:
        asked = self.get_argument("school", None)
        if not asked and self.schools_allowed() is None:  # an admin: the first school
            asked = next((t for t in sorted(self.authenticator.tenants) if t != "default"), None)
        await self._page(self.school_for(asked))

    @web.authenticated
    async def post(self) -> None:
        school = self.school_for(self.get_body_argument("school", None))
        await self._page(school, await self.start_class(school))


def handlers() -> list[tuple[str, type[BaseHandler]]]:
    return [
        ("/classroom/class", ClassStartPageHandler),
        ("/api/classroom/class-start", ClassStartAPIHandler),
        ("/api/classroom/start-queue", StartQueueAPIHandler),
    ]
