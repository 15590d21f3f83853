"""AccountStore: validation, argon2 hashing, verify, disable/enable, reset, delete."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from hub.accounts import (
    AccountError,
    AccountExistsError,
    AccountNotFoundError,
    AccountStore,
)

PASSWORD = "correct horse battery"


def test_add_then_verify_returns_the_account(store: AccountStore) -> None:
    added = store.add("alice", PASSWORD, tenant="school_a", role="teacher", display_name=" Alice ")

    account = store.verify("alice", PASSWORD)

    assert account is not None
    assert (account.username, account.tenant, account.role) == ("alice", "school_a", "teacher")
    assert account.display_name == "Alice"
    assert account.enabled and not account.disabled
    assert account.created_at == added.created_at
    assert account.created_at.tzinfo is not None


def test_wrong_password_is_refused_and_counted(store: AccountStore) -> None:
    store.add("alice", PASSWORD)

    assert store.verify("alice", "not the password") is None
    assert store.verify("alice", PASSWORD.upper()) is None
    assert store.get("alice").failed_logins == 2

    assert store.verify("alice", PASSWORD) is not None
    assert store.get("alice").failed_logins == 0


def test_password_is_stored_as_argon2id_hash(store: AccountStore) -> None:
    store.add("alice", PASSWORD)

    stored = store.get("alice").password_hash
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    for file in store.path.parent.glob(f"{store.path.name}*"):  # the DB and any WAL file
        assert PASSWORD.encode() not in file.read_bytes()
    assert "password_hash" not in repr(store.get("alice"))


def test_database_file_is_private_and_in_wal_mode(store: AccountStore) -> None:
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.path.parent.stat().st_mode) == 0o700
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_duplicate_username_is_refused(store: AccountStore) -> None:
    store.add("alice", PASSWORD)
    with pytest.raises(AccountExistsError, match="already exists"):
        store.add("alice", "another password", tenant="school_b")
    assert store.get("alice").tenant == "default"


@pytest.mark.parametrize(
    "username",
    ["", "Alice", "1alice", "_alice", "al ice", "al/ice", "alice\n", "a" * 65, "élodie"],
)
def test_invalid_usernames_are_refused(store: AccountStore, username: str) -> None:
    with pytest.raises(AccountError, match="not valid"):
        store.add(username, PASSWORD)
    assert store.list() == []


@pytest.mark.parametrize("username", ["a", "a" * 64, "j.doe-2_x"])
def test_valid_username_edge_cases(store: AccountStore, username: str) -> None:
    store.add(username, PASSWORD)
    assert store.verify(username, PASSWORD).username == username


def test_unknown_tenant_is_refused_with_known_list(store: AccountStore) -> None:
    with pytest.raises(AccountError, match=r"no school 'ghost' \(known: default, school_a"):
        store.add("alice", PASSWORD, tenant="ghost")


def test_unknown_role_is_refused(store: AccountStore) -> None:
    with pytest.raises(AccountError, match="not one of student, teacher, admin, viewer"):
        store.add("alice", PASSWORD, role="principal")


def test_short_password_is_refused(store: AccountStore) -> None:
    with pytest.raises(AccountError, match="at least 8 characters"):
        store.add("alice", "7chars!")
    store.add("alice", "8chars!!")
    with pytest.raises(AccountError, match="at least 8 characters"):
        store.set_password("alice", "short")
    assert store.verify("alice", "8chars!!") is not None


def test_disable_and_enable(store: AccountStore) -> None:
    store.add("alice", PASSWORD)

    store.disable("alice")
    assert store.verify("alice", PASSWORD) is None
    explained = store.verify("alice", PASSWORD, include_disabled=True)
    assert explained is not None and explained.disabled
    assert store.verify("alice", "wrong password", include_disabled=True) is None

    store.enable("alice")
    assert store.verify("alice", PASSWORD).enabled


def test_set_password_replaces_the_old_one(store: AccountStore) -> None:
    store.add("alice", PASSWORD)
    store.verify("alice", "wrong password")

    store.set_password("alice", "brand new secret")

    assert store.verify("alice", PASSWORD) is None
    assert store.verify("alice", "brand new secret") is not None
    assert store.get("alice").failed_logins == 0


def test_update_changes_role_and_tenant(store: AccountStore) -> None:
    store.add("alice", PASSWORD)
    updated = store.update("alice", tenant="school_b", role="teacher")
    assert (updated.tenant, updated.role) == ("school_b", "teacher")
    assert updated.updated_at >= updated.created_at
    with pytest.raises(AccountError, match="no school"):
        store.update("alice", tenant="ghost")


def test_operations_on_missing_account_say_so(store: AccountStore) -> None:
    for operation in (store.disable, store.enable, store.delete):
        with pytest.raises(AccountNotFoundError, match="no account 'bob'"):
            operation("bob")
    with pytest.raises(AccountNotFoundError):
        store.set_password("bob", PASSWORD)
    assert store.get("bob") is None


def test_delete_removes_the_account(store: AccountStore) -> None:
    store.add("alice", PASSWORD)
    store.delete("alice")
    assert store.get("alice") is None
    assert store.verify("alice", PASSWORD) is None
    store.add("alice", "a new start")  # the name is free again


def test_list_filters_by_tenant_and_role(store: AccountStore) -> None:
    store.add("zoe", PASSWORD, tenant="school_a")
    store.add("adam", PASSWORD, tenant="school_a", role="teacher")
    store.add("bea", PASSWORD, tenant="school_b")

    assert [a.username for a in store.list()] == ["adam", "bea", "zoe"]
    assert [a.username for a in store.list(tenant="school_a")] == ["adam", "zoe"]
    assert [a.username for a in store.list(role="student")] == ["bea", "zoe"]
    assert [a.username for a in store.list(tenant="school_a", role="student")] == ["zoe"]


class CountingHasher(PasswordHasher):
    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.verifications = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:  # noqa: A002
        self.verifications += 1
        return super().verify(hash, password)


def test_unknown_user_costs_a_hash_verification_too(data_dir: Path) -> None:
    hasher = CountingHasher()
    store = AccountStore(data_dir / "accounts.sqlite", hasher=hasher)
    store.add("alice", PASSWORD)

    assert store.verify("nobody", PASSWORD) is None
    assert hasher.verifications == 1
    assert store.verify("alice", "wrong password") is None
    assert hasher.verifications == 2
    assert store.verify("Not Valid!", PASSWORD) is None
    assert hasher.verifications == 3


def test_weak_hash_is_upgraded_on_successful_login(data_dir: Path) -> None:
    path = data_dir / "accounts.sqlite"
    weak = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    AccountStore(path, hasher=weak).add("alice", PASSWORD)
    strong = PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1)
    store = AccountStore(path, hasher=strong)

    assert strong.check_needs_rehash(store.get("alice").password_hash)
    assert store.verify("alice", PASSWORD) is not None
    assert not strong.check_needs_rehash(store.get("alice").password_hash)
    assert store.verify("alice", PASSWORD) is not None


def test_store_without_tenant_list_checks_tenant_syntax_only(data_dir: Path) -> None:
    store = AccountStore(data_dir / "accounts.sqlite", hasher=CountingHasher())
    store.add("alice", PASSWORD, tenant="any_school")
    with pytest.raises(AccountError, match="not a valid school id"):
        store.add("bob", PASSWORD, tenant="Bad School")


def test_newer_schema_is_refused(data_dir: Path, fast_hasher: PasswordHasher) -> None:
    path = data_dir / "accounts.sqlite"
    AccountStore(path, hasher=fast_hasher)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(AccountError, match="newer version"):
        AccountStore(path, hasher=fast_hasher)


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("short", "at least 8"),
        ("password123", "most common"),
        ("Classroom1", "most common"),
        ("aaaaaaaaaaaa", "more than two different"),
        ("student7", None),
    ],
)
def test_password_rules(store: AccountStore, password: str, problem: str | None) -> None:
    if problem is None:
        assert store.add("newbie", password).username == "newbie"
    else:
        with pytest.raises(AccountError, match=problem):
            store.add("newbie", password)


def test_password_must_not_be_the_username(store: AccountStore) -> None:
    with pytest.raises(AccountError, match="not be the username"):
        store.add("longusername", "LongUsername")


def test_lockout_is_off_without_a_lockout_setting(store: AccountStore) -> None:
    store.add("alice", "right-password-1")
    for _ in range(10):
        assert store.verify("alice", "wrong-password") is None
    assert store.verify("alice", "right-password-1") is not None
