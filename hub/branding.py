"""School branding on hub pages: which school a page is for, and what it looks like.

A page is for the school of its signed-in user (their ``tenant-<id>`` group),
and says where to start for their role (``classroom.role``); on the login page
it is for the school named by ``?tenant=<id>``; otherwise for the ``default``
tenant. Templates receive one dict, ``classroom``, built here; logos are served
by :class:`hub.pages.LogoHandler` at ``/hub/classroom/logo/<id>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.config.tenants import Tenant
from gateway.contract import ROLE_GROUP_PREFIX

from .roles import tenant_group

DEFAULT_TENANT = "default"
FALLBACK = {
    "tenant_id": "",
    "display_name": "Jupyter AI Classroom",
    "page_title": "Jupyter AI Classroom",
    "tab_title": "AI Classroom",
    "accent": "#2f6fdf",
    "has_logo": False,
}


def branding(tenants: Mapping[str, Tenant], tenant_id: str | None) -> dict[str, Any]:
    """The ``classroom`` template variable for one school (default school if unknown)."""
    tenant = tenants.get(tenant_id or "") or tenants.get(DEFAULT_TENANT)
    if tenant is None:
        return dict(FALLBACK)
    return {
        "tenant_id": tenant.tenant_id,
        "display_name": tenant.display_name,
        "page_title": tenant.branding.page_title,
        "tab_title": tenant.branding.browser_tab_title,
        "accent": tenant.branding.accent_color,
        "has_logo": bool(tenant.branding.logo_path),
    }


def tenant_of_groups(group_names: list[str], tenants: Mapping[str, Tenant]) -> str | None:
    """The school of someone in these hub groups (the first known ``tenant-<id>``)."""
    for tenant_id in sorted(tenants):
        if tenant_group(tenant_id) in group_names:
            return tenant_id
    return None


def user_role(user: Any) -> str | None:
    """A hub user's classroom role (their ``role-<role>`` group; hub admins are admins)."""
    if user is None:
        return None
    for group in getattr(user, "groups", []) or []:
        name = str(getattr(group, "name", group))
        if name.startswith(ROLE_GROUP_PREFIX):
            return name.removeprefix(ROLE_GROUP_PREFIX)
    return "admin" if getattr(user, "admin", False) else None


def user_tenant(user: Any, tenants: Mapping[str, Tenant]) -> str | None:
    """The school of a hub user (the ``User`` wrapper or an ORM user), or None."""
    if user is None:
        return None
    names = [getattr(group, "name", group) for group in getattr(user, "groups", []) or []]
    return tenant_of_groups([str(n) for n in names], tenants)


class UserBranding:
    """``c.JupyterHub.template_vars["classroom"]``: JupyterHub calls it with the page's user."""

    def __init__(self, tenants: Mapping[str, Tenant]) -> None:
        self.tenants = dict(tenants)

    def __call__(self, user: Any) -> dict[str, Any]:
        # "role" picks the home page's "where to start" (hub/templates/home.html).
        return {**branding(self.tenants, user_tenant(user, self.tenants)), "role": user_role(user)}
