"""Review of the fast writer process start-up, the flushes that wait for a starting
child and the back-to-back flushes (commits 3c8ee89, 6f26d97, d713923)."""

from __future__ import annotations

import time

import pytest

import rtkit
from rtkit.kinds.quotes import QUOTES
from rtkit.kinds.sql import create_table
from rtkit.runtime import chunks, receiver, writer, writer_child
from rtkit.runtime.writer_process import ProcessSink
from rtkit.sim import Simulator
from rtkit.store import TickStore
from tests.conftest import wait_for
from tests.test_writer_process import (
    QUOTE,
    SYMBOLS,
    Batch,
    assert_accounted,
    modules_of_a_child_that_wrote,
    tick,
)

pytestmark = pytest.mark.usefixtures("no_thread_leak")


def test_a_writer_process_whose_file_has_the_kinds_table_imports_no_sqlite_utils(
        db, tmp_path, monkeypatch):
    """A quote (or book) feed is what turns fast and starts the child; its file has the
    table from the first run on. The child must not import sqlite-utils (and numpy with
    it, ~125 ms in its first flush) to make a table that is there."""
    with TickStore(db) as store:
        create_table(store.db, QUOTES)
    modules = modules_of_a_child_that_wrote(db, tmp_path, monkeypatch,
                                            Batch([tick(1)], [], [], {"quotes": [QUOTE]}))
    assert "rtkit.sinks.sqlite" in modules  # it did write
    assert not {"sqlite_utils", "numpy"} & modules


def test_a_table_a_kind_lacks_is_still_made_on_its_first_rows(db):
    with TickStore(db) as store:
        store.write([], records={"quotes": [QUOTE]})
        assert store.conn.execute("SELECT count(*) FROM quotes").fetchone() == (1,)


def _rate_while_collecting(db, monkeypatch, write_s: float = 0.0, **options) -> list[float]:
    """``ticks_per_s`` read a few times while a 2,000/s feed runs (each write taking
    ``write_s`` more)."""
    seen = []
    with Simulator("binance", rate=2000, count=100_000, seed=21) as sim:
        c = rtkit.Collector("binance", SYMBOLS, url=sim.url, db=db, **options)
        write = c.sink.write

        def slow_write(batch, refused):
            time.sleep(write_s)
            return write(batch, refused)

        monkeypatch.setattr(c.sink, "write", slow_write)
        c.start()
        try:
            wait_for(lambda: c.stats["stored"] >= 1000, 30)
            for _ in range(5):
                at = c.stats["ticks"]
                wait_for(lambda: c.stats["ticks"] >= at + 100, 20)  # noqa: B023
                seen.append(c.stats["ticks_per_s"])
        finally:
            c.stop()
        assert_accounted(c.stats)
    return seen


def test_the_rate_in_stats_is_not_zero_with_the_shortest_flush_interval(db, monkeypatch):
    """flush_interval_s=0.01 (its lowest): the 11 newest flushes span 0.1 s, and a rate
    over less than 0.2 s is shown as 0: a busy feed read 0 ticks a second."""
    assert min(_rate_while_collecting(db, monkeypatch, flush_interval_s=0.01,
                                      writer="thread")) > 0


def test_the_rate_in_stats_is_not_zero_while_flushes_go_back_to_back(db, monkeypatch):
    """Back-to-back flushes (here from 1 tick on, each ~5 ms, as a 250k/s burst has them
    from 4,096) come every few ms: the rate must still be measured over 0.2 s or more."""
    monkeypatch.setattr(writer, "BACK_TO_BACK_TICKS", 1)
    assert min(_rate_while_collecting(db, monkeypatch, write_s=0.005, flush_interval_s=1.0,
                                      writer="process")) > 0


