"""The classroom's own hub pages, registered by :meth:`ClassroomAuthenticator.get_handlers`.

=================================  ==============================================
``/hub/login[?tenant=<id>]``       sign-in, branded for that school; a school
                                   picker when no school is named
``/hub/classroom/logo/<id>``       a school's logo (image types only, no scripts)
``/hub/classroom/password``        change your own password; admins also reset
                                   someone else's
``/hub/classroom/dashboards``      the dashboards published to your school
``/hub/classroom/accounts``        accounts: admins everyone, teachers their
                                   school's students (:mod:`hub.accounts_page`)
=================================  ==============================================

Each handler is small and asks the authenticator for the accounts store, the
tenants and the data directory, so configuration stays in one place.
"""

from __future__ import annotations

import asyncio
import mimetypes
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jupyterhub.handlers import BaseHandler
from jupyterhub.handlers.login import LoginHandler
from tornado import web
from tornado.httputil import url_concat

from gateway.config.tenants import TENANT_ID
from gateway.published import PublishError, list_dashboards

from .accounts import AccountError, AccountLocked
from .accounts_page import AccountsHandler
from .branding import branding, user_tenant

LOGO_TYPES = {".svg", ".png", ".jpg", ".jpeg", ".gif", ".webp"}
VOILA_PREFIX = "user-redirect/voila/render/published/"


class ClassroomLoginHandler(LoginHandler):
    """JupyterHub's login page with the school's branding and a school picker."""

    def _tenant_arg(self) -> str | None:
        asked = self.get_argument("tenant", "", strip=True)
        return asked if asked in self.authenticator.tenants else None

    def render_template(self, name: str, sync: bool = False, **ns: Any) -> Any:
        if name == "login.html":
            tenant_id = self._tenant_arg()
            tenants = self.authenticator.tenants
            ns["classroom"] = branding(tenants, tenant_id)
            ns["classroom_tenant_chosen"] = tenant_id is not None
            carry = {"next": self.get_argument("next", "")} if self.get_argument("next", "") else {}
            ns["classroom_schools"] = [
                {"id": t.tenant_id, "name": t.display_name, "url": url_concat(
                    self.settings["login_url"], {"tenant": t.tenant_id, **carry}
                )}
                for t in sorted(tenants.values(), key=lambda t: t.display_name)
                if t.tenant_id != "default"
            ]
            if tenant_id and "authenticator_login_url" in ns:
                # A failed sign-in comes back to the same school's page.
                ns["authenticator_login_url"] = url_concat(
                    ns["authenticator_login_url"], {"tenant": tenant_id}
                )
        return super().render_template(name, sync=sync, **ns)


class LogoHandler(BaseHandler):
    """A school's logo file, served as an image and nothing else."""

    def check_xsrf_cookie(self) -> None:  # GET only; nothing to protect
        return None

    async def get(self, tenant_id: str) -> None:
        tenants = self.authenticator.tenants
        tenant = tenants.get(tenant_id) if TENANT_ID.fullmatch(tenant_id) else None
        if tenant is None or not tenant.branding.logo_path:
            raise web.HTTPError(404)
        root = Path(self.authenticator.tenants_dir).resolve()
        path = (root / tenant.branding.logo_path).resolve()
        if not path.is_relative_to(root) or path.suffix.lower() not in LOGO_TYPES:
            raise web.HTTPError(404)
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except OSError:
            raise web.HTTPError(404) from None
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        self.set_header("Content-Type", content_type)
        self.set_header("X-Content-Type-Options", "nosniff")
        # An SVG opened on its own must not run scripts in the hub's origin.
        self.set_header(
            "Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'"
        )
        self.set_header("Cache-Control", "public, max-age=300")
        self.finish(data)


class PasswordHandler(BaseHandler):
    def _audit(self, action: str, target: str) -> None:
        user = self.current_user
        role = "admin" if user.admin else "user"
        self.authenticator.audit(action, target, actor=user.name, actor_role=role)

    """Change your own password; admins can also set a new one for someone else."""

    async def _page(self, **ns: Any) -> None:
        user = self.current_user
        html = await self.render_template(
            "classroom_password.html",
            is_admin=bool(user.admin),
            message=ns.pop("message", None),
            error=ns.pop("error", None),
            reset_error=ns.pop("reset_error", None),
            reset_message=ns.pop("reset_message", None),
            generated=ns.pop("generated", None),
            **ns,
        )
        self.finish(html)

    @web.authenticated
    async def get(self) -> None:
        await self._page()

    @web.authenticated
    async def post(self) -> None:
        if self.get_body_argument("action", "change") == "reset":
            await self._reset()
        else:
            await self._change()

    async def _change(self) -> None:
        user = self.current_user
        store = self.authenticator.store
        current = self.get_body_argument("current", "")
        new = self.get_body_argument("new", "")
        if new != self.get_body_argument("confirm", ""):
            self.set_status(400)
            await self._page(error="The two new passwords are not the same.")
            return
        try:
            account = await asyncio.to_thread(store.verify, user.name, current)
        except AccountLocked as locked:
            self.set_status(403)
            await self._page(error=str(locked))
            return
        if account is None:
            self.set_status(403)
            self.log.warning("Password change for %r refused: wrong current password", user.name)
            await self._page(error="Your current password is not right.")
            return
        try:
            await asyncio.to_thread(store.set_password, user.name, new)
        except AccountError as exc:
            self.set_status(400)
            await self._page(error=str(exc))
            return
        self.log.info("User %r changed their password", user.name)
        self._audit("account.password_change", user.name)
        await self._page(message="Your password has been changed.")

    async def _reset(self) -> None:
        from .passwords import generate_password

        user = self.current_user
        if not user.admin:
            raise web.HTTPError(403, "Only administrators can reset someone else's password.")
        target = self.get_body_argument("username", "", strip=True).lower()
        new = self.get_body_argument("new", "") or None
        password = new or generate_password()
        try:
            await asyncio.to_thread(self.authenticator.store.set_password, target, password)
        except AccountError as exc:
            self.set_status(400)
            await self._page(reset_error=str(exc))
            return
        self.log.warning("Admin %r reset the password of %r", user.name, target)
        self._audit("account.password_reset", target)
        await self._page(
            reset_message=f"The password of {target} has been reset.",
            generated=None if new else password,
        )


class DashboardsHandler(BaseHandler):
    """The dashboards published to the signed-in user's school, opening in Voila."""

    @web.authenticated
    async def get(self) -> None:
        user = self.current_user
        tenants = self.authenticator.tenants
        tenant_id = user_tenant(user, tenants)
        dashboards = []
        if tenant_id is not None:
            try:
                found = await asyncio.to_thread(
                    list_dashboards, Path(self.authenticator.data_dir), tenant_id
                )
            except PublishError:
                found = []
            dashboards = [
                {
                    "name": d.name,
                    "title": d.title or d.name.removesuffix(".ipynb"),
                    "url": f"{self.hub.base_url}{VOILA_PREFIX}{quote(d.name)}",
                }
                for d in found
            ]
        html = await self.render_template(
            "classroom_dashboards.html",
            dashboards=dashboards,
            school=tenants[tenant_id].display_name if tenant_id else None,
        )
        self.finish(html)


def handlers() -> list[tuple[str, type[BaseHandler]]]:
    """The ``(url, handler)`` pairs, relative to the hub prefix."""
    return [
        ("/login", ClassroomLoginHandler),
        (r"/classroom/logo/([^/]+)", LogoHandler),
        ("/classroom/password", PasswordHandler),
        ("/classroom/dashboards", DashboardsHandler),
        ("/classroom/accounts", AccountsHandler),
    ]
