"""The classroom authenticator: local accounts with argon2 passwords.

Sign-in checks the accounts store (:mod:`hub.accounts`); the account's school
and role become hub groups (:func:`hub.roles.groups_for`), and roles attached
to those groups give the permissions. The store is re-read at every auth
refresh, so disabling, deleting or moving an account takes effect within
``auth_refresh_age`` seconds, also for API tokens (``auth_refresh_strict``).
"""

from __future__ import annotations

import asyncio
from functools import cached_property
from pathlib import Path
from typing import Any

from jupyterhub.auth import Authenticator
from tornado import web
from traitlets import Integer, Unicode, default

from gateway.config.tenants import Tenant, TenantFileError, load_tenants

from .accounts import (
    ACCOUNTS_FILE,
    Account,
    AccountError,
    AccountLocked,
    AccountStore,
    Lockout,
    is_valid_username,
)
from .roles import groups_for

DISABLED_MESSAGE = "This account is disabled. Ask your teacher or administrator to enable it."


class ClassroomAuthenticator(Authenticator):
    """Sign in with a classroom account (``classroom accounts add ...``).

    Enable with::

        c.JupyterHub.authenticator_class = "hub.auth.ClassroomAuthenticator"
        c.ClassroomAuthenticator.data_dir = "/srv/classroom"

    The accounts store is the allow list: exactly the existing, enabled
    accounts may sign in, so ``allow_all`` and ``allowed_users`` are not used.
    """

    data_dir = Unicode(
        "",
        config=True,
        help="""
        Directory holding the accounts database (`accounts.sqlite`).

        The same directory as `CLASSROOM_DATA_DIR`, which the `classroom accounts`
        command writes to. Must be set; an absolute path is recommended.
        """,
    )

    tenants_dir = Unicode(
        "",
        config=True,
        help="""
        Directory of tenant files (`<id>.json`), as `CLASSROOM_TENANTS_DIR`.

        When set, accounts of a school that has no tenant file are refused at
        sign-in with a message saying so. Empty: the school is not checked.
        """,
    )

    lockout_threshold = Integer(
        5,
        config=True,
        help="""
        Wrong passwords in a row after which an account is locked.

        The lock lasts `lockout_minutes`; each lock is logged with the account
        name. A successful sign-in, a new password or `classroom accounts enable`
        starts the count again. 0 turns the lockout off.
        """,
    )

    lockout_minutes = Integer(
        10,
        config=True,
        help="""
        How long an account stays locked after `lockout_threshold` wrong passwords.
        """,
    )

    @default("manage_groups")
    def _default_manage_groups(self) -> bool:
        # Groups come from the accounts store; the hub must not edit them.
        return True

    @default("refresh_pre_spawn")
    def _default_refresh_pre_spawn(self) -> bool:
        return True

    @default("auth_refresh_age")
    def _default_auth_refresh_age(self) -> int:
        return 60

    @default("auth_refresh_strict")
    def _default_auth_refresh_strict(self) -> bool:
        # Our refresh only fails when the account is gone or disabled, which
        # must also stop that person's API tokens (the gateway resolves every
        # kernel call through /hub/api/user with them).
        return True

    @default("any_allow_config")
    def _default_any_allow_config(self) -> bool:
        # The accounts store is the allow config; silence JupyterHub's warning.
        return True

    # -- the store ------------------------------------------------------------

    @cached_property
    def store(self) -> AccountStore:
        if not self.data_dir:
            raise ValueError("ClassroomAuthenticator.data_dir must be set")
        lockout = None
        if self.lockout_threshold > 0 and self.lockout_minutes > 0:
            lockout = Lockout(self.lockout_threshold, self.lockout_minutes * 60)
        return AccountStore(Path(self.data_dir) / ACCOUNTS_FILE, lockout=lockout)

    @cached_property
    def tenants(self) -> dict[str, Tenant]:
        """The schools of ``tenants_dir`` (empty when it is not set)."""
        if not self.tenants_dir:
            return {}
        try:
            return load_tenants(Path(self.tenants_dir))
        except TenantFileError as exc:
            raise ValueError(str(exc)) from exc

    @cached_property
    def tenant_ids(self) -> frozenset[str] | None:
        """Known school ids, or None when ``tenants_dir`` is not set."""
        return frozenset(self.tenants) if self.tenants_dir else None

    def auth_model(self, account: Account) -> dict[str, Any]:
        """What JupyterHub stores for a signed-in account."""
        return {
            "name": account.username,
            "groups": groups_for(account.tenant, account.role),
            "admin": account.role == "admin",
        }

    def _school_is_known(self, account: Account) -> bool:
        known = self.tenant_ids
        return known is None or account.tenant in known

    # -- Authenticator hooks ----------------------------------------------------

    def get_handlers(self, app: Any) -> list[tuple[str, Any]]:
        """The branded login page and the classroom's pages (hub.pages, hub.classstart)."""
        from . import classstart, pages

        return pages.handlers() + classstart.handlers()

    def validate_username(self, username: str) -> bool:
        return super().validate_username(username) and is_valid_username(username)

    async def authenticate(self, handler: Any, data: dict[str, Any]) -> dict[str, Any] | None:
        username = str(data.get("username") or "").strip().lower()
        password = str(data.get("password") or "")
        try:
            account = await asyncio.to_thread(
                self.store.verify, username, password, include_disabled=True
            )
        except AccountLocked as locked:
            if locked.just_locked:
                self.log.warning(
                    "Account %r locked until %s after %d failed logins",
                    locked.username, locked.until.isoformat(), self.lockout_threshold,
                )
                self.audit("account.locked", locked.username, actor="classroom hub",
                           details={"until": locked.until.isoformat(),
                                    "failed_logins": self.lockout_threshold})
            else:
                self.log.warning("Login refused for locked account %r", locked.username)
            raise web.HTTPError(403, str(locked)) from None
        if account is None:
            # One message for unknown user and wrong password; never the password.
            self.log.warning("Failed login for %r", username[:64])
            return None
        if account.disabled:
            self.log.warning("Login refused for disabled account %r", username)
            raise web.HTTPError(403, DISABLED_MESSAGE)
        if not self._school_is_known(account):
            self.log.warning("Login refused for %r: unknown school %r", username, account.tenant)
            raise web.HTTPError(
                403, f"Your school ({account.tenant}) is not set up on this classroom."
            )
        return self.auth_model(account)

    async def refresh_user(self, user: Any, handler: Any = None) -> bool | dict[str, Any]:
        account = await asyncio.to_thread(self.store.get, user.name)
        if account is None or account.disabled or not self._school_is_known(account):
            return False
        return self.auth_model(account)

    def delete_user(self, user: Any) -> None:
        """A user deleted in the admin panel (or the REST API) can no longer sign in.

        The account is disabled, not removed: its history keeps a name, and
        `classroom accounts enable` brings the person back.
        """
        super().delete_user(user)
        try:
            self.store.disable(user.name)
        except AccountError:
            return  # no account (e.g. a hub-only user): nothing to disable
        self.log.warning("Account %r disabled: its hub user was deleted", user.name)
        self.audit("account.disable", user.name, actor="hub admin panel",
                   details={"reason": "hub user deleted"})

    def audit(self, action: str, target: str, *, actor: str, actor_role: str = "admin",
              details: dict[str, Any] | None = None) -> None:
        """Append an account action to the hub's audit spool (the gateway imports it)."""
        from .audit import record

        account = self.store.get(target)
        try:
            record(self.data_dir, actor=actor, actor_role=actor_role, action=action,
                   target=target, tenant=account.tenant if account else None, details=details)
        except OSError as exc:
            self.log.error("Could not write the audit entry %s for %r: %s", action, target, exc)

    def check_allowed(self, username: str, authentication: dict | None = None) -> bool:
        account = self.store.get(username)
        return account is not None and account.enabled and self._school_is_known(account)