def test_a_child_that_cannot_open_the_file_is_not_asked_a_hundred_times_a_second(
        db, monkeypatch):
    """A writer process that is up but whose every open fails (an error answer, not a
    death) is asked again at once: with the writer thread now looking every 10 ms
    whether it is up, that is an open of the file 100 times a second in the child, for
    as long as the run lasts, and early flushes wait an interval for ever."""
    from tests.review7_stores import ChildRefusedStore

    asked = []
    send = writer_child.WriterChild.send

    def counted(self, message):
        if message[0] == "open":
            asked.append(time.monotonic())
        return send(self, message)

    monkeypatch.setattr(writer_child.WriterChild, "send", counted)
    with Simulator("binance", rate=2000, count=100_000, seed=22) as sim:
        c = rtkit.Collector("binance", SYMBOLS, url=sim.url, db=db, flush_interval_s=1.0,
                            writer="process")
        c.sink = c.writer.sink = ProcessSink(db, ChildRefusedStore)
        c.start()
        try:
            wait_for(lambda: len(asked) >= 3, 30)  # the child is up and was refused
            at, n = time.monotonic(), len(asked)
            wait_for(lambda: c.stats["stored"] >= 2000, 20)
            time.sleep(0.5)  # the asks over half a second, however many
            rate = (len(asked) - n) / (time.monotonic() - at)
            assert rate < 20, f"{rate:.0f} asks a second"
            assert c.stats["sqlite_writer"] == "thread"  # as when it cannot start
        finally:
            c.stop()
        assert_accounted(c.stats)


def test_a_flush_that_would_wait_for_a_starting_child_does_not_let_ticks_overflow(
        db, held_child, monkeypatch):
    """While the child starts (slowly: a busy machine, a slow disk), an early flush waits
    up to the interval, so that its rows go to the child. Rows past ``pending_limit``
    are dropped meanwhile: waiting for the child must not cost ticks the thread (which
    "auto" wrote with until it asked) would have stored."""
    monkeypatch.setattr(writer, "AUTO_ROWS_PER_S", 500)  # the 2,000/s feed is fast
    monkeypatch.setattr(receiver, "FLUSH_BATCH", 200)  # the receive thread asks every 200
    monkeypatch.setattr(chunks, "FLUSH_BATCH", 200)
    with Simulator("binance", rate=2000, count=4000, seed=23) as sim:
        c = rtkit.Collector("binance", SYMBOLS, url=sim.url, db=db, flush_interval_s=3.0,
                            pending_limit=1500)
        c.start()
        try:
            wait_for(lambda: c.stats["sqlite_writer"] == "starting", 20)
            wait_for(lambda: c.stats["ticks"] == 4000, 20)
            wait_for(lambda: c.stats["pending"] == 0, 20)
            assert c.stats["dropped_overflow"] == 0
        finally:
            held_child.touch()
            c.stop()
        assert_accounted(c.stats)


def test_with_a_lake_flushes_keep_to_the_interval_while_the_child_writes(
        db, tmp_path, monkeypatch):
    """Unlike tests/test_writer_process.py::test_ticks_that_came_while_the_child_wrote_a_
    flush_go_at_once: with lake= each flush writes a Parquet file per partition, so they
    do not follow one another (Fanout does not say its SQLite sink's child writes)."""
    monkeypatch.setattr(receiver, "FLUSH_BATCH", 10**9)  # only the interval, a minute
    monkeypatch.setattr(chunks, "FLUSH_BATCH", 10**9)
    monkeypatch.setattr(chunks, "IDLE_FLUSH_MIN_TICKS", 10**9)
    monkeypatch.setattr(writer, "BACK_TO_BACK_TICKS", 20)
    with Simulator("binance", rate=2000, count=100_000, seed=24) as sim:
        c = rtkit.Collector("binance", SYMBOLS, url=sim.url, db=db, flush_interval_s=60,
                            writer="process", lake=tmp_path / "lake")
        flushes = []
        write = c.sink.write

        def slow_write(batch, refused):  # ~100 ticks come meanwhile
            time.sleep(0.05)
            flushes.append(c.stats["sqlite_writer"])
            return write(batch, refused)

        monkeypatch.setattr(c.sink, "write", slow_write)
        c.start()
        try:
            wait_for(lambda: "process" in flushes, 30)  # the first flush once it was up
            at = c.stats["ticks"]
            wait_for(lambda: c.stats["ticks"] >= at + 1000, 20)  # half a second of feed
            assert flushes.count("process") == 1  # no other until the interval
        finally:
            c.stop()
        assert_accounted(c.stats)
