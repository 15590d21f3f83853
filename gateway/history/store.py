"""The history store: one row per provider call, written before and after it.

Writes go through one dedicated thread (SQLite has one writer anyway), so the
event loop never blocks on the disk and writes never contend with each other.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, bindparam, create_engine, event, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql.dml import Update

from gateway.history.models import runs

T = TypeVar("T")
MIGRATIONS = Path(__file__).parent / "migrations"
TEXT_LIMIT = 20_000  # characters of prompt/response kept per run


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            # 1 MiB of page cache per pooled connection (SQLite's default is 2 MiB each): the
            # pages read again are few and recent, the OS caches the file, and a dashboard
            # that scans a month should not grow every connection's cache to its cap.
            cursor.execute("PRAGMA cache_size=-1024")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


MIGRATION_LOCK = 7_201_126  # pg_advisory_xact_lock key: "the classroom's migrations"


def upgrade(engine: Engine) -> None:
    """Bring the database to the newest schema (run at gateway start).

    Several gateways (replicas, or workers) may start at the same moment on one
    database: the first to take the lock migrates, the others wait for it and then
    find nothing to do. PostgreSQL: a transaction-scoped advisory lock taken in the
    migration's own transaction; SQLite: an exclusive lock on a file beside the
    database (one machine only, as SQLite is)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with _file_lock(engine), engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


@contextmanager
def _file_lock(engine: Engine) -> Iterator[None]:
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        yield
        return
    import fcntl

    with open(f"{database}.migrate-lock", "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass
class RunStart:
    user: str
    tenant: str
    role: str
    source: str
    kind: str
    api: str
    provider: str | None
    model: str | None
    stream: bool = False
    request_text: str | None = None
    notebook: str | None = None  # the lab path of the notebook the call came from (claimed)
    cell: str | None = None  # the id of the cell that made it (claimed)
    cell_position: int | None = None  # that cell's place among the code cells, 1-based
    cell_count: int | None = None  # the notebook's code cells


class _GroupCommit:
    """One writer thread that commits every pending write in one transaction.

    A write waits for the commit of the batch it is in (so, under load, a ``running``
    row is on disk before the provider is called), but a busy gateway pays one transaction
    and one wake-up of the event loop per batch, not per write. If a batch fails,
    its writes are retried one by one so that only the faulty one fails.
    """

    BATCH = 256

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        # Writes submitted during one turn of an event loop, handed to the thread together
        # at the end of that turn: one wake-up of the writer per turn, not per write.
        self._turns: dict[asyncio.AbstractEventLoop, list[Any]] = {}
        self._thread = threading.Thread(target=self._run, name="history-writer", daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[[Connection], Any]) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        turn = self._turns.get(loop)
        if turn is None:
            turn = self._turns[loop] = []
            loop.call_soon(self._hand_over, loop)
        turn.append((fn, future, loop))
        return future

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        turn = self._turns.pop(loop, None)
        if turn:
            self._queue.put(turn)

    def close(self) -> None:
        for loop in list(self._turns):  # writes of this turn still go before the end
            self._hand_over(loop)
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = list(first)
            stop = False
            while len(batch) < self.BATCH:
                try:
                    items = self._queue.get_nowait()
                except queue.Empty:
                    break
                if items is None:
                    stop = True
                    break
                batch.extend(items)
            self._commit(batch)
            if stop:
                return

    def _commit(self, batch: list[Any]) -> None:
        """Commit ``batch`` in one transaction. A write function that raises fails alone:
        the transaction is rolled back and the others are run again, together, without it
        (so a write function may run twice; see :meth:`HistoryStore.write`). If the commit
        itself fails, each write is tried alone."""
        while batch:
            try:
                with self.engine.begin() as connection:
                    results = []
                    for index, (fn, _, _) in enumerate(batch):
                        try:
                            results.append(fn(connection))
                        except Exception as error:
                            raise _WriteFailed(index, error) from error
            except _WriteFailed as failed:
                _deliver([batch[failed.index]], [(False, failed.error)])
                batch = batch[:failed.index] + batch[failed.index + 1:]
                continue
            except Exception as error:
                if len(batch) == 1:
                    _deliver(batch, [(False, error)])
                else:
                    for item in batch:  # the commit failed: which write made it fail?
                        self._commit([item])
                return
            _deliver(batch, [(True, result) for result in results])
            return


class _WriteFailed(Exception):
    """A write function of a batch raised ``error`` (carried out of the transaction)."""

    def __init__(self, index: int, error: Exception) -> None:
        super().__init__(index, error)
        self.index, self.error = index, error


def _deliver(items: list[Any], outcomes: list[tuple[bool, Any]]) -> None:
    """Hand each write's outcome to the loop that waits for it."""
    by_loop: dict[Any, list[tuple[asyncio.Future[Any], bool, Any]]] = {}
    for (_, future, loop), (ok, value) in zip(items, outcomes, strict=True):
        by_loop.setdefault(loop, []).append((future, ok, value))
    for loop, settled in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle, settled)
        except RuntimeError:  # that loop is closed: nobody waits any more
            pass


