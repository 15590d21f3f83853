"""Roster import: a whole class from one CSV file, all or nothing.

The file has a header row with the columns ``username, display_name, tenant,
role`` and optionally ``password`` (any order, any case). Every row is checked
first; when any row is bad, every problem is reported with its line number and
nothing is applied. Otherwise all accounts are created or updated in one
transaction of the accounts store; people without a password get a generated
one, written to a credentials CSV (mode 0600) for the teacher to hand out.
Finally, when the hub is running, its users and groups are brought in step
through the ``classroom-admin`` service (:mod:`hub.hubapi`).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from .accounts import AccountError, AccountStore, ImportResult, RosterEntry
from .hubapi import HubClient, HubUnavailable
from .roles import groups_for

REQUIRED_COLUMNS = ("username", "display_name", "tenant", "role")
OPTIONAL_COLUMNS = ("password",)
MAX_ROWS = 5000


class RosterError(AccountError):
    """A roster that cannot be imported; ``problems`` lists each as ``file:line: text``."""

    def __init__(self, problems: list[str]) -> None:
        count = len(problems)
        super().__init__(
            "\n".join(problems)
            + f"\nNothing was imported ({count} problem{'s' if count != 1 else ''})."
        )
        self.problems = problems


@dataclass(frozen=True)
class RosterRow:
    line: int
    entry: RosterEntry


@dataclass
class ImportReport:
    results: list[ImportResult]
    generated: dict[str, str] = field(default_factory=dict, repr=False)
    credentials_file: Path | None = None
    hub_synced: dict[str, str] = field(default_factory=dict)
    hub_problem: str | None = None

    def count(self, action: str) -> int:
        return sum(1 for r in self.results if r.action == action)


def read_roster(path: Path) -> list[RosterRow]:
    """The rows of a roster file, with their line numbers; :class:`RosterError` if unreadable."""
    try:
        return parse_roster(path.read_bytes(), path.name)
    except OSError as exc:
        raise RosterError([f"{path.name}: cannot be read: {exc.strerror}"]) from None


def parse_roster(data: bytes, name: str) -> list[RosterRow]:
    """The rows of a roster's bytes (a file, an upload) named ``name`` in every problem."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RosterError([f"{name}: not UTF-8 text; save the file as CSV UTF-8"]) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise RosterError([f"{name}: the file is empty"]) from None
    except csv.Error as exc:
        raise RosterError([f"{name}:1: {exc}"]) from None
    columns = [c.strip().lower() for c in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    unknown = [c for c in columns if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    problems = []
    if missing:
        problems.append(f"{name}:1: missing column(s) {', '.join(missing)}")
    if unknown:
        problems.append(
            f"{name}:1: unknown column(s) {', '.join(unknown)} "
            f"(expected {', '.join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)})"
        )
    if problems:
        raise RosterError(problems)

    rows: list[RosterRow] = []
    try:
        for values in reader:
            line = reader.line_num
            if not any(v.strip() for v in values):
                continue  # blank lines are fine
            if len(values) != len(columns):
                problems.append(
                    f"{name}:{line}: {len(values)} values for {len(columns)} columns"
                )
                continue
            cell = dict(zip(columns, values, strict=True))
            rows.append(
                RosterRow(
                    line,
                    RosterEntry(
                        username=cell["username"],
                        display_name=cell["display_name"],
                        tenant=cell["tenant"],
                        role=cell["role"],
                        password=cell.get("password") or None,
                    ),
                )
            )
            if len(rows) > MAX_ROWS:
                raise RosterError([f"{name}: more than {MAX_ROWS} rows; split the file"])
    except csv.Error as exc:
        problems.append(f"{name}:{reader.line_num}: {exc}")
    if problems:
        raise RosterError(problems)
    if not rows:
        raise RosterError([f"{name}: no rows under the header"])
    return rows


def check_roster(store: AccountStore, rows: list[RosterRow], name: str) -> list[RosterRow]:
    """The rows cleaned up; :class:`RosterError` naming every bad line."""
    problems: list[str] = []
    cleaned: list[RosterRow] = []
    first_line: dict[str, int] = {}
    for row in rows:
        try:
            entry = store.check_entry(row.entry)
        except AccountError as exc:
            problems.append(f"{name}:{row.line}: {exc}")
            continue
        if entry.username in first_line:
            problems.append(
                f"{name}:{row.line}: {entry.username!r} is already on line "
                f"{first_line[entry.username]}"
            )
            continue
        first_line[entry.username] = row.line
        cleaned.append(RosterRow(row.line, entry))
    if problems:
        raise RosterError(problems)
    return cleaned


def with_passwords(
    store: AccountStore, rows: list[RosterRow], generate: Callable[[], str]
) -> tuple[list[RosterEntry], dict[str, str]]:
    """The entries to apply, new people without a password given a generated one (returned)."""
    generated: dict[str, str] = {}
    entries: list[RosterEntry] = []
    for row in rows:
        entry = row.entry
        if entry.password is None and store.get(entry.username) is None:
            generated[entry.username] = generate()
            entry = RosterEntry(
                entry.username, entry.display_name, entry.tenant, entry.role,
                generated[entry.username],
            )
        entries.append(entry)
    return entries, generated


def credentials_csv(rows: list[tuple[str, str, str, str]]) -> str:
    """``username, display_name, tenant, password`` rows as CSV text (for the teacher)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["username", "display_name", "tenant", "password"])
    writer.writerows(rows)
    return buffer.getvalue()


def default_credentials_path(roster: Path) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return roster.with_name(f"{roster.stem}-credentials-{stamp}.csv")


def write_credentials(path: Path, rows: list[tuple[str, str, str, str]]) -> None:
    """``username, display_name, tenant, password`` rows, readable by the owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(credentials_csv(rows))


def import_roster_file(
    store: AccountStore,
    roster: Path,
    *,
    credentials: Path | None = None,
    hub: HubClient | None = None,
    generate: Callable[[], str],
) -> ImportReport:
    """Check, apply and sync one roster file. Raises :class:`RosterError` before any change."""
    rows = check_roster(store, read_roster(roster), roster.name)
    entries, generated = with_passwords(store, rows, generate)

    credentials_file = None
    if generated:
        # Written before the accounts: a password nobody can read is a locked-out pupil.
        credentials_file = credentials or default_credentials_path(roster)
        try:
            write_credentials(
                credentials_file,
                [(e.username, e.display_name, e.tenant, generated[e.username])
                 for e in entries if e.username in generated],
            )
        except FileExistsError:
            raise RosterError([f"{credentials_file}: already exists; choose another "
                               "--credentials file"]) from None
    try:
        results = store.import_roster(entries)
    except BaseException:
        if credentials_file is not None:
            credentials_file.unlink(missing_ok=True)
        raise
    report = ImportReport(results, generated, credentials_file)

    if hub is not None:
        try:
            if not hub.is_running():
                report.hub_problem = "the hub is not running"
            else:
                for result in results:
                    account = result.account
                    report.hub_synced[account.username] = hub.sync_user(
                        account.username, groups_for(account.tenant, account.role)
                    )
        except HubUnavailable as exc:
            report.hub_problem = str(exc)
    return report
