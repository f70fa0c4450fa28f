"""``writer="process"``: SQLite written by a child process of the collector's own, with
the same accounting, refusals, crash safety and lifecycle as the writer thread."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import rtkit
from rtkit.pipeline_queue import Batch
from rtkit.runtime import writer_process
from rtkit.runtime.writer_process import ProcessSink
from rtkit.sim import Simulator
from rtkit.sinks import RunInfo
from rtkit.store import TickStore
from tests.conftest import wait_for

pytestmark = pytest.mark.usefixtures("no_thread_leak")
SYMBOLS = ["BTC-USDT", "ETH-USDT"]
RUN = RunInfo("test", "binance", SYMBOLS, "ws://127.0.0.1:1/ws")
T0 = 1_764_000_000_000_000_000


def stored_rows(db) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return sorted(conn.execute(
            "SELECT symbol, trade_id, timestamp, price, volume, side FROM ticks").fetchall())


def expected_rows(trades) -> list[tuple]:
    return sorted((t.symbol, str(t.trade_id), t.ts_ns, float(t.price), float(t.volume), t.side)
                  for t in trades)


def assert_accounted(s: dict) -> None:
    assert s["frames"] == s["tick_frames"] + s["control"] + s["rejected_frames"]
    assert s["ticks"] == (s["stored"] + s["duplicates"] + s["pending"] + s["dropped_overflow"]
                          + s["unstorable"])


def gone(pid: int) -> bool:
    """The process has ended (a zombie nobody reaped yet counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


def tick(i, ts=None):
    return ("binance", "BTC-USDT", str(i), T0 + i if ts is None else ts, T0, 100.0, 0.5, "buy")


# --- the collector ----------------------------------------------------------------------------
def test_every_tick_is_written_by_a_child_process_never_by_this_one(db, monkeypatch):
    def not_here(*args, **kwargs):
        raise AssertionError("TickStore.write was called in the collector's process")

    monkeypatch.setattr(TickStore, "write", not_here)  # the child has its own, unpatched
    with Simulator("binance", rate=4000, count=3000, seed=2) as sim:
        c = rtkit.collect("binance", SYMBOLS, url=sim.url, db=db, flush_interval_s=0.1,
                          writer="process")
        wait_for(lambda: c.stats["stored"] == 3000, 20)
        pid = c.sink.pid
        assert pid is not None and pid != os.getpid() and not gone(pid)
        c.stop()
        assert stored_rows(db) == expected_rows(sim.trades)
    assert c.status == "stopped" and c.stats["flush_failures"] == 0
    assert gone(pid) and c.sink.pid is None  # ended and reaped with the collector
    assert_accounted(c.stats)
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT status FROM runs").fetchall() == [("stopped",)]


def test_start_returns_before_the_writer_process_is_up(db, monkeypatch):
    release = threading.Event()
    original = ProcessSink._start

    def slow_start(self):
        release.wait(10)  # a child that takes its time to start (imports on a busy machine)
        original(self)

    monkeypatch.setattr(ProcessSink, "_start", slow_start)
    with Simulator("binance", rate=2000, count=500, seed=3) as sim:
        c = rtkit.Collector("binance", SYMBOLS, url=sim.url, db=db, writer="process")
        try:
            c.start()  # returns although the child has not even been started
            assert c.running and not c.sink.is_open
            wait_for(lambda: c.stats["ticks"] == 500)  # receiving does not wait for it either
            assert c.stats["stored"] == 0 and c.stats["pending"] == 500
        finally:
            release.set()
        wait_for(lambda: c.stats["stored"] == 500, 20)
        c.stop()
    assert c.status == "stopped"


def test_a_killed_writer_process_is_a_storage_error_then_a_new_one_writes_everything(db):
    with Simulator("binance", rate=2000, count=4000, seed=4) as sim:
        c = rtkit.collect("binance", SYMBOLS, url=sim.url, db=db, flush_interval_s=0.1,
                          writer="process")
        wait_for(lambda: c.stats["stored"] > 0, 20)
        first = c.sink.pid
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: c.stats["flush_failures"] > 0)
        assert "writer process was killed by signal 9" in c.last_error
        wait_for(lambda: c.stats["stored"] + c.stats["duplicates"] == 4000, 30)
        assert c.status == "live" and c.sink.pid not in (None, first)
        c.stop()
        assert stored_rows(db) == expected_rows(sim.trades)  # nothing lost, nothing doubled
    assert gone(first)
    assert_accounted(c.stats)