# With this many calls in flight or more, run rows go through the writer thread: there
# are writes to commit together, and group commit is cheaper than a commit per write.
INLINE_MAX_OPEN_RUNS = 4


class _InlineWriter:
    """Run-row writes done at once on the event loop when the database is free.

    A call writes its row twice: ``running`` when it starts, finished before the answer.
    Through the writer thread each write is a round trip of two thread switches (about
    165 µs here); done on the loop, an INSERT or UPDATE takes a few µs and a commit
    about 30 µs (WAL, ``synchronous=NORMAL``: no fsync). So a write is tried here first,
    never waiting: if the writer thread (or another process) holds the write lock,
    ``BEGIN IMMEDIATE`` fails at once (``busy_timeout=0``) and the write goes to the
    thread as before. Checkpoints, which do fsync, are left to the writer thread.

    A ``running`` row opens (or joins) a transaction that is committed by the next
    finished row, which commits before its answer is sent, or after at most ``HOLD``
    seconds, whichever comes first: a short call costs one commit instead of two, and
    the pages both writes touch go to the WAL once. Any other write or read through the
    store commits the held rows first, so nothing reads or waits behind them.

    Only the thread that first writes (the gateway's event loop) writes here; writes
    for one row are ordered by their callers, who await each before the next.
    """

    CHECKPOINT_EVERY = 1000  # commits between the thread's passive checkpoints
    HOLD = 0.02  # seconds a running row may wait for its commit

    def __init__(self, database: str, writer: _GroupCommit) -> None:
        self.database = database
        self.writer = writer
        self._connection: sqlite3.Connection | None = None
        self._owner: int | None = None
        self._commits = 0
        self._closed = False
        # written, not yet committed: (sql, params, the new row's id for an INSERT)
        self._held: list[tuple[str, Sequence[Any], int | None]] = []
        self._timer: asyncio.TimerHandle | None = None

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.database, isolation_level=None,
                                     check_same_thread=False)
        for pragma in ("busy_timeout=0", "synchronous=NORMAL", "foreign_keys=ON",
                       "wal_autocheckpoint=0", "cache_size=-1024"):
            connection.execute(f"PRAGMA {pragma}")
        return connection

    def write(self, sql: str, params: Sequence[Any], *, commit: bool = True) -> int | None:
        """Done: the cursor's ``lastrowid`` (the new row's id after an INSERT). Not done
        (None): the write must go to the writer thread. ``commit=False`` may leave it in
        the held transaction (see the class)."""
        if self._closed:
            return None
        if self._owner is None:
            self._owner = threading.get_ident()
            self._connection = self._connect()
        elif self._owner != threading.get_ident():
            return None
        connection = self._connection
        assert connection is not None
        if not self._held:
            try:
                connection.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError:  # locked by the writer thread or another process
                return None
        try:
            cursor = connection.execute(sql, params)
        except BaseException:
            self._recover()
            raise
        rowid = cursor.lastrowid if sql.lstrip()[:6].upper() == "INSERT" else None
        self._held.append((sql, params, rowid))
        if commit:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.HOLD, self.flush)
        return int(cursor.lastrowid or 0)

    def flush(self) -> None:
        """Commit the held rows now (a no-op when there are none, or off the loop's thread)."""
        if self._owner != threading.get_ident():
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._held:
            return
        connection = self._connection
        assert connection is not None
        self._held = []
        try:
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        self._commits += 1
        if self._commits % self.CHECKPOINT_EVERY == 0:
            self._checkpoint()

    def _recover(self) -> None:
        """A write failed. SQLite undid that statement alone, so the rows held before it are
        still in the open transaction, which keeps the write lock: nothing is written twice
        and no other writer comes in between (a failed first write ends the transaction it
        began). Only when SQLite ended the whole transaction (a full disk, an I/O error, a
        trigger's ``RAISE(ROLLBACK)``) are the held rows written again, waiting for the lock
        if need be, in their order, so that each new row gets the id its caller was given."""
        connection = self._connection
        assert connection is not None
        if connection.in_transaction:
            if not self._held:
                connection.execute("ROLLBACK")
            return
        held, self._held = self._held, []
        if not held:
            return
        connection.execute("PRAGMA busy_timeout=30000")
        try:
            connection.execute("BEGIN IMMEDIATE")
            for sql, params, rowid in held:
                cursor = connection.execute(sql, params)
                if rowid is not None and cursor.lastrowid != rowid:
                    connection.execute("ROLLBACK")
                    raise RuntimeError(f"a held run row came back as id {cursor.lastrowid}, "
                                       f"not {rowid}: another writer came in between")
            connection.execute("COMMIT")
        finally:
            connection.execute("PRAGMA busy_timeout=0")
        self._commits += 1

    def _checkpoint(self) -> None:
        def checkpoint(connection: Connection) -> None:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

        future = self.writer.submit(checkpoint)
        future.add_done_callback(_quiet)

    def close(self) -> None:
        self.flush()
        self._closed = True
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _quiet(future: asyncio.Future[Any]) -> None:
    """Retrieve a checkpoint's outcome: one that could not run now runs next time."""
    if not future.cancelled():
        future.exception()


