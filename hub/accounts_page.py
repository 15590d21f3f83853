"""``/hub/classroom/accounts``: managing accounts without a terminal.

Admins manage everyone; a teacher manages the students of their own school
only (never another school's, never a teacher or an admin). On the page:

- create a class from a roster CSV (the columns of ``classroom accounts import``):
  every row is checked first and any problem is shown by line with nothing
  applied; generated passwords are offered once, as a CSV download made in the
  page (never stored, never sent again);
- add one account (a generated password is shown once when none is typed);
- disable, enable, unlock, reset a password; change a role or a school (admins);
- assign a Suno account to a person (admins): the gateway keeps the accounts and the
  assignments (``/api/suno/*``, audited there); the page asks it with a short-lived
  token of the signed-in admin, so the gateway's own check decides.

It uses the same accounts store and the same audit spool as the ``classroom
accounts`` command (:mod:`hub.accounts`, :mod:`hub.audit`), so both agree. Hub
groups follow the store at the person's next sign-in. :meth:`AccountsHandler.assignments`
is the hook for per-user assignments (tool accounts handed to a person) shown
in the list.
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass
from typing import Any

import httpx
from jupyterhub.handlers import BaseHandler
from tornado import web

from .accounts import Account, AccountError, AccountStore, RosterEntry
from .branding import user_role, user_tenant
from .roster import (
    RosterError,
    RosterRow,
    check_roster,
    credentials_csv,
    parse_roster,
    with_passwords,
)

MAX_UPLOAD_BYTES = 2 * 1024 * 1024
GATEWAY_TIMEOUT = 10.0


@dataclass(frozen=True)
class Manager:
    """Who manages accounts on the page: an admin (everyone) or a teacher of ``school``."""

    name: str
    is_admin: bool
    school: str | None

    @property
    def role(self) -> str:
        return "admin" if self.is_admin else "teacher"

    def may_manage(self, account: Account) -> bool:
        return self.is_admin or (account.tenant == self.school and account.role == "student")

    def refusal(self, tenant: str, role: str) -> str | None:
        """Why this manager may not give someone ``tenant`` and ``role`` (None: allowed)."""
        if self.is_admin:
            return None
        if role != "student":
            return f"teachers add students only, not a {role} (ask an administrator)"
        if tenant != self.school:
            return f"teachers add students of their own school ({self.school}) only, not {tenant}"
        return None


class AccountsHandler(BaseHandler):
    """The accounts page (GET) and its actions (POST ``action=...``)."""

    def _manager(self) -> Manager:
        user = self.current_user
        tenants = self.authenticator.tenants
        if user.admin or user_role(user) == "admin":
            return Manager(user.name, True, user_tenant(user, tenants))
        if user_role(user) == "teacher" and user_tenant(user, tenants):
            return Manager(user.name, False, user_tenant(user, tenants))
        raise web.HTTPError(403, "Only teachers and administrators manage accounts.")

    @property
    def store(self) -> AccountStore:
        """The authenticator's store, refusing schools that have no tenant file (like the CLI)."""
        if getattr(self, "_store", None) is None:
            base = self.authenticator.store
            self._store = AccountStore(base.path, tenants=self.authenticator.tenants,
                                       hasher=base.hasher, lockout=base.lockout)
        return self._store

    def assignments(self, account: Account) -> list[str]:
        """Per-user assignments shown next to an account (the Suno account, for admins)."""
        found = getattr(self, "_suno", {}).get(account.username)
        return [f"Suno: {found['email']}" + (f" ({found['memo']})" if found.get("memo") else "")
                ] if found else []

    # -- the gateway's Suno accounts (admins only) -------------------------------------

    async def _gateway(self, method: str, path: str, **kw: Any) -> Any:
        """Call the gateway as the signed-in admin (a token that expires in two minutes)."""
        base = (getattr(self.current_user.spawner, "gateway_url", "") or "").rstrip("/")
        if not base:
            raise AccountError("The gateway's address is not configured.")
        token = self.current_user.new_api_token(
            note="classroom accounts page (Suno assignments)", expires_in=120)
        async with httpx.AsyncClient(timeout=GATEWAY_TIMEOUT) as client:
            try:
                answer = await client.request(method, base + path, **kw,
                                              headers={"Authorization": f"Bearer {token}"})
            except httpx.HTTPError as exc:
                raise AccountError(f"The gateway did not answer ({type(exc).__name__}).") \
                    from None
        if answer.status_code >= 400:
            try:
                message = answer.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = f"HTTP {answer.status_code}"
            raise AccountError(f"The gateway refused: {message}")
        return answer.json()

    async def _load_suno(self, manager: Manager) -> list[dict[str, Any]]:
        """The Suno accounts (and who has which) for an admin; none for a teacher."""
        self._suno: dict[str, dict[str, Any]] = {}
        if not manager.is_admin:
            return []
        try:
            accounts = (await self._gateway("GET", "/api/suno/accounts"))["items"]
        except AccountError as exc:
            self.log.warning("Suno accounts not shown: %s", exc)
            return []
        for item in accounts:
            for who in item.get("assigned_to") or []:
                self._suno[who["user"]] = item
        return [a for a in accounts if a.get("active")]

    async def _page(self, manager: Manager, **ns: Any) -> None:
        store = self.store
        accounts = await asyncio.to_thread(
            store.list, tenant=None if manager.is_admin else manager.school,
            role=None if manager.is_admin else "student",
        )
        tenants = self.authenticator.tenants
        suno_accounts = await self._load_suno(manager)
        html = await self.render_template(
            "classroom_accounts.html",
            manager=manager,
            accounts=[{"account": a, "locked": a.locked_until is not None,
                       "school": tenants[a.tenant].display_name if a.tenant in tenants
                       else a.tenant,
                       "assignments": self.assignments(a)} for a in accounts],
            schools=sorted((t.tenant_id, t.display_name) for t in tenants.values()),
            roles=["student", "teacher", "viewer", "admin"] if manager.is_admin else ["student"],
            notice=ns.get("notice"), problems=ns.get("problems") or [],
            generated=ns.get("generated") or [], download=ns.get("download"),
            suno_accounts=suno_accounts,
            suno_of={u: a["id"] for u, a in self._suno.items()},
        )
        self.finish(html)

    @web.authenticated
    async def get(self) -> None:
        await self._page(self._manager())

    @web.authenticated
    async def post(self) -> None:
        manager = self._manager()
        action = self.get_body_argument("action", "")
        act = {"import": self._import, "add": self._add, "disable": self._one,
               "enable": self._one, "unlock": self._one, "reset": self._one,
               "change": self._change, "suno": self._assign_suno}.get(action)
        if act is None:
            raise web.HTTPError(400, f"Unknown action {action!r}.")
        try:
            ns = await act(manager, action)
        except RosterError as exc:
            self.set_status(400)
            ns = {"problems": exc.problems + ["Nothing was imported."]}
        except AccountError as exc:
            self.set_status(400)
            ns = {"problems": [str(exc)]}
        await self._page(manager, **ns)

    def _audit(self, manager: Manager, action: str, target: str, **details: Any) -> None:
        self.authenticator.audit(action, target, actor=manager.name, actor_role=manager.role,
                                 details={k: v for k, v in details.items() if v is not None})

    def _offer(self, rows: list[tuple[str, str, str, str]]) -> dict[str, Any]:
        """Generated passwords, shown once and offered once as a CSV made in the page."""
        data = base64.b64encode(credentials_csv(rows).encode()).decode()
        return {"generated": rows, "download": f"data:text/csv;base64,{data}"}

    # -- actions -----------------------------------------------------------------------

    async def _import(self, manager: Manager, _: str) -> dict[str, Any]:
        from .passwords import generate_password

        files = self.request.files.get("roster") or []
        if not files or not files[0]["body"]:
            raise RosterError(["Choose a roster CSV file to upload."])
        upload = files[0]
        name = upload.get("filename") or "roster.csv"
        if len(upload["body"]) > MAX_UPLOAD_BYTES:
            raise RosterError([f"{name}: larger than {MAX_UPLOAD_BYTES // 1024 // 1024} MiB"])
        store = self.store

        def apply() -> tuple[list[Any], dict[str, str], list[RosterEntry]]:
            rows = check_roster(store, parse_roster(upload["body"], name), name)
            self._check_rows(manager, rows, name)
            entries, generated = with_passwords(store, rows, generate_password)
            return store.import_roster(entries), generated, entries

        results, generated, entries = await asyncio.to_thread(apply)
        counts = {a: sum(1 for r in results if r.action == a)
                  for a in ("created", "updated", "unchanged")}
        self.log.info("%s imported %s: %s", manager.name, name, counts)
        self._audit(manager, "account.import", name, **counts)
        notice = f"Imported {name}: " + ", ".join(f"{n} {a}" for a, n in counts.items()) + "."
        rows = [(e.username, e.display_name, e.tenant, generated[e.username])
                for e in entries if e.username in generated]
        return {"notice": notice, **(self._offer(rows) if rows else {})}

    def _check_rows(self, manager: Manager, rows: list[RosterRow], name: str) -> None:
        store = self.store
        problems = []
        for row in rows:
            entry = row.entry
            why = manager.refusal(entry.tenant, entry.role)
            existing = store.get(entry.username)
            if why is None and existing is not None and not manager.may_manage(existing):
                why = f"{entry.username!r} is not one of your students"
            if why:
                problems.append(f"{name}:{row.line}: {why}")
        if problems:
            raise RosterError(problems)

    async def _add(self, manager: Manager, _: str) -> dict[str, Any]:
        from .passwords import generate_password

        username = self.get_body_argument("username", "", strip=True).lower()
        tenant = self.get_body_argument("tenant", "", strip=True) or (manager.school or "")
        role = self.get_body_argument("role", "student", strip=True)
        display_name = self.get_body_argument("display_name", "", strip=True)
        typed = self.get_body_argument("password", "")
        why = manager.refusal(tenant, role)
        if why:
            raise web.HTTPError(403, why[0].upper() + why[1:] + ".")
        password = typed or generate_password()
        store = self.store
        account = await asyncio.to_thread(store.add, username, password, tenant=tenant,
                                          role=role, display_name=display_name)
        self._audit(manager, "account.add", account.username, tenant=tenant, role=role)
        notice = f"Added {account.username} ({role}, {tenant})."
        if typed:
            return {"notice": notice}
        return {"notice": notice, **self._offer(
            [(account.username, account.display_name, account.tenant, password)])}

    def _target(self, manager: Manager) -> Account:
        username = self.get_body_argument("username", "", strip=True).lower()
        account = self.store.get(username)
        if account is None or not manager.may_manage(account):
            # Someone of another school looks exactly like nobody.
            raise web.HTTPError(404, f"There is no account {username!r} you can manage.")
        return account

    async def _one(self, manager: Manager, action: str) -> dict[str, Any]:
        from .passwords import generate_password

        account = self._target(manager)
        store, name = self.store, account.username
        if action == "reset":
            password = generate_password()
            await asyncio.to_thread(store.set_password, name, password)
            self._audit(manager, "account.password_reset", name)
            return {"notice": f"New password for {name}; it is shown only now.",
                    **self._offer([(name, account.display_name, account.tenant, password)])}
        method = {"disable": store.disable, "enable": store.enable, "unlock": store.unlock}[action]
        await asyncio.to_thread(method, name)
        self._audit(manager, f"account.{action}", name)
        done = {"disable": "Disabled", "enable": "Enabled", "unlock": "Unlocked"}[action]
        return {"notice": f"{done} {name}."}

    async def _change(self, manager: Manager, _: str) -> dict[str, Any]:
        if not manager.is_admin:
            raise web.HTTPError(403, "Only administrators change a person's role or school.")
        account = self._target(manager)
        tenant = self.get_body_argument("tenant", account.tenant, strip=True)
        role = self.get_body_argument("role", account.role, strip=True)
        await asyncio.to_thread(self.store.update, account.username,
                                tenant=tenant, role=role)
        self._audit(manager, "account.change", account.username, tenant=tenant, role=role)
        return {"notice": f"{account.username} is now {role} at {tenant} "
                          "(from their next sign-in)."}

    async def _assign_suno(self, manager: Manager, _: str) -> dict[str, Any]:
        if not manager.is_admin:
            raise web.HTTPError(403, "Only administrators assign Suno accounts.")
        account = self._target(manager)
        chosen = self.get_body_argument("suno_account", "", strip=True)
        if chosen and not chosen.isdigit():
            raise AccountError("Choose a Suno account from the list.")
        name = account.username
        if chosen and chosen != "0":
            await self._gateway("PUT", f"/api/suno/assignments/{name}",
                                json={"account_id": int(chosen), "tenant": account.tenant})
            return {"notice": f"{name} now has Suno account {chosen}."}
        await self._gateway("DELETE", f"/api/suno/assignments/{name}",
                            params={"tenant": account.tenant})
        return {"notice": f"{name} has no Suno account now."}
