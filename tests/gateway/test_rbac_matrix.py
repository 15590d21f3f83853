"""The gateway's RBAC matrix: every ``/api/`` endpoint of the OpenAPI document ×
student, viewer, teacher of either school, and admin × targets in their own
and in the other school. Not one leak.

Endpoints are read from the app's OpenAPI document, so an endpoint added later
is covered without touching this file. For each one, path parameters are
filled with something that belongs to someone else (a classmate, a student
of the other school, the other school's pause, dashboard or conversation),
query filters ``tenant=``/``user=`` name the other school or person, and a
request body is made from the body's schema with the same foreign values.

A response leaks when it is a success and carries anything of someone the
caller may not see: a ``user``/``actor``/... field naming them, a ``tenant``
field naming another school, or text written by them (the demo history marks
all text with ``note-<user>-``). Echoes of the caller's own request
(``filters``, ``scope``) are not data and are skipped. Nothing belonging to
the other school (or, for students, to anyone else) may change either, and
``/api/admin``, key and pool endpoints refuse everyone but admins.

(The hub side of the matrix, a teacher's hub API actions, is checked in
``tests/hub/test_roles.py`` and on a real hub in ``tests/e2e/test_teachers_admins.py``.)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import column, inspect, select, table

from gateway.history import demo
from gateway.history.models import conversations, runs
from tests.conftest import TOKENS

PEOPLE = {user: tenant for tenant, members in demo.PEOPLE.items() for user, _ in members}
PEOPLE.update({who["name"]: who["tenant"] for _, who in TOKENS.values()})
NAME_FIELDS = {"user", "users", "owner", "key", "name", "target"}
# Who did something: a teacher may see that an administrator acted on their school.
ACTOR_FIELDS = {"actor", "paused_by", "updated_by", "created_by"}
ADMINS = {user for members in demo.PEOPLE.values() for user, role in members if role == "admin"}
TENANT_FIELDS = {"tenant", "tenants"}
ECHO_FIELDS = {"filters", "scope"}
ADMIN_ONLY_PREFIXES = ("/api/admin/", "/api/keys", "/api/pool", "/api/overrides")
# Tables whose rows belong to one user (``user`` column): students must not touch others'.
OWNED = ("runs", "conversations", "quota_overrides", "artifacts", "jobs", "pauses")
NOTEBOOK = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


@dataclass(frozen=True)
class Actor:
    key: str  # in the tokens fixture
    name: str
    tenant: str
    role: str

    @property
    def teaches(self) -> bool:
        return self.role in ("teacher", "admin")

    def may_see_user(self, user: str) -> bool:
        if user == self.name:
            return True
        return self.teaches and PEOPLE.get(user) == self.tenant

    def may_see_tenant(self, tenant: str) -> bool:
        return tenant == self.tenant


ACTORS = [
    Actor(key, who["name"], who["tenant"], who["role"])
    for key, (_, who) in TOKENS.items()
    if who["role"] != "admin"
]


@dataclass
class World:
    client: TestClient
    tokens: dict[str, str]
    doc: dict[str, Any]
    ids: dict[str, dict[str, Any]]  # per school: run, conversation, pause, dashboard, job...


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, tokens_file: Any, tokens: dict[str, str]
          ) -> Iterator[World]:
    from gateway.config.settings import Settings
    from gateway.edge.app import create_asgi
    from tests.support.procs import REPO

    settings = Settings(
        data_dir=tmp_path_factory.mktemp("rbac") / "data", auth_tokens_file=tokens_file,
        tenants_dir=REPO / "tenants", mock_ttft_ms=0, mock_tokens_per_second=0, hub_api_url=None,
    )
    with TestClient(create_asgi(settings)) as client:
        services = client.app.app.state.services  # type: ignore[attr-defined]
        with services.history.engine.begin() as connection:
            demo.seed(connection)
        admin = {"Authorization": f"Bearer {tokens['admin']}"}
        ids: dict[str, dict[str, Any]] = {}
        for school, student in (("school_a", "stu_a"), ("school_b", "stu_b")):
            found: dict[str, Any] = {}
            with services.history.engine.connect() as connection:
                found["run"] = connection.execute(
                    select(runs.c.id).where(runs.c.user == student).limit(1)).scalar_one()
                found["conversation"] = connection.execute(
                    select(conversations.c.id).where(conversations.c.user == student)
                ).scalar_one()
            pause = client.post("/api/pauses", headers=admin,
                                json={"tenant": school, "user": student, "reason": "probe"})
            found["pause"] = pause.json().get("id", 1) if pause.status_code < 300 else 1
            client.put(f"/api/overrides/{student}", headers=admin,
                       json={"tenant": school, "requests_per_day": 3})
            published = client.post("/api/dashboards/published", headers=admin,
                                    json={"name": f"pulse_{school}", "notebook": NOTEBOOK,
                                          "tenant": school})
            assert published.status_code == 201, published.text
            found["dashboard"] = published.json()["name"]
            found["student"] = student
            ids[school] = found
        yield World(client, dict(tokens), client.app.app.openapi(), ids)  # type: ignore[attr-defined]


# -- making requests ----------------------------------------------------------------------


def api_operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method.upper(), op)
        for path, ops in sorted(doc["paths"].items()) if path.startswith("/api/")
        for method, op in sorted(ops.items()) if method in {"get", "post", "put", "patch", "delete"}
    ]


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"]
            return _resolve(doc, options[0]) if options else {"type": "null"}
    return schema


def example(doc: dict[str, Any], schema: dict[str, Any], name: str, target: dict[str, Any],
            depth: int = 0) -> Any:
    """A value for a field called ``name`` that points at ``target`` where it can."""
    schema = _resolve(doc, schema)
    if name in ("tenant",):
        return target["tenant"]
    if name in ("user", "username", "actor"):
        return target["user"]
    if name == "notebook":
        return NOTEBOOK
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        if depth > 3:
            return {}
        props = schema.get("properties", {})
        return {key: example(doc, sub, key, target, depth + 1) for key, sub in props.items()}
    if kind == "array":
        return [example(doc, schema.get("items", {}), name, target, depth + 1)]
    if kind == "integer":
        return max(1, int(schema.get("minimum", 1)))
    if kind == "number":
        return float(schema.get("minimum", 1))
    if kind == "boolean":
        return True
    if name == "confirm":
        return "runs"
    return "probe"


def path_value(path: str, param: str, target: dict[str, Any]) -> str:
    school = target["ids"]
    if param in ("user", "username"):
        return target["user"]
    if param in ("run_id", "id"):
        return str(school["run"])
    if param == "conversation_id":
        return school["conversation"]
    if param == "pause_id":
        return str(school["pause"])
    if param == "name":
        return school["dashboard"] if "dashboards" in path else "demo-1"
    if param == "provider":
        return "openai"
    if param == "table":
        return "runs"
    return "probe"


def requests_for(world: World, actor: Actor) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Every (method, url, kwargs) probe of ``actor`` against foreign targets."""
    other = "school_b" if actor.tenant == "school_a" else "school_a"
    targets = [{"user": world.ids[other]["student"], "tenant": other, "ids": world.ids[other]}]
    if not actor.teaches:
        classmate = "stu_a2" if actor.tenant == "school_a" else "stu_b2"
        targets.append({"user": classmate, "tenant": actor.tenant, "ids": world.ids[actor.tenant]})
    for path, method, op in api_operations(world.doc):
        params = op.get("parameters", [])
        query_names = {p["name"] for p in params if p["in"] == "query"}
        body_schema = (op.get("requestBody", {}).get("content", {})
                       .get("application/json", {}).get("schema"))
        for target in targets:
            url = path
            for p in params:
                if p["in"] == "path":
                    url = url.replace("{" + p["name"] + "}", path_value(path, p["name"], target))
            variants: list[dict[str, str]] = [{}]
            if "tenant" in query_names:
                variants.append({"tenant": target["tenant"]})
            if "user" in query_names:
                variants.append({"user": target["user"]})
            for query in variants:
                kwargs: dict[str, Any] = {"params": query}
                if body_schema is not None:
                    kwargs["json"] = example(world.doc, body_schema, "", target)
                yield method, url, kwargs