def _settle(outcomes: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for future, ok, value in outcomes:
        if future.done():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


class HistoryStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        self._writer = _GroupCommit(engine)
        database = engine.url.database if self._sqlite else None
        self._inline = _InlineWriter(database, self._writer) \
            if database and database != ":memory:" else None
        self._open_runs = 0  # started and not yet finished by this process
        self._readers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="history-reader")

    @classmethod
    def open(cls, url: str, *, migrate: bool = True) -> HistoryStore:
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = make_engine(url)
        if migrate:
            upgrade(engine)
        return cls(engine)

    def close(self) -> None:
        if self._inline is not None:
            self._inline.close()
        self._writer.close()
        self._readers.shutdown(wait=True)
        self.engine.dispose()

    async def write(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in one transaction on the writer thread, with the other writes of its
        batch (group commit), and return what it returned.

        The write contract (every caller keeps it; the group commit relies on it):

        1. ``fn`` may run twice. When another write of its batch raises, the transaction is
           rolled back and the others run again together without it; when the commit
           itself fails, each runs again alone. Nothing it did the first time is kept.
        2. ``fn`` touches only the database, through ``connection``: no file, no in-memory
           state, no counter or position kept elsewhere (the hub-audit import keeps its
           position in a table for this reason). Side effects belong after the ``await``.
        3. The checks that answer a caller 4xx (not found, forbidden, conflict, invalid)
           happen before the write, in a :meth:`read` or in plain Python. ``fn`` does not
           raise for a caller's mistake; it returns what it found (e.g. ``None`` for a row
           that went away meanwhile) and the caller turns that into the error. An exception
           from ``fn`` is a failure of the database or of the code: it fails that write
           alone (raised here) and makes the rest of its batch run again.
        """
        return await self._write(fn)

    async def read(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` on a reader thread."""
        return await self._read(fn)

    def _flush(self) -> None:
        """Commit held running rows before anything else writes or reads."""
        if self._inline is not None:
            self._inline.flush()

    async def _write(self, fn: Callable[[Connection], T]) -> T:
        self._flush()
        return await self._writer.submit(fn)  # type: ignore[no-any-return]

    async def _read(self, fn: Callable[[Connection], T]) -> T:
        self._flush()

        def run() -> T:
            with self.engine.connect() as connection:
                return fn(connection)

        return await asyncio.get_running_loop().run_in_executor(self._readers, run)

    async def start(self, run: RunStart) -> int:
        now = time.time()
        values = {
            **run.__dict__,
            "request_text": _clip(run.request_text),
            "status": "running",
            "queued_at": now,
            "started_at": now,
        }

        if self._sqlite:
            params = tuple(values[name] for name in RUN_START_COLUMNS)
            run_id = await self._sqlite_run_write(
                SQLITE_INSERT_RUN, params, inline=self._open_runs < INLINE_MAX_OPEN_RUNS,
                commit=False)
        else:
            def write(connection: Connection) -> int:
                inserted = connection.execute(INSERT_RUN, values).inserted_primary_key
                assert inserted is not None
                return int(inserted[0])

            run_id = await self._write(write)
        self._open_runs += 1
        return run_id

    async def finish(self, run_id: int, **values: Any) -> None:
        values.setdefault("finished_at", time.time())
        if "response_text" in values:
            values["response_text"] = _clip(values["response_text"])
        if "error_message" in values:
            values["error_message"] = _clip(values["error_message"], 2000)

        columns = tuple(sorted(values))
        if self._sqlite:
            # the run finishing is one of the open ones: it may still go inline at the limit
            await self._sqlite_run_write(
                _sqlite_update_run(columns), (*(values[name] for name in columns), run_id),
                inline=self._open_runs <= INLINE_MAX_OPEN_RUNS)
        else:
            def write(connection: Connection) -> None:
                connection.execute(_update_run(columns), {"_run_id": run_id, **values})

            await self._write(write)
        self._open_runs -= 1

    async def _sqlite_run_write(self, sql: str, params: Sequence[Any], *, inline: bool,
                                commit: bool = True) -> int:
        """A run row's INSERT or UPDATE on SQLite (the cursor's ``lastrowid`` back):
        committed at once on the loop when ``inline`` and the database is free, else by the
        writer thread, with the driver's own statement cache (no SQLAlchemy compile or
        result object on a thread that holds the GIL while it works)."""
        if inline and self._inline is not None:
            done = self._inline.write(sql, params, commit=commit)
            if done is not None:
                return done

        def write(connection: Connection) -> int:
            driver = connection.connection.driver_connection
            assert driver is not None
            return int(driver.execute(sql, params).lastrowid or 0)

        return await self._write(write)

    async def get(self, run_id: int) -> dict[str, Any] | None:
        def read(connection: Connection) -> dict[str, Any] | None:
            row = connection.execute(select(runs).where(runs.c.id == run_id)).mappings().first()
            return dict(row) if row else None

        return await self._read(read)

    async def list_runs(
        self,
        *,
        user: str | None = None,
        tenant: str | None = None,
        model: str | None = None,
        status: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[dict[str, Any]], int]:
        conditions = []
        if user is not None:
            conditions.append(runs.c.user == user)
        if tenant is not None:
            conditions.append(runs.c.tenant == tenant)
        if model is not None:
            conditions.append(runs.c.model == model)
        if status is not None:
            conditions.append(runs.c.status == status)

        def read(connection: Connection) -> tuple[list[dict[str, Any]], int]:
            query = select(runs).where(*conditions).order_by(runs.c.id.desc())
            rows = connection.execute(query.limit(limit).offset(offset)).mappings().all()
            total = connection.execute(
                select(func.count()).select_from(runs).where(*conditions)
            ).scalar_one()
            return [dict(r) for r in rows], int(total)

        return await self._read(read)

    async def status_counts(self) -> dict[str, int]:
        def read(connection: Connection) -> dict[str, int]:
            query = select(runs.c.status, func.count()).group_by(runs.c.status)
            return {status: int(n) for status, n in connection.execute(query)}

        return await self._read(read)

    async def mark_interrupted(self) -> int:
        """Runs left ``running`` by a previous process can never finish: say so."""

        def write(connection: Connection) -> int:
            result = connection.execute(
                update(runs)
                .where(runs.c.status == "running")
                .values(
                    status="interrupted",
                    error_code="gateway_restarted",
                    error_message="The gateway stopped while this call was running.",
                    finished_at=time.time(),
                )
            )
            return int(result.rowcount or 0)

        return await self._write(write)


