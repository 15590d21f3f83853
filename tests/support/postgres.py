"""A real PostgreSQL server for tests: ``initdb`` in a fresh directory, ``postgres`` on a
free loopback port, one database per test, stopped by PID.

PostgreSQL refuses to run as root, so when the tests run as root the server runs as
the ``postgres`` user in a directory that user owns. Debian's PostgreSQL 15 lives in
``/usr/lib/postgresql/15/bin`` (``make install-test`` installs it when it is missing).
"""

from __future__ import annotations

import os
import pwd
import secrets as random
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.procs import free_port, stop_process, wait_until

BIN_DIRS = [Path("/usr/lib/postgresql") / v / "bin" for v in ("17", "16", "15")]


def postgres_bin() -> Path | None:
    found = next((d for d in BIN_DIRS if (d / "postgres").exists()), None)
    if found is None and shutil.which("postgres"):
        found = Path(str(shutil.which("postgres"))).parent
    return found


@dataclass
class PostgresServer:
    root: Path
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    databases: list[str] = field(default_factory=list)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def execute(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                             autocommit=True) as connection:
            connection.execute(sql)

    def create_database(self, prefix: str = "t") -> str:
        """A fresh, empty database; its SQLAlchemy URL."""
        name = f"{prefix}_{random.token_hex(6)}"
        self.execute(f'CREATE DATABASE "{name}"')
        self.databases.append(name)
        return self.url(name)

    def stop(self) -> None:
        stop_process(self.process)
        shutil.rmtree(self.root, ignore_errors=True)


def _as_postgres() -> dict[str, Any]:
    if os.geteuid() != 0:
        return {}
    entry = pwd.getpwnam("postgres")
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def start_postgres() -> PostgresServer:
    binaries = postgres_bin()
    if binaries is None:
        raise RuntimeError("PostgreSQL is not installed (make install-test installs it)")
    root = Path(tempfile.mkdtemp(prefix="classroom-pg-"))
    owner = _as_postgres()
    if owner:
        os.chown(root, owner["user"], owner["group"])
    data, log = root / "data", root / "postgres.log"
    subprocess.run(
        [str(binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
         "-E", "UTF8", "--no-instructions"],
        check=True, capture_output=True, cwd=root, **owner,
    )
    port = free_port()
    with open(log, "wb") as out:
        if owner:
            os.chown(log, owner["user"], owner["group"])
        process = subprocess.Popen(
            [str(binaries / "postgres"), "-D", str(data), "-p", str(port), "-k", str(root),
             "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
             "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
             "-c", "max_connections=200"],
            stdout=out, stderr=subprocess.STDOUT, cwd=root, **owner,
        )
    server = PostgresServer(root, port, process, log)

    def ready() -> bool:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres",
                             connect_timeout=2):
            return True

    try:
        wait_until(lambda: _ok(ready), 60, "postgres", process)
    except BaseException:
        server.stop()
        raise
    return server


def _ok(check: Any) -> bool:
    import psycopg

    try:
        return bool(check())
    except psycopg.OperationalError:
        return False
