"""``writer="auto"``, the default: SQLite is written in the collector's thread until rows
come faster than AUTO_ROWS_PER_S, then by a child process; where no child could write,
always in the thread."""

from __future__ import annotations

import contextlib
import os
import sqlite3

import pytest

import rtkit
from rtkit.runtime import chunks, receiver, writer, writer_process
from rtkit.runtime.writer_process import ProcessSink, sqlite_sink
from rtkit.sim import Simulator
from rtkit.sinks.sqlite import SQLiteSink
from rtkit.store import TickStore
from tests.conftest import wait_for
from tests.test_storage_faults import expected_rows, stored_rows
from tests.test_writer_process import SYMBOLS, assert_accounted, children, gone, local_writes

pytestmark = pytest.mark.usefixtures("no_thread_leak")


def test_the_default_writer_is_auto_where_a_child_can_write(db):
    assert writer_process.DEFAULT_WRITER == "auto"
    sink = rtkit.Collector("binance", SYMBOLS, db=db).sink
    if os.name == "posix":
        assert isinstance(sink, ProcessSink) and sink.undecided and sink.pid is None
    else:
        assert isinstance(sink, SQLiteSink)


def test_a_slow_feed_is_written_in_the_thread_and_no_child_is_started(db):
    others = set(children(os.getpid()))  # a session's browser or server, say
    with Simulator("binance", rate=2000, count=2000, seed=11) as sim:
        c = rtkit.collect("binance", SYMBOLS, url=sim.url, db=db, flush_interval_s=0.1)
        try:
            wait_for(lambda: c.stats["stored"] == 2000, 20)
            assert c.sink.undecided and c.sink.pid is None and not c.sink.in_child
            assert c.stats["sqlite_writer"] == "thread"
            assert set(children(os.getpid())) <= others  # no process was started
        finally:
            c.stop()
        assert stored_rows(db) == expected_rows(sim.trades)
    assert_accounted(c.stats)


def test_a_fast_feed_hands_the_writing_to_a_child_and_every_tick_is_stored(db):
    n = 150_000  # as fast as the simulator sends: well over AUTO_ROWS_PER_S
    with Simulator("binance", rate=None, count=n, seed=12) as sim:
        c = rtkit.collect("binance", SYMBOLS, url=sim.url, db=db)
        try:
            wait_for(lambda: not c.sink.undecided, 20)
            wait_for(lambda: c.stats["stored"] == n, 60)
            assert c.sink.in_child  # the child wrote the rest of the run
            assert c.stats["sqlite_writer"] == "process"
            pid = c.sink.pid
            assert pid is not None and not gone(pid)
        finally:
            c.stop()
        assert stored_rows(db) == expected_rows(sim.trades)
    assert gone(pid) and c.status == "stopped"
    assert_accounted(c.stats)
    with contextlib.closing(sqlite3.connect(db)) as conn:  # one run, finished by the child
        assert conn.execute("SELECT status FROM runs").fetchall() == [("stopped",)]


def assert_a_child_takes_over(db, monkeypatch, **options) -> None:
    """With the threshold below a 2,000/s feed, a collector made with ``options`` hands
    SQLite to a child, which stores every trade, exactly accounted."""
    monkeypatch.setattr(writer, "AUTO_ROWS_PER_S", 500)
    with Simulator("binance", rate=2000, count=3000, seed=13) as sim:
        c = rtkit.collect("binance", SYMBOLS, url=sim.url, db=db, **options)
        try:
            wait_for(lambda: c.sink.in_child, 30)
            wait_for(lambda: c.stats["stored"] == 3000, 20)
        finally:
            c.stop()
        assert stored_rows(db) == expected_rows(sim.trades)
    assert_accounted(c.stats)


def test_the_rate_that_starts_the_child_is_the_threshold(db, monkeypatch):
    """The same 2,000 trades a second start the child when the threshold is below them."""
    assert_a_child_takes_over(db, monkeypatch, flush_interval_s=0.1)


class ModuleStore(TickStore):
    pass


def test_auto_stays_in_the_thread_with_a_store_no_child_can_import(db):
    class LocalStore(TickStore):
        pass

    assert type(sqlite_sink("auto", db, LocalStore)) is SQLiteSink  # no error: the thread
    main_store = type("MainStore", (TickStore,), {"__module__": "__main__"})
    assert type(sqlite_sink("auto", db, main_store)) is SQLiteSink
    assert isinstance(sqlite_sink("auto", db, ModuleStore), ProcessSink) == (os.name == "posix")
    with pytest.raises(ValueError, match="top level"):
        sqlite_sink("process", db, LocalStore)


def test_while_its_child_starts_auto_lets_early_flushes_wait_for_it_as_process_does(
        db, held_child, monkeypatch):
    """Once "auto" has asked for its child, an early flush waits for it (up to the
    interval), as with writer="process", rather than being written here meanwhile."""
    monkeypatch.setattr(writer, "AUTO_ROWS_PER_S", 500)
    monkeypatch.setattr(receiver, "FLUSH_BATCH", 100)  # the receive thread asks every 100
    monkeypatch.setattr(chunks, "FLUSH_BATCH", 100)
    with Simulator("binance", rate=2000, count=2000, seed=14) as sim:
        c = rtkit.Collector("binance", SYMBOLS, url=sim.url, db=db, flush_interval_s=0.5)
        writes = local_writes(c, monkeypatch)
        c.start()
        try:
            wait_for(lambda: c.stats["sqlite_writer"] == "starting", 20)
            asked_at = len(writes)
            wait_for(lambda: c.stats["stored"] == 2000, 20)  # the interval still flushes
            assert not c.sink.in_child  # still held
            # the feed lasts a second: about one write per interval once the child was
            # asked for, not one per 100 ticks as the receive thread asked
            assert len(writes) - asked_at <= 6
        finally:
            held_child.touch()
            c.stop()
        assert stored_rows(db) == expected_rows(sim.trades)
    assert_accounted(c.stats)