def test_a_locked_database_is_a_storage_error_as_with_the_thread(db):
    TickStore(db).close()
    blocker = sqlite3.connect(db, timeout=0)
    blocker.execute("BEGIN EXCLUSIVE")
    with Simulator("binance", rate=2000, count=1500, seed=5) as sim:
        try:
            c = rtkit.collect("binance", SYMBOLS, url=sim.url, db=db, flush_interval_s=0.1,
                              writer="process")
            wait_for(lambda: c.status == "storage_error" and c.stats["ticks"] > 0, 20)
            assert "database is locked" in c.status.reason
        finally:
            blocker.rollback()
            blocker.close()
        wait_for(lambda: c.stats["stored"] == 1500, 20)
        assert c.status == "live"
        c.stop()
        assert stored_rows(db) == expected_rows(sim.trades)
    assert_accounted(c.stats)


def test_the_writer_process_ends_when_the_collectors_process_is_killed(tmp_path):
    db = tmp_path / "ticks.sqlite"
    with Simulator("binance", rate=2000, seed=6) as sim:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rtkit", "collect", "binance", "BTC-USDT", "--url", sim.url,
             "--db", str(db), "--flush-interval", "0.2", "--writer", "process"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: children(proc.pid), 30)
            (child,) = children(proc.pid)
            wait_for(lambda: flushed(db) > 0, 30)
            proc.send_signal(signal.SIGKILL)
            assert proc.wait(5) == -signal.SIGKILL
            wait_for(lambda: gone(child), 10)  # not left behind, holding the database
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT count(*) FROM ticks").fetchone()[0] > 0


def children(pid: int) -> list[int]:
    """The live child processes of ``pid``, started by any of its threads (Linux)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return [c for c in found if not gone(c)]


def flushed(db) -> int:
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            return conn.execute("SELECT count(*) FROM ticks").fetchone()[0]
    except sqlite3.Error:
        return 0


# --- the sink --------------------------------------------------------------------------------
def test_rows_the_child_refuses_are_handed_back_as_the_callers_own_rows(db):
    ticks = [tick(i) for i in range(20_000)]  # several chunks
    ticks[37] = tick(37, ts=2**63)  # does not fit an SQLite INTEGER
    ticks[9000] = tick(9000, ts="late")  # text in an INTEGER column
    rejects = [(T0, "binance", "malformed_json", "bad", "{", 2**64)]
    sink = ProcessSink(db)
    sink.probe()
    sink.open(RUN)
    try:
        refused: list = []
        inserted = sink.write(Batch(ticks, rejects, []), refused)
        assert inserted == 19_998 and inserted.kinds == {}
        assert sorted((table, id(row)) for table, row, _ in refused) == sorted(
            [("ticks", id(ticks[37])), ("ticks", id(ticks[9000])), ("rejects", id(rejects[0]))])
        assert any("OverflowError" in error for _, _, error in refused)
        assert sink.write(Batch(ticks[:10], [], []), []) == 0  # stored already: duplicates
    finally:
        sink.close()
    with TickStore(db, readonly=True) as store:
        assert store.count() == 19_998


def test_an_error_of_the_database_is_raised_in_the_caller_as_itself(db):
    sink = ProcessSink(db)
    sink.probe()
    sink.open(RUN)
    blocker = sqlite3.connect(db, timeout=0)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(sqlite3.OperationalError, match="database is locked"):
            sink.write(Batch([tick(1)], [], []), [])
        assert sink.is_open  # a refused write: the next try goes to the same child
    finally:
        blocker.rollback()
        blocker.close()
    try:
        assert sink.write(Batch([tick(1)], [], []), []) == 1
    finally:
        sink.close()


def test_a_sink_whose_store_has_no_importable_name_is_refused_at_once(db):
    class LocalStore(TickStore):
        pass

    with pytest.raises(ValueError, match="top level"):
        ProcessSink(db, LocalStore)


def test_an_unknown_writer_is_refused_with_the_choices(db):
    with pytest.raises(ValueError, match="'thread', 'process'"):
        rtkit.Collector("binance", SYMBOLS, db=db, writer="fork")


def test_the_default_writer_is_the_thread(db):
    assert writer_process.DEFAULT_WRITER == "thread"
    assert not isinstance(rtkit.Collector("binance", SYMBOLS, db=db).sink, ProcessSink)


def test_stop_right_after_start_ends_the_child_within_the_bound(db):
    with Simulator("binance", rate=2000, count=20_000, seed=7) as sim:
        c = rtkit.collect("binance", SYMBOLS, url=sim.url, db=db, writer="process")
        t = time.monotonic()
        c.stop()  # the child may still be starting: the ticks received wait for it
        took = time.monotonic() - t
        wait_for(lambda: not c.running, 10)
    assert took < 2.5
    assert c.sink.pid is None and c.stats["pending"] == 0
    assert_accounted(c.stats)
