"""Groups, custom scopes and roles: how a classroom role becomes hub permissions.

The authenticator puts every user in groups named here (one implementation of
the naming, used by the authenticator and by the role definitions):

- ``tenant-<id>``    every member of a school;
- ``role-<role>``    every student / teacher / admin / viewer, across schools;
- ``teachers-<id>``  the teachers of one school.

Roles are attached to those groups, so changing a person's role or school in
the accounts store changes their permissions at their next auth refresh. The
gateway reads the resulting scopes (``custom:gateway:*``) from
``/hub/api/user``; a teacher's ``custom:gateway:teach`` is filtered to their
school's group.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gateway.contract import (  # noqa: F401 - re-exported: the hub's names for the contract
    GROUP_PREFIXES,
    SCOPE_ADMIN,
    SCOPE_START,
    SCOPE_TEACH,
    SCOPE_USE,
    groups_for,
    role_group,
    teachers_group,
    tenant_group,
)

CUSTOM_SCOPES: dict[str, dict[str, str]] = {
    SCOPE_USE: {
        "description": "Call AI models through the classroom gateway and read your own history.",
    },
    SCOPE_TEACH: {
        "description": "See the usage and history of a class and publish dashboards to it.",
    },
    SCOPE_ADMIN: {
        "description": "Manage provider keys, pricing and load tests, and review all usage.",
    },
    SCOPE_START: {
        "description": "Start the labs of a class ahead of the lesson.",
    },
}

# Scopes requested for the API token a lab receives (JUPYTERHUB_API_TOKEN,
# also handed to kernels as CLASSROOM_API_TOKEN). The hub grants the part of
# each request the user actually holds, so a teacher's token carries
# ``custom:gateway:teach!group=tenant-<id>`` and a student's none of it.
SERVER_TOKEN_SCOPES: list[str] = [
    "access:servers!server",
    "users:activity!user",
    "read:users:name!user",
    "read:users:groups!user",
    SCOPE_USE,
    SCOPE_TEACH,
    SCOPE_ADMIN,
    SCOPE_START,
]


# Every group the classroom manages starts with one of these; others are left alone.
CLASSROOM_GROUP_PREFIXES = GROUP_PREFIXES


def custom_scopes() -> dict[str, dict[str, str]]:
    """Value for ``c.JupyterHub.custom_scopes`` (a fresh copy)."""
    return {name: dict(definition) for name, definition in CUSTOM_SCOPES.items()}


def teacher_role(tenant_id: str) -> dict[str, Any]:
    only_school = f"!group={tenant_group(tenant_id)}"
    return {
        "name": f"classroom-teacher-{tenant_id}",
        "description": f"Teachers of school {tenant_id}: watch and manage their students.",
        "scopes": [
            SCOPE_USE,
            SCOPE_TEACH + only_school,
            SCOPE_START + only_school,
            # The admin panel, showing only their school: list, start, stop and
            # open their students' servers.
            "admin-ui",
            "read:users" + only_school,
            "list:users" + only_school,
            "servers" + only_school,
            "access:servers" + only_school,
            "read:groups" + only_school,
            "list:groups" + only_school,
        ],
        "groups": [teachers_group(tenant_id)],
    }


def school_role(tenant_id: str) -> dict[str, Any]:
    """Members of a school; the role also makes the hub create the school's group at start."""
    return {
        "name": f"classroom-school-{tenant_id}",
        "description": f"Members of school {tenant_id}.",
        "scopes": ["read:groups:name" + f"!group={tenant_group(tenant_id)}"],
        "groups": [tenant_group(tenant_id)],
    }


def load_roles(tenant_ids: Iterable[str], gateway_service: str | None = "gateway") -> list[dict]:
    """Value for ``c.JupyterHub.load_roles``.

    The built-in ``user`` role (scope ``self``) is left alone, so every user
    keeps it. Groups named here are created by the hub when missing.
    """
    roles: list[dict[str, Any]] = [
        {
            "name": "classroom-student",
            "description": "Students: use the gateway with their own account.",
            "scopes": ["self", SCOPE_USE],
            "groups": [role_group("student")],
        },
        {
            "name": "classroom-viewer",
            "description": "Viewers: may look around and use the gateway within their quota.",
            "scopes": [SCOPE_USE],
            "groups": [role_group("viewer")],
        },
        {
            "name": "classroom-admin",
            "description": "Classroom administrators: everything in the gateway and the hub.",
            "scopes": [
                SCOPE_ADMIN,
                SCOPE_TEACH,
                SCOPE_USE,
                SCOPE_START,
                "admin-ui",
                "admin:users",
                "admin:servers",
                "admin:groups",
                "access:servers",
                "list:services",
                "read:services",
                "read:hub",
                "read:roles",
                "read:metrics",
            ],
            "groups": [role_group("admin")],
        },
    ]
    for tenant_id in sorted(tenant_ids):
        roles.append(school_role(tenant_id))
        roles.append(teacher_role(tenant_id))
    if gateway_service:
        roles.append(
            {
                "name": "classroom-gateway",
                "description": "The gateway service: resolve callers' tokens, users and groups.",
                "scopes": ["read:users", "list:users", "read:groups", "list:groups"],
                "services": [gateway_service],
            }
        )
    return roles