# -- judging responses ----------------------------------------------------------------------


def leaks(actor: Actor, value: Any, where: str = "$") -> list[str]:
    found: list[str] = []
    if isinstance(value, dict):
        for key, inner in value.items():
            if key in ECHO_FIELDS:
                continue
            here = f"{where}.{key}"
            names = inner if isinstance(inner, list) else [inner]
            if key in NAME_FIELDS | ACTOR_FIELDS:
                for name in names:
                    if not isinstance(name, str) or name not in PEOPLE or actor.may_see_user(name):
                        continue
                    if key in ACTOR_FIELDS and actor.teaches and name in ADMINS:
                        continue
                    found.append(f"{here}={name}")
            if key in TENANT_FIELDS:
                for tenant in names:
                    if isinstance(tenant, str) and tenant in demo.PEOPLE \
                            and not actor.may_see_tenant(tenant):
                        found.append(f"{here}={tenant}")
            found += leaks(actor, inner, here)
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += leaks(actor, inner, f"{where}[{index}]")
    elif isinstance(value, str):
        for user in PEOPLE:
            if demo.marker(user) in value and not actor.may_see_user(user):
                found.append(f"{where} has text of {user}")
    return found


def protected_state(world: World, actor: Actor) -> str:
    """A digest of everything ``actor`` must not be able to change."""
    services = world.client.app.app.state.services  # type: ignore[attr-defined]
    others = {t for t in demo.PEOPLE if t != actor.tenant}
    classmates = {u for u, t in PEOPLE.items() if u != actor.name}
    digest = hashlib.sha256()
    with services.history.engine.connect() as connection:
        for name in sorted(inspect(connection).get_table_names()):
            columns = {c["name"] for c in inspect(connection).get_columns(name)}
            everything = table(name, *[column(c) for c in sorted(columns)])
            rows = connection.execute(select(everything)).mappings().all()
            for row in rows:
                mine = True
                if "tenant" in columns and row["tenant"] in others:
                    mine = False
                if not actor.teaches and name in OWNED and row.get("user") in classmates:
                    mine = False
                if name == "provider_keys":
                    mine = False
                if not mine:
                    digest.update(json.dumps(dict(row), sort_keys=True, default=str).encode())
    for school in sorted(others):
        folder = services.settings.data_dir / "published" / school
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


