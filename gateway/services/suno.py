"""Suno accounts, as the seed platform handed them out: a school owns a few Suno accounts
(email, password, memo); an administrator assigns one to a person, who sees it in the
Suno widget and reveals its password when they need to sign in at suno.com.

Declared in the configuration (``CLASSROOM_SUNO_ACCOUNTS_JSON`` in the seed's shape, or
``CLASSROOM_SUNO_ACCOUNTS_FILE``), synced at start into ``suno_accounts`` with the
password sealed by the key pool's :class:`~gateway.keypool.store.SecretBox` (the same
master key). The password leaves the gateway in one answer only: the reveal to the person
it is assigned to, and every reveal is audited, as is every assignment.

Plain Python over the history store; the router is :mod:`gateway.api.suno`.
"""

from __future__ import annotations

import json
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from gateway.auth import Identity
from gateway.config.files import ConfigFileError, json_line, toml_table_line
from gateway.config.settings import Settings
from gateway.errors import Forbidden, InvalidRequest, NotFound
from gateway.history.audit import record_audit
from gateway.history.models import suno_accounts, suno_assignments
from gateway.history.store import HistoryStore
from gateway.keypool.store import SecretBox
from gateway.logmask import mask_secrets

JSON_SOURCE = "CLASSROOM_SUNO_ACCOUNTS_JSON"
HOW_TO_USE = (
    "Sign in at https://suno.com with this email and password (choose 'Continue with "
    "email'). The account is the school's: do not change its password or its email, and "
    "sign out when you are done on a shared computer."
)


class SunoAccountsError(ConfigFileError):
    """Suno accounts that cannot be used: which file or variable, which line, why."""


@dataclass(frozen=True)
class SunoAccount:
    id: int
    email: str
    password: str
    memo: str = ""

    def __repr__(self) -> str:  # never the password, even in a traceback
        return f"SunoAccount(id={self.id}, email={self.email!r}, memo={self.memo!r})"


def parse_accounts(data: Any, source: str, text: str = "", toml: bool = False
                   ) -> list[SunoAccount]:
    """The accounts of the seed's list (``[{"id", "email", "password", "memo"}]``); the seed's
    row 0 with an empty email ("no assignment") is not an account and is skipped."""
    if isinstance(data, dict) and toml:
        data = data.get("suno", [])
    if not isinstance(data, list):
        raise SunoAccountsError(source, "expected a list of accounts: "
                                '[{"id": 1, "email": "...", "password": "...", "memo": "..."}]')
    accounts: list[SunoAccount] = []
    seen: set[int] = set()
    for index, entry in enumerate(data):
        def fail(problem: str, field: str | None = None, entry_index: int = index) -> NoReturn:
            line = (toml_table_line(text, "suno", entry_index, field) if toml
                    else json_line(text, [field] if field else []) if text else None)
            raise SunoAccountsError(source, problem, line=line, field=field,
                                    where=f"account {entry_index}")

        if not isinstance(entry, dict):
            fail("each account is an object with id, email, password and memo")
        unknown = sorted(set(entry) - {"id", "email", "password", "memo"})
        if unknown:
            fail(f"unknown field(s) {unknown}; an account has id, email, password, memo")
        account_id, email = entry.get("id"), entry.get("email", "")
        password, memo = entry.get("password", ""), entry.get("memo", "")
        if not isinstance(account_id, int) or isinstance(account_id, bool) or account_id < 0:
            fail("must be a whole number, 0 or more", "id")
        if not all(isinstance(v, str) for v in (email, password, memo)):
            fail("email, password and memo are text", "email")
        if account_id == 0 or not email:
            continue  # the seed's "no assignment" row
        if "@" not in email or len(email) > 320:
            fail(f"{email!r} is not an email address", "email")
        if not password:
            fail("is empty; a Suno account needs its password", "password")
        if account_id in seen:
            fail(f"duplicate account id {account_id}", "id")
        seen.add(account_id)
        accounts.append(SunoAccount(account_id, email.strip(), password, memo.strip()))
    return accounts


