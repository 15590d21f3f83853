"""``classroom accounts ...`` and ``classroom run``: the hub side of the CLI.

Both read ``CLASSROOM_DATA_DIR`` and ``CLASSROOM_TENANTS_DIR`` like the hub
(:mod:`hub.config`). Errors are one line on stderr with exit code 1 (the
operation failed) or 2 (bad usage); never a traceback.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from gateway.config.tenants import ROLES, TenantFileError, load_tenants

from .accounts import ACCOUNTS_FILE, Account, AccountError, AccountStore
from .config import HubSettings, resolve_data_dir, resolve_tenants_dir
from .passwords import generate_password
from .supervisor import PID_FILE, Supervisor, run_environment

ADMIN_CREDENTIALS_FILE = "admin_credentials.txt"
NOT_ISOLATED_WARNING = """
!!! WARNING: labs are NOT isolated !!!
classroom run is not running as root, so every lab runs as the OS user {user!r},
the same user as the hub and the gateway. Any student can read the gateway's
database, the master key, the hub's secrets and every other student's files.
Fine for trying it out alone; on a machine students use, run it as root
(sudo make run) so that each lab runs as its own OS user.
"""
# No 0/o, 1/l/i: passwords are read aloud and copied from a projector.
T = TypeVar("T")


class CommandError(Exception):
    """A failure to report on stderr; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def open_store() -> AccountStore:
    """The accounts store of ``CLASSROOM_DATA_DIR``, checking tenants against the tenant files."""
    try:
        tenants = load_tenants(resolve_tenants_dir())
    except TenantFileError as exc:
        raise CommandError(str(exc)) from None
    return AccountStore(resolve_data_dir() / ACCOUNTS_FILE, tenants=tenants)


# -- classroom accounts ----------------------------------------------------------


def _read_password(args: argparse.Namespace) -> tuple[str, bool]:
    """The password to set and whether it was generated."""
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise CommandError("no password on standard input", code=2)
        return password, False
    if args.password is not None:
        return args.password, False
    return generate_password(), True


def _cmd_add(store: AccountStore, args: argparse.Namespace) -> None:
    password, generated = _read_password(args)
    account = store.add(
        args.username,
        password,
        tenant=args.tenant,
        role=args.role,
        display_name=args.display_name or "",
    )
    print(f"Added {account.role} {account.username!r} to school {account.tenant!r}.")
    if generated:
        print(f"Generated password: {password}")


