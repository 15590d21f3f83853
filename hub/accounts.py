"""Local accounts: who may sign in, to which school, in which role.

One SQLite file (``<CLASSROOM_DATA_DIR>/accounts.sqlite``, WAL) holds one row
per person. Passwords are stored only as argon2id hashes. The hub's
authenticator reads this store on every login and refresh; the ``classroom
accounts`` CLI writes it. Every operation opens its own short connection, so
the store is safe to use from the hub's worker threads and from a CLI running
at the same time.

Repeated wrong passwords lock an account for a while when the store is given a
:class:`Lockout` (the authenticator does; the CLI does not, so an administrator
on the server is never locked out of ``classroom run``).

Exceptions (messages are meant to be shown to a person as they are)::

    AccountError
    ├── AccountNotFoundError
    ├── AccountExistsError
    └── AccountLocked          (``until``; ``just_locked`` on the failure that locked it)
"""

from __future__ import annotations

import builtins
import os
import re
import sqlite3
from collections.abc import Collection, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from gateway.config.tenants import ROLES, TENANT_ID

from .passwords import (  # noqa: F401 - the length limits are re-exported
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    password_problem,
)

ACCOUNTS_FILE = "accounts.sqlite"  # inside CLASSROOM_DATA_DIR
USERNAME_PATTERN = r"^[a-z][a-z0-9._-]{0,63}$"
MAX_DISPLAY_NAME_LENGTH = 120
SCHEMA_VERSION = 1

