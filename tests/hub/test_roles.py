"""Roles and scopes, checked against JupyterHub's own scope machinery."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from jupyterhub import orm, scopes
from jupyterhub import roles as hub_roles

from hub import roles


@pytest.fixture(scope="module", autouse=True)
def custom_scopes_defined() -> None:
    # JupyterHub keeps scope definitions in a module global; redefining the
    # same definitions is allowed, so this is safe next to a real hub start.
    scopes.define_custom_scopes(roles.custom_scopes())


@pytest.fixture
def db() -> Iterator[object]:
    session = orm.new_session_factory("sqlite://")()
    for spec in hub_roles.get_default_roles():
        hub_roles.create_role(session, spec)
    for spec in roles.load_roles(["school_a", "school_b"], gateway_service=None):
        hub_roles.create_role(session, spec)
    session.add(orm.OAuthClient(identifier="jupyterhub"))
    session.commit()
    yield session
    session.close()


def make_user(db: object, name: str, tenant: str, role: str) -> orm.User:
    """A user in the groups the authenticator gives, with the roles load_roles gives."""
    user = orm.User(name=name)
    db.add(user)  # type: ignore[attr-defined]
    hub_roles.grant_role(db, user, orm.Role.find(db, "user"))
    for group_name in roles.groups_for(tenant, role):
        group = orm.Group.find(db, group_name) or orm.Group(name=group_name)
        user.groups.append(group)
    for spec in roles.load_roles(["school_a", "school_b"], gateway_service=None):
        for group_name in spec.get("groups", []):
            group = orm.Group.find(db, group_name)
            if group is not None:
                hub_roles.grant_role(db, group, orm.Role.find(db, spec["name"]))
    db.commit()  # type: ignore[attr-defined]
    return user


def server_token_scopes(db: object, user: orm.User) -> set[str]:
    """What JupyterHub grants the lab token of ``user`` (as jupyterhub.user.User.spawn does)."""
    requested = {
        scope + f"={user.name}/" if scope.endswith("!server") else scope
        for scope in roles.SERVER_TOKEN_SCOPES
    }
    have = hub_roles.roles_to_scopes(hub_roles.get_roles_for(user)) | {"inherit"}
    client = db.query(orm.OAuthClient).filter_by(identifier="jupyterhub").one()  # type: ignore[attr-defined]
    granted, _ = scopes._resolve_requested_scopes(requested, have, user, client, db)
    return set(granted)


def test_every_scope_in_the_roles_exists() -> None:
    for spec in roles.load_roles(["school_a"]):
        scopes._check_scopes_exist(spec["scopes"], who_for=spec["name"])
    scopes._check_scopes_exist(roles.SERVER_TOKEN_SCOPES, who_for="server token")


def test_role_names_are_valid_jupyterhub_role_names() -> None:
    for spec in roles.load_roles(["a", "school_a"]):
        hub_roles._validate_role_name(spec["name"])


def test_groups_follow_the_documented_names() -> None:
    assert roles.groups_for("school_a", "student") == ["tenant-school_a", "role-student"]
    assert roles.groups_for("school_a", "teacher") == [
        "tenant-school_a",
        "role-teacher",
        "teachers-school_a",
    ]


def test_load_roles_keeps_the_builtin_user_role_and_covers_every_tenant() -> None:
    specs = {spec["name"]: spec for spec in roles.load_roles(["school_a", "school_b"])}
    assert "user" not in specs
    assert specs["classroom-teacher-school_b"]["groups"] == ["teachers-school_b"]
    assert (
        "custom:gateway:teach!group=tenant-school_b"
        in specs["classroom-teacher-school_b"]["scopes"]
    )
    assert specs["classroom-gateway"]["services"] == ["gateway"]
    assert specs["classroom-viewer"]["scopes"] == ["custom:gateway:use"]


def test_teacher_gets_teach_scope_only_for_their_school(db: object) -> None:
    teacher = make_user(db, "tina", "school_a", "teacher")

    held = scopes.get_scopes_for(teacher)

    assert "custom:gateway:teach!group=tenant-school_a" in held
    assert "custom:gateway:teach" not in held
    assert "custom:gateway:use" in held
    assert "read:users!group=tenant-school_a" in held
    assert "access:servers!group=tenant-school_a" in held
    assert not any("school_b" in scope for scope in held)


def test_filtered_teach_scope_survives_the_server_token_intersection(db: object) -> None:
    teacher = make_user(db, "tina", "school_a", "teacher")

    granted = server_token_scopes(db, teacher)

    assert "custom:gateway:teach!group=tenant-school_a" in granted
    assert "custom:gateway:use" in granted
    assert "access:servers!server=tina/" in granted
    assert "read:users:groups!user" in granted
    assert not {"custom:gateway:teach", "custom:gateway:admin"} & granted


def test_student_server_token_can_use_but_not_teach(db: object) -> None:
    student = make_user(db, "stu", "school_a", "student")

    granted = server_token_scopes(db, student)

    assert "custom:gateway:use" in granted
    assert not any(s.startswith(("custom:gateway:teach", "custom:gateway:admin")) for s in granted)


def test_admin_server_token_carries_all_gateway_scopes(db: object) -> None:
    admin = make_user(db, "root", "default", "admin")

    granted = server_token_scopes(db, admin)

    assert {"custom:gateway:use", "custom:gateway:teach", "custom:gateway:admin"} <= granted


TEACHER_ACTIONS = [
    # (scope JupyterHub checks, what it guards)
    ("list:users", "list the users in the admin panel / GET /hub/api/users"),
    ("read:users", "read a user's model"),
    ("servers", "start and stop a user's server"),
    ("access:servers", "open a user's server"),
]


@pytest.mark.parametrize(("scope", "action"), TEACHER_ACTIONS)
def test_teacher_may_act_on_own_school_students_only(db: object, scope: str, action: str) -> None:
    teacher = make_user(db, "tina", "school_a", "teacher")
    own = make_user(db, "stu_a", "school_a", "student")
    other = make_user(db, "stu_b", "school_b", "student")
    other_teacher = make_user(db, "tom", "school_b", "teacher")
    parsed = scopes.parse_scopes(scopes.get_scopes_for(teacher))

    assert scope in parsed, action
    assert scopes.check_scope_filter(parsed[scope], own, "user"), action
    assert not scopes.check_scope_filter(parsed[scope], other, "user"), action
    assert not scopes.check_scope_filter(parsed[scope], other_teacher, "user"), action


def test_student_may_act_on_nobody_else(db: object) -> None:
    student = make_user(db, "stu_a", "school_a", "student")
    classmate = make_user(db, "stu_a2", "school_a", "student")
    parsed = scopes.parse_scopes(scopes.get_scopes_for(student))
    for scope, _ in TEACHER_ACTIONS:
        if scope in parsed:
            assert not scopes.check_scope_filter(parsed[scope], classmate, "user")
    assert "admin-ui" not in parsed


def test_teacher_sees_the_admin_panel_and_only_own_school_group(db: object) -> None:
    teacher = make_user(db, "tina", "school_a", "teacher")
    make_user(db, "stu_b", "school_b", "student")
    parsed = scopes.parse_scopes(scopes.get_scopes_for(teacher))
    assert "admin-ui" in parsed
    assert "admin:users" not in parsed and "admin:groups" not in parsed
    group_a = orm.Group.find(db, "tenant-school_a")
    group_b = orm.Group.find(db, "tenant-school_b")
    assert scopes.check_scope_filter(parsed["list:groups"], group_a, "group")
    assert not scopes.check_scope_filter(parsed["list:groups"], group_b, "group")


def test_every_school_has_a_group_role() -> None:
    specs = {spec["name"]: spec for spec in roles.load_roles(["school_a", "school_b"])}
    assert specs["classroom-school-school_a"]["groups"] == ["tenant-school_a"]
    assert specs["classroom-school-school_b"]["groups"] == ["tenant-school_b"]
