"""How run rows reach the database: written at once on the event loop while few calls
are in flight and the database is free, through the writer thread otherwise; never a
wait on the loop, and the same rows either way. A ``running`` row written on the loop
is committed with the next finished row (before that call's answer), or within
``HOLD`` seconds, or before any other write or read of the store. A write that fails,
held on the loop or in a group commit on the thread, loses no other write and writes
none twice (asserted from the SQLite file)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from gateway.auth import Identity
from gateway.history import HistoryStore, RunStart, conversations
from gateway.history.audit import import_hub_audit, record_audit
from gateway.history.models import messages
from gateway.history.store import INLINE_MAX_OPEN_RUNS, RUN_START_COLUMNS, SQLITE_INSERT_RUN
from hub.audit import record

T = TypeVar("T")

RUN = RunStart(user="stu1", tenant="school_a", role="student", source="sdk", kind="chat",
               api="openai", provider="mock", model="mock/echo")


def rows(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute("select id, status, http_status from runs order by id").fetchall()


def test_a_locked_database_sends_writes_to_the_thread_and_nothing_is_lost(tmp_path):
    path = tmp_path / "history.sqlite"
    store = HistoryStore.open(f"sqlite:///{path}")

    async def scenario() -> None:
        assert store._inline is not None
        first = await store.start(RUN)  # free database: done on the loop, held
        assert store._inline._commits == 0 and rows(path) == []
        await store.finish(first, status="ok", http_status=200)
        assert store._inline._commits == 1  # one commit for both writes
        assert rows(path) == [(1, "ok", 200)]  # before the answer would be sent

        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
        params = tuple(getattr(RUN, c, None) for c in RUN_START_COLUMNS)
        assert store._inline.write(SQLITE_INSERT_RUN, params) is None  # refused, no wait
        queued = asyncio.ensure_future(store.start(RUN))
        await asyncio.sleep(0)  # one turn of the loop (not a wait): the task tries inline
        assert not queued.done()  # refused there; the thread waits for the lock
        other.execute("COMMIT")
        other.close()
        second = await queued
        assert store._inline._commits == 1  # it was written by the thread
        await store.finish(second, status="error", http_status=502)
        assert store._inline._commits == 2  # the finish went inline again

    try:
        asyncio.run(scenario())
    finally:
        store.close()
    assert rows(path) == [(1, "ok", 200), (2, "error", 502)]


def test_many_calls_in_flight_group_commit_on_the_thread(tmp_path):
    path = tmp_path / "history.sqlite"
    store = HistoryStore.open(f"sqlite:///{path}")
    calls = INLINE_MAX_OPEN_RUNS * 5

    async def scenario() -> None:
        ids = await asyncio.gather(*(store.start(RUN) for _ in range(calls)))
        assert store._inline is not None
        # The first few were held on the loop; the first write sent to the thread
        # committed them before it went (the thread never waits behind them).
        assert store._inline._commits == 1 and store._inline._held == []
        assert len(rows(path)) == calls
        await asyncio.gather(*(store.finish(i, status="ok", http_status=200) for i in ids))
        assert sorted(ids) == list(range(1, calls + 1))
        assert store._open_runs == 0

    try:
        asyncio.run(scenario())
    finally:
        store.close()
    assert rows(path) == [(i, "ok", 200) for i in range(1, calls + 1)]


def test_a_held_running_row_is_committed_soon_and_before_a_read(tmp_path):
    path = tmp_path / "history.sqlite"
    store = HistoryStore.open(f"sqlite:///{path}")

    async def scenario() -> None:
        inline = store._inline
        assert inline is not None
        committed = asyncio.Event()
        flush = inline.flush

        def flushed() -> None:
            flush()
            if not inline._held:
                committed.set()

        inline.flush = flushed  # type: ignore[method-assign]
        first = await store.start(RUN)
        assert rows(path) == [] and inline._timer is not None
        await asyncio.wait_for(committed.wait(), timeout=10)  # the HOLD timer fired
        assert rows(path) == [(first, "running", None)]

        second = await store.start(RUN)  # held again, then a read of the store
        assert (await store.get(second) or {}).get("status") == "running"
        assert rows(path)[-1] == (second, "running", None)  # the read committed it first

    try:
        asyncio.run(scenario())
    finally:
        store.close()


def test_a_failed_write_keeps_the_other_held_rows_once(tmp_path):
    path = tmp_path / "history.sqlite"
    store = HistoryStore.open(f"sqlite:///{path}")
    nameless = RunStart(**{**RUN.__dict__, "user": None})  # type: ignore[arg-type]
    with sqlite3.connect(path) as conn:  # a failure SQLite answers by ending the transaction
        conn.execute("CREATE TRIGGER boom BEFORE INSERT ON runs WHEN NEW.user = 'boom' "
                     "BEGIN SELECT RAISE(ROLLBACK, 'boom'); END")

    async def scenario() -> None:
        inline = store._inline
        assert inline is not None
        held = [await store.start(RUN) for _ in range(2)]
        assert len(inline._held) == 2 and rows(path) == []
        # A statement fails: SQLite undoes it alone; the held rows stay held, not rewritten.
        with pytest.raises(sqlite3.IntegrityError):
            await store.start(nameless)
        with pytest.raises(sqlite3.OperationalError):
            inline.write("INSERT INTO runs (no_such_column) VALUES (1)", ())
        assert len(inline._held) == 2 and inline._commits == 0 and rows(path) == []
        # The whole transaction ends (a trigger's RAISE(ROLLBACK)): the held rows are
        # written again, once each, under the ids their callers were given.
        with pytest.raises(sqlite3.IntegrityError, match="boom"):
            await store.start(RunStart(**{**RUN.__dict__, "user": "boom"}))
        assert rows(path) == [(held[0], "running", None), (held[1], "running", None)]
        assert store._open_runs == 2
        third = await store.start(RUN)
        for run_id, status in zip((*held, third), (200, 502, 200), strict=True):
            await store.finish(run_id, status="ok" if status == 200 else "error",
                               http_status=status)

    try:
        asyncio.run(scenario())
    finally:
        store.close()
    assert rows(path) == [(1, "ok", 200), (2, "error", 502), (3, "ok", 200)]
    with sqlite3.connect(path) as conn:
        assert conn.execute("select count(*), count(distinct user) from runs").fetchone() == (3, 1)


def test_a_failed_write_in_a_group_commit_loses_no_other_write_and_no_audit_line(tmp_path):
    """One write of a batch fails: the batch is rolled back and the others run again. The
    hub-audit import, whose read position is kept in the same transaction, imports every
    spooled line exactly once; every other write lands once."""
    path, data = tmp_path / "history.sqlite", tmp_path / "data"
    data.mkdir()
    store = HistoryStore.open(f"sqlite:///{path}")
    for i in range(5):
        record(data, actor="classroom hub", actor_role="admin", action=f"account.add.{i}",
               target=f"stu{i}", tenant="school_a")
    owner = conversations.Owner("stu1", "school_a")
    ran: Counter[str] = Counter()

    def counted(name: str, fn: Callable[[Connection], T]) -> Callable[[Connection], T]:
        def write(connection: Connection) -> T:
            ran[name] += 1
            return fn(connection)
        return write

    def broken(connection: Connection) -> None:  # a message of no conversation: refused
        connection.execute(insert(messages).values(
            id="msg_orphan", conversation_id="conv_none", role="user", content="x",
            created_at=1.0))

    async def scenario() -> list[Any]:
        actor = Identity(name="teach_a", tenant="school_a", role="teacher")
        # Submitted in one turn of the loop: one batch on the writer thread.
        return await asyncio.gather(
            record_audit(store, actor, "before.failure"),
            store.write(counted("import", lambda c: import_hub_audit(c, data))),
            store.write(counted("create", lambda c: conversations.create(c, owner))),
            store.write(counted("broken", broken)),
            record_audit(store, actor, "after.failure"),
            store.write(counted("import again", lambda c: import_hub_audit(c, data))),
            return_exceptions=True)

    try:
        outcomes = asyncio.run(scenario())
        assert isinstance(outcomes[3], IntegrityError)  # only the faulty write failed
        assert outcomes[1] == 5 and outcomes[5] == 0
        assert outcomes[2]["id"].startswith("conv_")
        # the writes before the failure ran twice, those after it once
        assert ran == {"import": 2, "create": 2, "broken": 1, "import again": 1}
        record(data, actor="classroom hub", actor_role="admin", action="account.add.5",
               target="stu5", tenant="school_a")
        assert asyncio.run(store.write(lambda c: import_hub_audit(c, data))) == 1
    finally:
        store.close()
    with sqlite3.connect(path) as conn:
        actions = Counter(a for (a,) in conn.execute("select action from audit_log"))
        assert actions == {**{f"account.add.{i}": 1 for i in range(6)},
                           "before.failure": 1, "after.failure": 1}
        assert conn.execute("select count(*) from conversations").fetchone() == (1,)
        assert conn.execute("select count(*) from messages").fetchone() == (0,)
        assert conn.execute("select position from import_positions where source = 'hub-audit'"
                            ).fetchone() == ((data / "hub-audit.jsonl").stat().st_size,)


def test_the_hub_audit_import_takes_over_the_old_offset_file_and_claims_lines_once(tmp_path):
    path, data = tmp_path / "history.sqlite", tmp_path / "data"
    data.mkdir()
    for i in range(3):
        record(data, actor="hub", actor_role="admin", action=f"old.{i}")
    (data / "hub-audit.offset").write_text(str((data / "hub-audit.jsonl").stat().st_size))
    record(data, actor="hub", actor_role="admin", action="new.0")
    store = HistoryStore.open(f"sqlite:///{path}")
    try:
        with store.engine.begin() as conn:  # lines before the old offset were imported before
            assert import_hub_audit(conn, data) == 1
        (data / "hub-audit.offset").write_text("0")  # no longer read: the database has it
        record(data, actor="hub", actor_role="admin", action="new.1")
        with store.engine.connect() as first, store.engine.connect() as second:
            # Two imports that read the same position: the second claims nothing.
            first.begin()
            assert import_hub_audit(first, data) == 1
            first.commit()
            second.begin()
            assert import_hub_audit(second, data) == 0
            second.commit()
    finally:
        store.close()
    with sqlite3.connect(path) as conn:
        assert [a for (a,) in conn.execute("select action from audit_log order by id")] == [
            "new.0", "new.1"]


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(["audit", "import", "broken"]), min_size=1, max_size=12),
       st.integers(min_value=0, max_value=4))
def test_any_batch_with_any_failures_lands_every_other_write_exactly_once(
        tmp_path_factory, kinds, lines):
    """Property: whichever writes of one batch fail, and wherever the imports stand, the
    file holds every write that succeeded once, every spooled line once, nothing else."""
    root = tmp_path_factory.mktemp("batch")
    path, data = root / "history.sqlite", root / "data"
    data.mkdir()
    for i in range(lines):
        record(data, actor="hub", actor_role="admin", action=f"hub.{i}")
    store = HistoryStore.open(f"sqlite:///{path}")
    actor = Identity(name="teach_a", tenant="school_a", role="teacher")

    def broken(connection: Connection) -> None:
        connection.execute(insert(messages).values(
            id="msg_orphan", conversation_id="conv_none", role="user", content="x",
            created_at=1.0))

    def write(index: int, kind: str) -> Any:
        if kind == "audit":
            return record_audit(store, actor, f"write.{index}")
        if kind == "import":
            return store.write(lambda c: import_hub_audit(c, data))
        return store.write(broken)

    async def scenario() -> list[Any]:
        return await asyncio.gather(*(write(i, k) for i, k in enumerate(kinds)),
                                    return_exceptions=True)

    try:
        outcomes = asyncio.run(scenario())
    finally:
        store.close()
    for kind, outcome in zip(kinds, outcomes, strict=True):
        assert isinstance(outcome, IntegrityError) == (kind == "broken"), (kind, outcome)
    imported = sum(o for k, o in zip(kinds, outcomes, strict=True) if k == "import")
    assert imported == (lines if "import" in kinds else 0)
    with sqlite3.connect(path) as conn:
        actions = Counter(a for (a,) in conn.execute("select action from audit_log"))
        assert conn.execute("select count(*) from messages").fetchone() == (0,)
    expected = Counter(f"write.{i}" for i, k in enumerate(kinds) if k == "audit")
    if "import" in kinds:
        expected.update(f"hub.{i}" for i in range(lines))
    assert actions == expected
