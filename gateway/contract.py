"""What the hub, the gateway and the kernel extension agree on, in one place.

The three parts run in different processes and images (the hub image, the lab
image, the gateway image) and talk over HTTP and the file system, so each names
the same things: the custom scopes the hub grants and the gateway checks, the
hub groups a person is put in and the gateway reads a school and a role from,
the published-folder layout the gateway writes and the hub and labs read, the
headers and environment variables a kernel's client sends and reads.

This module imports only the standard library (``tests/test_contract.py``
fails if it grows a heavier import), so any of the three images loads it
without FastAPI, JupyterHub or pydantic.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# --- people ------------------------------------------------------------------------------

#: The roles a person has in a school, from least to most rights (``ROLE_RANK``).
ROLES = ("student", "teacher", "admin", "viewer")
ROLE_RANK = {"viewer": 0, "student": 1, "teacher": 2, "admin": 3}
#: A school (tenant) id: also a hub group name part, a folder name and a URL part.
TENANT_ID = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

# --- scopes (granted by the hub's roles, checked by the gateway) ---------------------------

SCOPE_USE = "custom:gateway:use"
SCOPE_TEACH = "custom:gateway:teach"
SCOPE_ADMIN = "custom:gateway:admin"
#: Start a school's student labs ahead of the lesson (``hub.classstart``).
SCOPE_START = "custom:classroom:start"
#: The gateway scopes each role holds, unfiltered (the hub filters a teacher's to a school).
ROLE_SCOPES: dict[str, tuple[str, ...]] = {
    "student": (SCOPE_USE,),
    "viewer": (SCOPE_USE,),
    "teacher": (SCOPE_USE, SCOPE_TEACH),
    "admin": (SCOPE_USE, SCOPE_TEACH, SCOPE_ADMIN),
}

# --- hub groups ----------------------------------------------------------------------------

TENANT_GROUP_PREFIX = "tenant-"  # every member of a school
ROLE_GROUP_PREFIX = "role-"  # every student / teacher / admin / viewer, across schools
TEACHERS_GROUP_PREFIX = "teachers-"  # the teachers of one school
#: Every group the classroom manages starts with one of these; others are left alone.
GROUP_PREFIXES = (TENANT_GROUP_PREFIX, ROLE_GROUP_PREFIX, TEACHERS_GROUP_PREFIX)


def tenant_group(tenant_id: str) -> str:
    return f"{TENANT_GROUP_PREFIX}{tenant_id}"


def role_group(role: str) -> str:
    return f"{ROLE_GROUP_PREFIX}{role}"


def teachers_group(tenant_id: str) -> str:
    return f"{TEACHERS_GROUP_PREFIX}{tenant_id}"


def groups_for(tenant_id: str, role: str) -> list[str]:
    """The hub groups of a person with this school and role."""
    groups = [tenant_group(tenant_id), role_group(role)]
    if role == "teacher":
        groups.append(teachers_group(tenant_id))
    return groups


def tenants_in(groups: Iterable[str]) -> list[str]:
    """The schools named by ``tenant-<id>`` groups, sorted."""
    return sorted(g.removeprefix(TENANT_GROUP_PREFIX) for g in groups
                  if g.startswith(TENANT_GROUP_PREFIX))


def roles_in(groups: Iterable[str]) -> list[str]:
    """The known roles named by ``role-<role>`` groups, in the order given."""
    roles = (g.removeprefix(ROLE_GROUP_PREFIX) for g in groups if g.startswith(ROLE_GROUP_PREFIX))
    return [role for role in roles if role in ROLE_RANK]


def top_role(groups: Iterable[str]) -> str:
    """The highest role the groups name (``viewer`` when none)."""
    roles = roles_in(groups)
    return max(roles, key=ROLE_RANK.__getitem__) if roles else "viewer"


# --- the published folder ------------------------------------------------------------------

#: Inside ``CLASSROOM_DATA_DIR``: ``published/<tenant>/`` holds a school's dashboards,
#: ``published/<tenant>/lessons/`` the lessons its teachers published. Every lab links
#: the school's folder at ``~/published`` and copies new lessons into ``~/lessons``.
PUBLISHED_DIR = "published"
LESSONS_DIR = "lessons"
#: ``published/<tenant>/classes/<label>/``: lessons published to one class, the hub group
#: ``class-<tenant>-<label>`` (only its members get them).
CLASSES_DIR = "classes"
CLASS_GROUP_PREFIX = "class-"

# --- what a kernel sends and reads -----------------------------------------------------------

#: Environment variables the hub sets in every lab, read by the ``classroom`` package.
GATEWAY_URL_VAR = "CLASSROOM_GATEWAY_URL"
API_TOKEN_VAR = "CLASSROOM_API_TOKEN"
#: Where a call came from (``widget``, ``sdk``, ...), recorded in the history.
SOURCE_HEADER = "X-Classroom-Source"
#: Headers besides ``Authorization: Bearer|token`` a token is accepted from (the
#: Anthropic SDK's and google-genai's own), lower case as the gateway reads them.
TOKEN_HEADERS = ("x-api-key", "x-goog-api-key")
#: The history ids of a generated media file, on the media answer.
RUN_ID_HEADER = "X-Classroom-Run-Id"
ARTIFACT_ID_HEADER = "X-Classroom-Artifact-Id"
#: Where in the lab a call was made (gateway/edge/origin.py bounds them; never identity): the
#: notebook relative to the home, the executing cell's id, and its place ``7/12`` among
#: the notebook's code cells.
NOTEBOOK_HEADER = "X-Classroom-Notebook"
CELL_HEADER = "X-Classroom-Cell"
POSITION_HEADER = "X-Classroom-Cell-Position"
