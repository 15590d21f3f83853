"""How run rows reach the database: written at once on the event loop while few calls
are in flight and the database is free, through the writer thread otherwise; never a
wait on the loop, and the same rows either way. A ``running`` row written on the loop
is committed with the next finished row (before that call's answer), or within
``HOLD`` seconds, or before any other write or read of the store."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from gateway.history import HistoryStore, RunStart
from gateway.history.store import INLINE_MAX_OPEN_RUNS, RUN_START_COLUMNS, SQLITE_INSERT_RUN

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


def test_a_failed_write_keeps_the_other_held_rows(tmp_path):
    path = tmp_path / "history.sqlite"
    store = HistoryStore.open(f"sqlite:///{path}")

    async def scenario() -> None:
        assert store._inline is not None
        first = await store.start(RUN)
        with pytest.raises(sqlite3.OperationalError):
            store._inline.write("INSERT INTO runs (no_such_column) VALUES (1)", ())
        assert rows(path) == [(first, "running", None)]  # rolled back, written again
        await store.finish(first, status="ok", http_status=200)

    try:
        asyncio.run(scenario())
    finally:
        store.close()
    assert rows(path) == [(1, "ok", 200)]