_USERNAME = re.compile(USERNAME_PATTERN)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    username      TEXT PRIMARY KEY,
    display_name  TEXT NOT NULL DEFAULT '',
    tenant        TEXT NOT NULL,
    role          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until  TEXT
);
CREATE INDEX IF NOT EXISTS accounts_tenant_role ON accounts (tenant, role);
"""
_COLUMNS = (
    "username, display_name, tenant, role, password_hash, disabled, "
    "created_at, updated_at, failed_logins, locked_until"
)


class AccountError(Exception):
    """An account operation that cannot be done; ``str()`` is a readable reason."""


class AccountNotFoundError(AccountError):
    """No account has that username."""


class AccountExistsError(AccountError):
    """An account with that username already exists."""


class AccountLocked(AccountError):
    """Too many wrong passwords: sign-in is refused until ``until`` (UTC)."""

    def __init__(self, username: str, until: datetime, *, just_locked: bool = False) -> None:
        minutes = max(1, -(-int((until - _now()).total_seconds()) // 60))
        super().__init__(
            f"Too many failed sign-ins. This account is locked for {minutes} more "
            f"minute{'s' if minutes != 1 else ''}; try again later or ask your teacher."
        )
        self.username = username
        self.until = until
        self.just_locked = just_locked


@dataclass(frozen=True)
class Lockout:
    """Lock an account for ``seconds`` after ``threshold`` wrong passwords in a row."""

    threshold: int = 5
    seconds: int = 600


@dataclass(frozen=True)
class RosterEntry:
    """One person of a roster: what :meth:`AccountStore.import_roster` applies."""

    username: str
    display_name: str
    tenant: str
    role: str
    password: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class ImportResult:
    """What an import did to one account (``action``: created, updated, unchanged)."""

    account: Account
    action: str
    password_set: bool


@dataclass(frozen=True)
class Account:
    """One row of the store. ``password_hash`` is kept out of ``repr``."""

    username: str
    display_name: str
    tenant: str
    role: str
    password_hash: str = field(repr=False)
    disabled: bool
    created_at: datetime
    updated_at: datetime
    failed_logins: int = 0
    locked_until: datetime | None = None

    @property
    def enabled(self) -> bool:
        return not self.disabled


def is_valid_username(username: object) -> bool:
    return isinstance(username, str) and bool(_USERNAME.fullmatch(username))


def check_username(username: str) -> str:
    """Return ``username`` if it is valid, else raise :class:`AccountError`."""
    if not is_valid_username(username):
        raise AccountError(
            f"Username {username!r} is not valid: use 1-64 lower-case letters, digits, "
            "'.', '_' or '-', starting with a letter."
        )
    return username


def check_password(password: str, username: str | None = None) -> str:
    """Return ``password`` if the rules of :mod:`hub.passwords` allow it, else raise."""
    problem = password_problem(password, username)
    if problem:
        raise AccountError(problem)
    return password


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _row_to_account(row: sqlite3.Row) -> Account:
    return Account(
        username=row["username"],
        display_name=row["display_name"],
        tenant=row["tenant"],
        role=row["role"],
        password_hash=row["password_hash"],
        disabled=bool(row["disabled"]),
        created_at=datetime.fromisoformat(row["created_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
        failed_logins=row["failed_logins"],
        locked_until=_parse_time(row["locked_until"]),
    )


class AccountStore:
    """Accounts in one SQLite file.

    ``tenants`` is the set of known tenant ids; when given, ``add`` and
    ``update`` refuse any other tenant. When omitted (read-only users such as
    the authenticator) only the syntax of a tenant id is checked.
    """

    def __init__(
        self,
        path: Path | str,
        tenants: Collection[str] | None = None,
        hasher: PasswordHasher | None = None,
        lockout: Lockout | None = None,
    ) -> None:
        self.path = Path(path)
        self.tenants = frozenset(tenants) if tenants is not None else None
        self.hasher = hasher or PasswordHasher()
        self.lockout = lockout
        self._dummy_hash: str | None = None
        self._initialise()

    # -- plumbing -----------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=15, isolation_level=None)
        conn.row_factory = sqlite3.Row
        return conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with closing(self._connect()) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _initialise(self) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        is_new = not self.path.exists()
        if is_new:
            # Create the file private before SQLite writes anything into it.
            fd = os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600)
            os.close(fd)
        with closing(self._connect()) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise AccountError(
                    f"{self.path} was written by a newer version (schema {version}); "
                    "upgrade this installation."
                )
            conn.executescript(_SCHEMA)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _check_tenant(self, tenant: str) -> str:
        if not isinstance(tenant, str) or not TENANT_ID.fullmatch(tenant):
            raise AccountError(f"Tenant {tenant!r} is not a valid school id.")
        if self.tenants is not None and tenant not in self.tenants:
            known = ", ".join(sorted(self.tenants)) or "none"
            raise AccountError(f"There is no school {tenant!r} (known: {known}).")
        return tenant

    @staticmethod
    def _check_role(role: str) -> str:
        if role not in ROLES:
            raise AccountError(f"Role {role!r} is not one of {', '.join(ROLES)}.")
        return role

    @staticmethod
    def _check_display_name(display_name: str) -> str:
        display_name = (display_name or "").strip()
        if len(display_name) > MAX_DISPLAY_NAME_LENGTH:
            raise AccountError(
                f"The display name must be at most {MAX_DISPLAY_NAME_LENGTH} characters long."
            )
        return display_name

    def _require(self, conn: sqlite3.Connection, username: str) -> Account:
        row = conn.execute(
            f"SELECT {_COLUMNS} FROM accounts WHERE username = ?", (username,)
        ).fetchone()
        if row is None:
            raise AccountNotFoundError(f"There is no account {username!r}.")
        return _row_to_account(row)

    def _set(self, username: str, **values: object) -> Account:
        check_username(username)
        values["updated_at"] = _now().isoformat()
        assignments = ", ".join(f"{name} = ?" for name in values)
        with self._transaction() as conn:
            self._require(conn, username)
            conn.execute(
                f"UPDATE accounts SET {assignments} WHERE username = ?",
                (*values.values(), username),
            )
            return self._require(conn, username)

    # -- public API ---------------------------------------------------------

    def add(
        self,
        username: str,
        password: str,
        *,
        tenant: str = "default",
        role: str = "student",
        display_name: str = "",
    ) -> Account:
        """Create an account; :class:`AccountExistsError` if the name is taken."""
        check_username(username)
        check_password(password, username)
        self._check_tenant(tenant)
        self._check_role(role)
        display_name = self._check_display_name(display_name)
        password_hash = self.hasher.hash(password)
        now = _now().isoformat()
        with self._transaction() as conn:
            try:
                conn.execute(
                    "INSERT INTO accounts (username, display_name, tenant, role, password_hash,"
                    " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (username, display_name, tenant, role, password_hash, now, now),
                )
            except sqlite3.IntegrityError:
                raise AccountExistsError(f"An account {username!r} already exists.") from None
            return self._require(conn, username)

    def get(self, username: str) -> Account | None:
        """The account, or None when there is none (also for an invalid name)."""
        if not is_valid_username(username):
            return None
        with closing(self._connect()) as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM accounts WHERE username = ?", (username,)
            ).fetchone()
        return _row_to_account(row) if row else None

    def list(self, *, tenant: str | None = None, role: str | None = None) -> list[Account]:
        """Accounts ordered by username, optionally only one tenant and/or role."""
        clauses, params = [], []
        if tenant is not None:
            clauses.append("tenant = ?")
            params.append(tenant)
        if role is not None:
            self._check_role(role)
            clauses.append("role = ?")
            params.append(role)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with closing(self._connect()) as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM accounts{where} ORDER BY username", params
            ).fetchall()
        return [_row_to_account(row) for row in rows]

    def update(
        self,
        username: str,
        *,
        tenant: str | None = None,
        role: str | None = None,
        display_name: str | None = None,
    ) -> Account:
        """Change the tenant, role or display name of an existing account."""
        values: dict[str, object] = {}
        if tenant is not None:
            values["tenant"] = self._check_tenant(tenant)
        if role is not None:
            values["role"] = self._check_role(role)
        if display_name is not None:
            values["display_name"] = self._check_display_name(display_name)
        return self._set(username, **values)

    def set_password(self, username: str, password: str) -> Account:
        """Replace the password; also clears failed-login counters and any lock."""
        check_password(password, username)
        return self._set(
            username,
            password_hash=self.hasher.hash(password),
            failed_logins=0,
            locked_until=None,
        )

    def disable(self, username: str) -> Account:
        return self._set(username, disabled=1)

    def enable(self, username: str) -> Account:
        return self._set(username, disabled=0, failed_logins=0, locked_until=None)

    def delete(self, username: str) -> None:
        check_username(username)
        with self._transaction() as conn:
            self._require(conn, username)
            conn.execute("DELETE FROM accounts WHERE username = ?", (username,))

    def verify(
        self, username: str, password: str, *, include_disabled: bool = False
    ) -> Account | None:
        """The account when ``password`` is right, else None.

        Unknown users cost one argon2 verification too, so response time does
        not reveal which usernames exist. Disabled accounts give None unless
        ``include_disabled`` (for callers that explain the refusal).
        """
        account = self.get(username) if isinstance(password, str) else None
        if account is None:
            self._burn_time(password)
            return None
        if self._is_locked(account):
            assert account.locked_until is not None
            self._burn_time(password)
            raise AccountLocked(account.username, account.locked_until)
        try:
            self.hasher.verify(account.password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            locked_until = self._record_failure(account.username)
            if locked_until is not None:
                raise AccountLocked(account.username, locked_until, just_locked=True) from None
            return None
        if account.disabled and not include_disabled:
            return None
        if (
            account.failed_logins
            or account.locked_until
            or self.hasher.check_needs_rehash(account.password_hash)
        ):
            account = self._record_success(account, password)
        return account

    def check_entry(self, entry: RosterEntry) -> RosterEntry:
        """``entry`` cleaned up (names trimmed), or :class:`AccountError` saying what is wrong."""
        written = entry.username.strip()
        if not is_valid_username(written.lower()):
            check_username(written)  # raises, naming the username as it was written
        username = written.lower()
        cleaned = RosterEntry(
            username=username,
            display_name=self._check_display_name(entry.display_name),
            tenant=self._check_tenant(entry.tenant.strip()),
            role=self._check_role(entry.role.strip().lower()),
            password=entry.password or None,
        )
        if cleaned.password is not None:
            check_password(cleaned.password, username)
        return cleaned

    def import_roster(self, entries: Sequence[RosterEntry]) -> builtins.list[ImportResult]:
        """Create or update every account of ``entries`` in one transaction: all or nothing.

        A new account needs a password; an existing one keeps its password
        unless the entry has one. Disabled accounts stay disabled.
        """
        cleaned = [self.check_entry(entry) for entry in entries]
        names = [entry.username for entry in cleaned]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise AccountError(f"Usernames listed twice: {', '.join(duplicates)}.")
        # Hash before the transaction: argon2 is slow on purpose, the write lock is not.
        hashes = {e.username: self.hasher.hash(e.password) for e in cleaned if e.password}
        now = _now().isoformat()
        results: builtins.list[ImportResult] = []
        with self._transaction() as conn:
            for entry in cleaned:
                row = conn.execute(
                    f"SELECT {_COLUMNS} FROM accounts WHERE username = ?", (entry.username,)
                ).fetchone()
                new_hash = hashes.get(entry.username)
                if row is None:
                    if new_hash is None:
                        raise AccountError(f"The new account {entry.username!r} needs a password.")
                    conn.execute(
                        "INSERT INTO accounts (username, display_name, tenant, role,"
                        " password_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (entry.username, entry.display_name, entry.tenant, entry.role,
                         new_hash, now, now),
                    )
                    action = "created"
                else:
                    old = _row_to_account(row)
                    changed = (old.display_name, old.tenant, old.role) != (
                        entry.display_name, entry.tenant, entry.role
                    )
                    if changed or new_hash:
                        conn.execute(
                            "UPDATE accounts SET display_name = ?, tenant = ?, role = ?,"
                            " updated_at = ? WHERE username = ?",
                            (entry.display_name, entry.tenant, entry.role, now, entry.username),
                        )
                    if new_hash:
                        conn.execute(
                            "UPDATE accounts SET password_hash = ?, failed_logins = 0,"
                            " locked_until = NULL WHERE username = ?",
                            (new_hash, entry.username),
                        )
                    action = "updated" if changed or new_hash else "unchanged"
                results.append(
                    ImportResult(self._require(conn, entry.username), action, bool(new_hash))
                )
        return results

    # -- verification helpers ------------------------------------------------

    def _burn_time(self, password: object) -> None:
        if self._dummy_hash is None:
            self._dummy_hash = self.hasher.hash("not-a-real-password-at-all")
        candidate = password if isinstance(password, str) else ""
        try:
            self.hasher.verify(self._dummy_hash, candidate)
        except VerificationError:
            pass

    def _is_locked(self, account: Account) -> bool:
        return (
            self.lockout is not None
            and account.locked_until is not None
            and account.locked_until > _now()
        )

    def _record_failure(self, username: str) -> datetime | None:
        """Count a wrong password; lock the account when that makes too many. Returns the lock."""
        with self._transaction() as conn:
            conn.execute(
                "UPDATE accounts SET failed_logins = failed_logins + 1 WHERE username = ?",
                (username,),
            )
            if self.lockout is None:
                return None
            failures = conn.execute(
                "SELECT failed_logins FROM accounts WHERE username = ?", (username,)
            ).fetchone()[0]
            if failures < self.lockout.threshold:
                return None
            until = _now() + timedelta(seconds=self.lockout.seconds)
            # The count starts again once the lock is over.
            conn.execute(
                "UPDATE accounts SET failed_logins = 0, locked_until = ? WHERE username = ?",
                (until.isoformat(), username),
            )
            return until

    def unlock(self, username: str) -> Account:
        """Lift a lock and forget failed sign-ins."""
        return self._set(username, failed_logins=0, locked_until=None)

    def _record_success(self, account: Account, password: str) -> Account:
        values: dict[str, object] = {"failed_logins": 0, "locked_until": None}
        if self.hasher.check_needs_rehash(account.password_hash):
            values["password_hash"] = self.hasher.hash(password)
        assignments = ", ".join(f"{name} = ?" for name in values)
        with self._transaction() as conn:
            conn.execute(
                f"UPDATE accounts SET {assignments} WHERE username = ?",
                (*values.values(), account.username),
            )
            return self._require(conn, account.username)