# Statements built once: on the hot path only parameters change, so SQLAlchemy
# neither rebuilds nor re-keys them for every call.
INSERT_RUN = insert(runs)
RUN_START_COLUMNS = (*RunStart.__dataclass_fields__, "status", "queued_at", "started_at")
SQLITE_INSERT_RUN = (
    f"INSERT INTO runs ({', '.join(f'{chr(34)}{c}{chr(34)}' for c in RUN_START_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in RUN_START_COLUMNS)})"
)


@lru_cache(maxsize=64)
def _update_run(columns: tuple[str, ...]) -> Update:
    return (
        update(runs)
        .where(runs.c.id == bindparam("_run_id"))
        .values({name: bindparam(name) for name in columns})
    )


@lru_cache(maxsize=64)
def _sqlite_update_run(columns: tuple[str, ...]) -> str:
    for name in columns:
        if name not in runs.c:
            raise ValueError(f"runs has no column {name!r}")
    assigned = ", ".join(f'"{name}" = ?' for name in columns)
    return f'UPDATE runs SET {assigned} WHERE id = ?'


def _clip(text: str | None, limit: int = TEXT_LIMIT) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[:limit] + "…"


def rows_to_public(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [run_to_public(r) for r in rows]


def run_to_public(row: dict[str, Any]) -> dict[str, Any]:
    """A run as the API shows it: times as ISO strings plus derived durations."""
    from datetime import UTC, datetime

    def iso(value: float | None) -> str | None:
        return datetime.fromtimestamp(value, UTC).isoformat() if value else None

    def ms(a: float | None, b: float | None) -> float | None:
        return round((b - a) * 1000, 1) if a and b else None

    out = dict(row)
    for name in ("queued_at", "started_at", "first_token_at", "finished_at"):
        out[name] = iso(row.get(name))
    out["latency_ms"] = ms(row.get("started_at"), row.get("finished_at"))
    out["ttft_ms"] = ms(row.get("started_at"), row.get("first_token_at"))
    cost = row.get("cost_micro_usd")
    out["cost_usd"] = cost / 1_000_000 if cost is not None else None
    return out