def declared_accounts(settings: Settings) -> list[SunoAccount]:
    """The accounts the settings declare (the file wins over the variable)."""
    path: Path | None = settings.suno_accounts_file
    if path is not None:
        file, toml = str(path), path.suffix != ".json"
        try:
            text = path.read_text(encoding="utf-8")
            data = tomllib.loads(text) if toml else json.loads(text)
        except OSError as exc:
            raise SunoAccountsError(file, f"cannot be read: {exc.strerror}") from exc
        except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise SunoAccountsError(file, f"not valid {'TOML' if toml else 'JSON'}: {exc}",
                                    line=getattr(exc, "lineno", None)) from exc
        return parse_accounts(data, file, text, toml)
    if settings.suno_accounts_json:
        text = settings.suno_accounts_json
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SunoAccountsError(JSON_SOURCE, f"not valid JSON: {exc.msg}",
                                    line=exc.lineno) from exc
        return parse_accounts(data, JSON_SOURCE, text)
    return []


def _aad(account_id: int) -> str:
    return f"suno:{account_id}"


def _public(row: Any) -> dict[str, Any]:
    return {"id": row.id, "email": row.email, "memo": row.memo, "active": bool(row.is_active)}


class SunoAccounts:
    """The school's Suno accounts and who has which."""

    def __init__(self, history: HistoryStore, settings: Settings, box: SecretBox) -> None:
        self.history = history
        self.settings = settings
        self.box = box  # the gateway's one box for secrets at rest (the pooled keys' too)

    async def start(self) -> None:
        """Sync the declared accounts: new ones added, changed ones updated, accounts no
        longer declared kept (their assignments too) but marked inactive."""
        try:
            declared = declared_accounts(self.settings)
        except SunoAccountsError as error:
            raise SystemExit(f"Suno accounts not loaded: {error}") from error
        mask_secrets(*(a.password for a in declared))
        if not declared:
            await self.history.write(
                lambda c: c.execute(update(suno_accounts).values(is_active=False)))
            return
        box = self.box

        def sync(conn: Connection) -> None:
            rows = {r.id: r for r in conn.execute(select(suno_accounts))}
            now = time.time()
            for account in declared:
                row = rows.pop(account.id, None)
                if row is not None and row.email == account.email and row.memo == account.memo \
                        and row.is_active and box.open(row.password_enc, _aad(row.id)) == \
                        account.password:
                    continue
                values = {"email": account.email, "memo": account.memo, "is_active": True,
                          "password_enc": box.seal(account.password, _aad(account.id)),
                          "updated_at": now}
                if row is None:
                    conn.execute(insert(suno_accounts).values(id=account.id, **values))
                else:
                    conn.execute(update(suno_accounts).where(suno_accounts.c.id == account.id)
                                 .values(**values))
            if rows:
                conn.execute(update(suno_accounts).where(suno_accounts.c.id.in_(list(rows)))
                             .values(is_active=False, updated_at=now))

        await self.history.write(sync)

    # -- administrators ---------------------------------------------------------------------

    @staticmethod
    def require_admin(identity: Identity) -> None:
        if not identity.is_admin:
            raise Forbidden("Only administrators see and assign the school's Suno accounts.")

    async def listing(self, identity: Identity) -> list[dict[str, Any]]:
        """Every account (never a password) with the people it is assigned to."""
        self.require_admin(identity)

        def read(conn: Connection) -> list[dict[str, Any]]:
            who: dict[int, list[dict[str, Any]]] = {}
            for a in conn.execute(select(suno_assignments).order_by(suno_assignments.c.user)):
                who.setdefault(a.account_id, []).append(
                    {"user": a.user, "tenant": a.tenant, "assigned_by": a.assigned_by,
                     "assigned_at": a.assigned_at})
            return [{**_public(r), "assigned_to": who.get(r.id, [])}
                    for r in conn.execute(select(suno_accounts).order_by(suno_accounts.c.id))]

        return await self.history.read(read)

    async def assignments(self, identity: Identity, users: list[str] | None = None
                          ) -> dict[str, dict[str, Any]]:
        """``{user: account}`` for everyone (or ``users``); administrators only."""
        self.require_admin(identity)

        def read(conn: Connection) -> dict[str, dict[str, Any]]:
            query = select(suno_assignments, suno_accounts).join(
                suno_accounts, suno_accounts.c.id == suno_assignments.c.account_id)
            if users is not None:
                query = query.where(suno_assignments.c.user.in_(users))
            return {r.user: {**_public(r), "tenant": r.tenant, "assigned_by": r.assigned_by,
                             "assigned_at": r.assigned_at} for r in conn.execute(query)}

        return await self.history.read(read)

    async def assign(self, identity: Identity, user: str, account_id: int | None,
                     tenant: str | None) -> dict[str, Any]:
        """Give ``user`` the account ``account_id`` (None or 0: take theirs away); audited."""
        self.require_admin(identity)
        user = user.strip().lower()
        if not user or len(user) > 128:
            raise InvalidRequest("Name the person by their username.", param="user")

        def write(conn: Connection) -> dict[str, Any] | None:
            previous = conn.execute(select(suno_assignments.c.account_id)
                                    .where(suno_assignments.c.user == user)).scalar()
            if not account_id:
                conn.execute(delete(suno_assignments).where(suno_assignments.c.user == user))
                return {"previous": previous}
            row = conn.execute(select(suno_accounts)
                               .where(suno_accounts.c.id == account_id)).first()
            if row is None or not row.is_active:
                return None
            conn.execute(delete(suno_assignments).where(suno_assignments.c.user == user))
            conn.execute(insert(suno_assignments).values(
                user=user, tenant=tenant, account_id=account_id, assigned_by=identity.name,
                assigned_at=time.time()))
            return {"previous": previous, "account": _public(row)}

        done = await self.history.write(write)
        if done is None:
            raise NotFound(f"There is no active Suno account {account_id}. GET "
                           "/api/suno/accounts lists them.", param="account_id")
        action = "suno.assign" if account_id else "suno.unassign"
        await record_audit(self.history, identity, action, target=user, tenant=tenant,
                           details={"account_id": account_id or None,
                                    "previous_account_id": done["previous"]})
        return {"user": user, "tenant": tenant, "account": done.get("account")}

    # -- the person it is assigned to -----------------------------------------------------

    async def _own(self, identity: Identity) -> Any:
        def read(conn: Connection) -> Any:
            return conn.execute(
                select(suno_accounts, suno_assignments.c.assigned_at).join(
                    suno_assignments, suno_accounts.c.id == suno_assignments.c.account_id)
                .where(suno_assignments.c.user == identity.name)).first()

        return await self.history.read(read)

    async def mine(self, identity: Identity) -> dict[str, Any]:
        """The caller's own account (email and memo, not the password), or none."""
        row = await self._own(identity)
        if row is None or not row.is_active:
            return {"assigned": False, "account": None,
                    "message": "No Suno account is assigned to you. Ask your teacher or an "
                               "administrator if your class uses Suno."}
        return {"assigned": True, "account": {**_public(row), "assigned_at": row.assigned_at},
                "how_to_use": HOW_TO_USE}

    async def reveal(self, identity: Identity) -> dict[str, Any]:
        """The caller's own account's password (the one answer that carries one); audited."""
        row = await self._own(identity)
        if row is None or not row.is_active:
            raise NotFound("No Suno account is assigned to you.")
        password = self.box.open(row.password_enc, _aad(row.id))
        await record_audit(self.history, identity, "suno.reveal", target=identity.name,
                           details={"account_id": row.id})
        return {"id": row.id, "email": row.email, "password": password}