@pytest.mark.parametrize("actor", ACTORS, ids=lambda a: a.key)
def test_no_endpoint_leaks_or_changes_what_the_caller_may_not_see(
    world: World, actor: Actor
) -> None:
    token = world.tokens[actor.key]
    headers = {"Authorization": f"Bearer {token}"}
    before = protected_state(world, actor)
    problems: list[str] = []
    probes = 0
    for method, url, kwargs in requests_for(world, actor):
        response = world.client.request(method, url, headers=headers, **kwargs)
        probes += 1
        label = f"{method} {url} {kwargs.get('params') or ''}"
        if response.status_code >= 500:
            problems.append(f"{label}: {response.status_code} {response.text[:200]}")
            continue
        if response.status_code >= 300:
            continue
        if url.startswith(ADMIN_ONLY_PREFIXES) and actor.role != "admin":
            problems.append(f"{label}: {response.status_code} for a {actor.role}")
        try:
            body = response.json()
        except ValueError:
            body = response.text
        problems += [f"{label}: {leak}" for leak in leaks(actor, body)]
    after = protected_state(world, actor)
    assert probes > 50
    assert problems == [], "\n".join(problems)
    assert before == after, "a probe changed data of another school or person"


def test_every_api_endpoint_is_probed(world: World) -> None:
    operations = api_operations(world.doc)
    paths = {path for path, _, _ in operations}
    # the ones this issue added, at least
    assert {"/api/usage", "/api/usage/me", "/api/usage/estimate", "/api/activity",
            "/api/students/{user}", "/api/audit", "/api/admin/retention", "/api/admin/tables",
            "/api/admin/purge/{table}", "/api/dashboards/published"} <= paths
    actor = ACTORS[0]
    probed = {(m, u.split("?")[0]) for m, u, _ in requests_for(world, actor)}
    assert len({m for m, _ in probed}) >= 3
    assert len(probed) >= len(operations)


@pytest.mark.parametrize("actor", [a for a in ACTORS if a.role in ("student", "viewer")],
                         ids=lambda a: a.key)
def test_students_own_data_is_theirs(world: World, actor: Actor) -> None:
    """The matrix is not vacuous: a student's own history does come back."""
    headers = {"Authorization": f"Bearer {world.tokens[actor.key]}"}
    usage = world.client.get("/api/usage", params={"group_by": "user"}, headers=headers).json()
    assert [row["key"] for row in usage["rows"]] in ([actor.name], [])


def test_admin_reads_everything_without_errors(world: World) -> None:
    headers = {"Authorization": f"Bearer {world.tokens['admin']}"}
    admin = Actor("admin", "root_admin", "default", "admin")
    failures = []
    for method, url, kwargs in requests_for(world, admin):
        if method != "GET":
            continue
        response = world.client.get(url, headers=headers, params=kwargs["params"])
        if response.status_code >= 500:
            failures.append(f"GET {url}: {response.status_code}")
    assert failures == []
    usage = world.client.get("/api/usage", params={"group_by": "tenant"}, headers=headers).json()
    assert {row["key"] for row in usage["rows"]} == {"school_a", "school_b", "default"}