def _cmd_list(store: AccountStore, args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    accounts = store.list(tenant=args.tenant, role=args.role)
    if not accounts:
        print("No accounts.")
        return
    table = Table(box=None, header_style="bold")
    for column in ("username", "name", "school", "role", "status", "created (UTC)"):
        table.add_column(column)
    for account in accounts:
        table.add_row(
            account.username,
            account.display_name,
            account.tenant,
            account.role,
            "disabled" if account.disabled else "active",
            account.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    Console(width=max(100, shutil.get_terminal_size().columns)).print(table)


def _cmd_disable(store: AccountStore, args: argparse.Namespace) -> None:
    store.disable(args.username)
    print(f"Disabled {args.username!r}; they are signed out within a minute.")


def _cmd_enable(store: AccountStore, args: argparse.Namespace) -> None:
    store.enable(args.username)
    print(f"Enabled {args.username!r}.")


def _cmd_reset_password(store: AccountStore, args: argparse.Namespace) -> None:
    password, generated = _read_password(args)
    store.set_password(args.username, password)
    print(f"Password of {args.username!r} changed.")
    if generated:
        print(f"Generated password: {password}")


def _cmd_delete(store: AccountStore, args: argparse.Namespace) -> None:
    store.delete(args.username)
    print(f"Deleted {args.username!r}.")


def _cmd_unlock(store: AccountStore, args: argparse.Namespace) -> None:
    store.unlock(args.username)
    print(f"Unlocked {args.username!r}.")


def _cmd_import(store: AccountStore, args: argparse.Namespace) -> None:
    from .hubapi import HubClient
    from .roster import import_roster_file

    roster = Path(args.roster)
    hub = None if args.no_hub else HubClient.from_data_dir(resolve_data_dir())
    report = import_roster_file(
        store,
        roster,
        credentials=Path(args.credentials) if args.credentials else None,
        hub=hub,
        generate=generate_password,
    )
    print(
        f"Imported {roster.name}: {report.count('created')} created, "
        f"{report.count('updated')} updated, {report.count('unchanged')} unchanged."
    )
    disabled = [r.account.username for r in report.results if r.account.disabled]
    if disabled:
        print(
            f"Still disabled: {', '.join(disabled)} "
            "(enable with `classroom accounts enable NAME`)."
        )
    if report.credentials_file is not None:
        print(
            f"Passwords of the {len(report.generated)} new account(s) are in "
            f"{report.credentials_file} (readable only by you): hand them out, then delete it."
        )
    if report.hub_synced:
        created = sum(1 for a in report.hub_synced.values() if a == "created")
        print(
            f"Hub: {len(report.hub_synced)} user(s) in step with their groups "
            f"({created} new)."
        )
    elif hub is None and not args.no_hub:
        print("Hub: not configured yet; groups are given at each person's first sign-in.")
    elif report.hub_problem:
        print(f"Hub: not updated ({report.hub_problem}); groups are given at each sign-in.")


def _add_password_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--password", help="the new password (default: generate and print one)")
    group.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input",
    )


def _accounts_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="classroom accounts",
        description="Manage the classroom's local accounts (in CLASSROOM_DATA_DIR).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    add = sub.add_parser("add", help="create an account")
    add.add_argument("username")
    add.add_argument("--tenant", default="default", help="school id (default: default)")
    add.add_argument("--role", default="student", choices=ROLES, help="default: student")
    add.add_argument("--display-name", help="the person's name as shown to teachers")
    _add_password_options(add)
    add.set_defaults(run=_cmd_add)

    listing = sub.add_parser("list", help="show accounts")
    listing.add_argument("--tenant", help="only this school")
    listing.add_argument("--role", choices=ROLES, help="only this role")
    listing.set_defaults(run=_cmd_list)

    roster = sub.add_parser(
        "import",
        help="create or update accounts from a roster CSV (all or nothing)",
        description=(
            "Create or update every account of a roster CSV with the columns "
            "username, display_name, tenant, role and optionally password. Nothing is "
            "applied when any row is bad. New accounts without a password get a "
            "generated one, written to a credentials CSV for you to hand out. When the "
            "hub is running, its users and groups are updated at once."
        ),
    )
    roster.add_argument("roster", help="the roster CSV file")
    roster.add_argument(
        "--credentials",
        help="where to write generated passwords "
        "(default: <roster>-credentials-<time>.csv beside the roster)",
    )
    roster.add_argument(
        "--no-hub", action="store_true", help="only the accounts store; do not call the hub"
    )
    roster.set_defaults(run=_cmd_import)

    for name, run, text in (
        ("disable", _cmd_disable, "stop an account from signing in"),
        ("unlock", _cmd_unlock, "lift a lock after too many failed sign-ins"),
        ("enable", _cmd_enable, "let a disabled account sign in again"),
        ("delete", _cmd_delete, "remove an account"),
    ):
        command = sub.add_parser(name, help=text)
        command.add_argument("username")
        command.set_defaults(run=run)

    reset = sub.add_parser("reset-password", help="set a new password")
    reset.add_argument("username")
    _add_password_options(reset)
    reset.set_defaults(run=_cmd_reset_password)
    return parser


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace | int:
    try:
        return parser.parse_args(argv)
    except SystemExit as exc:  # argparse prints its own usage message
        return exc.code if isinstance(exc.code, int) else 2


def _attempt(prog: str, action: Callable[[], T]) -> tuple[int, T | None]:
    """Run ``action``; turn expected failures into a stderr line and an exit status."""
    try:
        return 0, action()
    except CommandError as exc:
        message, code = str(exc), exc.code
    except (AccountError, OSError) as exc:
        message, code = str(exc), 1
    except SystemExit as exc:  # settings refused (bad port, bad tenant file, ...)
        if not isinstance(exc.code, str):
            return int(exc.code or 0), None
        message, code = exc.code, 2
    print(f"{prog}: error: {message}", file=sys.stderr)
    return code, None


def accounts_main(argv: list[str]) -> int:
    """``classroom accounts add|import|list|disable|enable|unlock|reset-password|delete``."""
    args = _parse(_accounts_parser(), argv)
    if isinstance(args, int):
        return args
    code, _ = _attempt("classroom accounts", lambda: args.run(open_store(), args))
    if code == 0 and args.command in AUDITED:
        _audit(args)
    return code


#: Account commands that change something, and their audit action names.
AUDITED = {
    "add": "account.add", "import": "account.import", "disable": "account.disable",
    "enable": "account.enable", "unlock": "account.unlock",
    "reset-password": "account.password_reset", "delete": "account.delete",
}


def _audit(args: argparse.Namespace) -> None:
    from .audit import record

    target = getattr(args, "username", None) or str(getattr(args, "roster", "") or "") or None
    details = {k: getattr(args, k) for k in ("tenant", "role") if getattr(args, k, None)}
    try:
        record(resolve_data_dir(), actor=f"{_os_user()} (command line)", actor_role="admin",
               action=AUDITED[args.command], target=target, tenant=details.get("tenant"),
               details=details)
    except OSError as exc:  # the change is made; say that it could not be audited
        print(f"classroom accounts: warning: not written to the audit log: {exc}", file=sys.stderr)


# -- classroom run -------------------------------------------------------------------


def _stored_admin_password(path: Path) -> str | None:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return None
    for line in lines:
        key, _, value = line.partition(":")
        if key.strip() == "password" and value.strip():
            return value.strip()
    return None


def _write_admin_credentials(path: Path, username: str, password: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(
            "# Generated by `classroom run` for the bootstrap admin; kept until you delete it.\n"
            f"username: {username}\npassword: {password}\n"
        )
    path.chmod(0o600)


def ensure_admin(
    store: AccountStore, username: str, env_password: str | None, credentials_file: Path
) -> tuple[Account, str]:
    """Make sure the bootstrap admin exists; return it and how to sign in as it.

    ``CLASSROOM_ADMIN_PASSWORD`` wins and is (re)applied when it differs from
    the stored hash. Without it, a password is generated once, kept in
    ``credentials_file`` (0600) and reused on later runs.
    """
    account = store.get(username)
    if env_password:
        if account is None:
            account = store.add(
                username, env_password, tenant="default", role="admin", display_name="Administrator"
            )
        elif store.verify(username, env_password, include_disabled=True) is None:
            account = store.set_password(username, env_password)
        return account, "(from CLASSROOM_ADMIN_PASSWORD)"  # never echoed: logs keep this

    stored = _stored_admin_password(credentials_file)
    if account is None:
        password = stored or generate_password()
        account = store.add(
            username, password, tenant="default", role="admin", display_name="Administrator"
        )
        if stored is None:
            _write_admin_credentials(credentials_file, username, password)
        return account, f"{password}   (kept in {credentials_file})"
    if stored and store.verify(username, stored, include_disabled=True) is not None:
        return account, f"{stored}   (kept in {credentials_file})"
    return account, (
        f"(set earlier; change it with `classroom accounts reset-password {username}`)"
    )


def _os_user() -> str:
    import pwd

    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


def _run_parser() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(
        prog="classroom run",
        description=(
            "Start the classroom: JupyterHub with its proxy, the gateway service and labs. "
            "Settings come from CLASSROOM_* environment variables (see README). Ctrl-C stops "
            "all; SIGHUP restarts the hub alone, labs and gateway kept (docs/isolation.md)."
        ),
    )


def _prepare_run() -> tuple[HubSettings, str, Path]:
    """Check settings and tenants, make the data dir, bootstrap the admin."""
    settings = HubSettings.from_environ()
    tenants = settings.load_tenants()
    settings.make_data_dir()
    store = AccountStore(settings.accounts_db, tenants=tenants)
    account, password_note = ensure_admin(
        store,
        settings.admin_user,
        os.environ.get("CLASSROOM_ADMIN_PASSWORD") or None,
        settings.data_dir / ADMIN_CREDENTIALS_FILE,
    )
    if account.disabled or account.role != "admin":
        state = "disabled" if account.disabled else f"a {account.role}"
        print(
            f"classroom run: warning: account {account.username!r} is {state}, not an active admin",
            file=sys.stderr,
        )
    config_file = settings.repo_dir / "jupyterhub_config.py"
    if not config_file.is_file():
        raise CommandError(f"missing hub configuration {config_file}")
    return settings, password_note, config_file


def run_main(argv: list[str]) -> int:
    """``classroom run``: bootstrap the admin, print how to sign in, supervise the hub."""
    args = _parse(_run_parser(), argv)
    if isinstance(args, int):
        return args
    prog = "classroom run"
    code, prepared = _attempt(prog, _prepare_run)
    if code or prepared is None:
        return code
    settings, password_note, config_file = prepared
    if not sys.stdout.isatty() and "(kept in " in password_note:
        # Printed into a log, not onto a terminal: the password stays in its 0600 file.
        password_note = password_note[password_note.index("(kept in "):]

    if settings.isolated:
        labs = "each runs as its own OS user (cls-<name>); see docs/isolation.md"
    else:
        labs = "NOT ISOLATED (see the warning above)"
        print(NOT_ISOLATED_WARNING.format(user=_os_user()), file=sys.stderr, flush=True)
    print(
        "\nJupyter AI Classroom\n"
        f"  open:           {settings.public_url}/\n"
        f"  admin user:     {settings.admin_user}\n"
        f"  admin password: {password_note}\n"
        f"  data directory: {settings.data_dir}\n"
        f"  labs:           {labs}\n"
        "Stop with Ctrl-C. Restart the hub alone, labs kept: "
        f"kill -HUP $(cat {settings.data_dir / PID_FILE})\n",
        flush=True,
    )

    env = run_environment(settings, os.environ)
    if settings.isolated:
        # Whatever the hub, the gateway and the proxy create is root's alone.
        os.umask(0o077)
    os.chdir(settings.data_dir)
    return Supervisor(settings, config_file, env).run()
