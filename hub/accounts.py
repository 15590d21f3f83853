"""Local accounts: who may sign in, to which school, in which role.

One SQLite file (``<CLASSROOM_DATA_DIR>/accounts.sqlite``, WAL) holds one row
per person. Passwords are stored only as argon2id hashes. The hub's
authenticator reads this store on every login and refresh; the ``classroom
accounts`` CLI writes it. Every operation opens its own short connection, so
the store is safe to use from the hub's worker threads and from a CLI running
at the same time.

Exceptions (messages are meant to be shown to a person as they are)::

    AccountError
    ├── AccountNotFoundError
    └── AccountExistsError
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Collection, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from gateway.tenants import ROLES, TENANT_ID

ACCOUNTS_FILE = "accounts.sqlite"  # inside CLASSROOM_DATA_DIR
USERNAME_PATTERN = r"^[a-z][a-z0-9._-]{0,63}$"
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
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


def check_password(password: str) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"The password must be at least {MIN_PASSWORD_LENGTH} characters long.")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountError(f"The password must be at most {MAX_PASSWORD_LENGTH} characters long.")
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
    ) -> None:
        self.path = Path(path)
        self.tenants = frozenset(tenants) if tenants is not None else None
        self.hasher = hasher or PasswordHasher()
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
        check_password(password)
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
        """Replace the password; also clears failed-login counters."""
        check_password(password)
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
        try:
            self.hasher.verify(account.password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            self._record_failure(account.username)
            return None
        if account.disabled and not include_disabled:
            return None
        if account.failed_logins or self.hasher.check_needs_rehash(account.password_hash):
            account = self._record_success(account, password)
        return account

    # -- verification helpers ------------------------------------------------

    def _burn_time(self, password: object) -> None:
        if self._dummy_hash is None:
            self._dummy_hash = self.hasher.hash("not-a-real-password-at-all")
        candidate = password if isinstance(password, str) else ""
        try:
            self.hasher.verify(self._dummy_hash, candidate)
        except VerificationError:
            pass

    def _record_failure(self, username: str) -> None:
        with self._transaction() as conn:
            conn.execute(
                "UPDATE accounts SET failed_logins = failed_logins + 1 WHERE username = ?",
                (username,),
            )

    def _record_success(self, account: Account, password: str) -> Account:
        values: dict[str, object] = {"failed_logins": 0}
        if self.hasher.check_needs_rehash(account.password_hash):
            values["password_hash"] = self.hasher.hash(password)
        assignments = ", ".join(f"{name} = ?" for name in values)
        with self._transaction() as conn:
            conn.execute(
                f"UPDATE accounts SET {assignments} WHERE username = ?",
                (*values.values(), account.username),
            )
            return self._require(conn, account.username)
