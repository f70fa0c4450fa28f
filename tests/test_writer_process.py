"""``writer="process"``: SQLite written by a child process of the collector's own, with
the same accounting, refusals, crash safety and lifecycle as the writer thread."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import rtkit
from rtkit.kinds.trades import TradeRows
from rtkit.pipeline_queue import Batch
from rtkit.runtime import chunks, receiver, writer_child
from rtkit.runtime.writer_process import ProcessSink
from rtkit.sim import Simulator
from rtkit.sinks import RunEnd, RunInfo
from rtkit.store import TickStore
from tests.conftest import wait_for
from tests.test_storage_faults import expected_rows, stored_rows

pytestmark = pytest.mark.usefixtures("no_thread_leak")
SYMBOLS = ["BTC-USDT", "ETH-USDT"]
RUN = RunInfo("test", "binance", SYMBOLS, "ws://127.0.0.1:1/ws")
T0 = 1_764_000_000_000_000_000


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
def taken_over(sink: ProcessSink) -> bool:
    """The child writes the flushes now (``check`` reads its answer when it has come; a
    collector's writer thread checks at every flush: read its ``in_child`` instead)."""
    return sink.check() is None and sink.in_child


def child_sink(db) -> ProcessSink:
    """A writer-process sink with the test run open, once its child has taken over."""
    sink = ProcessSink(db)
    sink.probe()
    sink.open(RUN)
    wait_for(lambda: taken_over(sink), 30)
    return sink


def ticks_in_entries(sizes: list[int], first_entry: int = 0) -> list[tuple[int, list]]:
    """The ring's ticks as a flush holds them: an entry (a chunk's frames) of each size."""
    return [(T0 + e, [("BTC-USDT", e * 10_000 + k, T0 + e * 10_000 + k, 100.0, 0.5, 0)
                      for k in range(size)])
            for e, size in enumerate(sizes, start=first_entry)]


def local_writes(c, monkeypatch) -> list:
    """An entry for each flush the collector's process writes itself, not its child."""
    writes: list = []
    here = c.sink.local.write
    monkeypatch.setattr(c.sink.local, "write", lambda *a: writes.append(1) or here(*a))
    return writes


def test_the_child_writes_once_it_has_taken_over_never_this_process(db, monkeypatch):
    with Simulator("binance", rate=2000, seed=2) as sim:
        c = rtkit.collect("binance", SYMBOLS, url=sim.url, db=db, flush_interval_s=0.1,
                          writer="process")
        wait_for(lambda: c.sink.in_child, 30)

        def not_here(*args, **kwargs):
            raise AssertionError("TickStore.write was called in the collector's process")

        monkeypatch.setattr(TickStore, "write", not_here)  # the child has its own
        pid, at_take_over = c.sink.pid, c.stats["ticks"]
        assert pid is not None and pid != os.getpid() and not gone(pid)
        wait_for(lambda: c.stats["stored"] > at_take_over + 1000, 20)
        c.stop()
        s = c.stats
        assert stored_rows(db) == expected_rows(list(sim.trades)[: s["ticks"]])
    assert c.status == "stopped" and s["flush_failures"] == 0 and s["pending"] == 0
    assert gone(pid) and c.sink.pid is None  # ended and reaped with the collector
    assert_accounted(s)
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT status FROM runs").fetchall() == [("stopped",)]


def test_until_the_child_is_up_this_process_writes_and_nothing_waits_for_it(db, held_child):
    with Simulator("binance", rate=2000, count=1000, seed=3) as sim:
        c = rtkit.collect("binance", SYMBOLS, url=sim.url, db=db, flush_interval_s=0.1,
                          writer="process")
        assert c.running
        wait_for(lambda: c.stats["stored"] == 1000, 20)  # the loss window stays the interval
        assert not c.sink.in_child and not gone(c.sink.pid)
        held_child.touch()
        wait_for(lambda: c.sink.in_child, 30)
        c.stop()
        assert stored_rows(db) == expected_rows(sim.trades)
    assert c.status == "stopped"
    assert_accounted(c.stats)
    with contextlib.closing(sqlite3.connect(db)) as conn:  # one run, finished by the child
        assert conn.execute("SELECT status FROM runs").fetchall() == [("stopped",)]


def test_while_the_child_starts_early_flushes_wait_for_it_up_to_the_interval(
        db, held_child, monkeypatch):
    monkeypatch.setattr(receiver, "FLUSH_BATCH", 100)  # the receive thread asks every 100
    monkeypatch.setattr(chunks, "FLUSH_BATCH", 100)
    with Simulator("binance", rate=2000, count=2000, seed=8) as sim:
        c = rtkit.Collector("binance", SYMBOLS, url=sim.url, db=db, flush_interval_s=0.5,
                            writer="process")
        writes = local_writes(c, monkeypatch)
        c.start()
        try:
            wait_for(lambda: c.stats["stored"] == 2000, 20)  # the interval still flushes
            assert not c.sink.in_child
            # about one write per interval over the second the feed lasts, not one per
            # 100 ticks (20) as the receive thread asked
            assert len(writes) <= 6
        finally:
            held_child.touch()
            c.stop()
        assert stored_rows(db) == expected_rows(sim.trades)
    assert_accounted(c.stats)


def test_stop_while_the_child_still_starts_does_not_wait_for_it(db, held_child):
    with Simulator("binance", rate=2000, count=600, seed=7) as sim:
        c = rtkit.collect("binance", SYMBOLS, url=sim.url, db=db, flush_interval_s=0.1,
                          writer="process")
        wait_for(lambda: c.stats["ticks"] == 600)
        pid = c.sink.pid
        t = time.monotonic()
        c.stop()
        took = time.monotonic() - t
    assert not c.running and c.status == "stopped" and took < 2.5
    assert gone(pid) and c.stats["stored"] == 600
    assert_accounted(c.stats)
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT status FROM runs").fetchall() == [("stopped",)]


def test_a_killed_writer_process_is_a_storage_error_then_a_new_one_writes_everything(db):
    with Simulator("binance", rate=2000, count=4000, seed=4) as sim:
        c = rtkit.collect("binance", SYMBOLS, url=sim.url, db=db, flush_interval_s=0.1,
                          writer="process")
        wait_for(lambda: c.sink.in_child, 30)
        first = c.sink.pid
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: c.stats["flush_failures"] > 0)
        assert "writer process was killed by signal 9" in c.last_error
        wait_for(lambda: c.stats["stored"] + c.stats["duplicates"] == 4000, 30)
        wait_for(lambda: c.sink.in_child, 30)  # a new child
        assert c.status == "live" and c.sink.pid not in (None, first)
        c.stop()
        assert stored_rows(db) == expected_rows(sim.trades)  # nothing lost, nothing doubled
    assert gone(first)
    assert_accounted(c.stats)
    with contextlib.closing(sqlite3.connect(db)) as conn:  # still one run
        assert conn.execute("SELECT status FROM runs").fetchall() == [("stopped",)]


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
            visible = flushed(db)
            proc.send_signal(signal.SIGKILL)
            assert proc.wait(5) == -signal.SIGKILL
            wait_for(lambda: gone(child), 10)  # not left behind, holding the database
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT count(*) FROM ticks").fetchone()[0] >= visible


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
def test_rows_the_child_refuses_are_handed_back_as_the_callers_own_rows(db, monkeypatch):
    monkeypatch.setattr(writer_child, "CHUNK_ROWS", 4096)
    ticks = [tick(i) for i in range(20_000)]  # several parts
    ticks[37] = tick(37, ts=2**63)  # does not fit an SQLite INTEGER
    ticks[9000] = tick(9000, ts="late")  # text in an INTEGER column
    rejects = [(T0, "binance", "malformed_json", "bad", "{", 2**64)]
    sink = child_sink(db)
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


def test_a_flush_travels_as_the_rings_ticks_in_one_message_or_in_parts(db, monkeypatch):
    """The trades go as the ring's ticks (``TradeRows``), made into rows by the child; a
    flush of a fast feed is one message (each pipe write gives the interpreter lock
    away, issue 17), a large one goes in parts, and a row refused in a later part is
    still named as the caller's own. A flush of a slower feed goes in small parts (each
    pickle holds the lock)."""
    from rtkit.sinks import sqlite as sqlite_sink

    monkeypatch.setattr(sqlite_sink, "SLOW_FEED_TICKS_PER_S", 0)  # every flush a fast feed's
    sent: list[tuple] = []
    send = writer_child.WriterChild.send
    monkeypatch.setattr(writer_child.WriterChild, "send",
                        lambda self, message: (sent.append(message), send(self, message)))
    frames = ticks_in_entries([10] * 700)  # 7,000 ticks, 10 a frame
    frames[650][1][3] = ("BTC-USDT", 6_500_003, 2**63, 100.0, 0.5, 0)  # too large for SQLite
    ticks = TradeRows("binance", frames)
    sink = child_sink(db)
    try:
        sent.clear()
        assert sink.write(Batch(TradeRows("binance", frames[:300]), [], []), []) == 3_000
        assert [m[0] for m in sent] == ["write"]  # one message
        assert isinstance(sent[0][2][0], TradeRows)  # the ring's ticks, not rows
        monkeypatch.setattr(writer_child, "CHUNK_ROWS", 1000)
        sent.clear()
        refused: list = []
        assert sink.write(Batch(ticks, [], []), refused) == 7_000 - 3_000 - 1
        assert len(sent) == 7 and sent[0][3] == 6  # 1,000 ticks a message
        assert all(isinstance(part, TradeRows) for _, part in sent[1:])
        assert [(table, row) for table, row, _ in refused] == [("ticks", ticks[6503])]
        assert refused[0][1] is ticks[6503]  # the caller's own row: set_aside finds it
        monkeypatch.setattr(sqlite_sink, "SLOW_FEED_TICKS_PER_S", 10**12)  # a slower feed's
        monkeypatch.setattr(writer_child, "SMALL_FLUSH_MESSAGE_ROWS", 100)
        sent.clear()
        more = ticks_in_entries([10] * 100, first_entry=700)  # 1,000 ticks
        assert sink.write(Batch(TradeRows("binance", more), [], []), []) == 1_000
        assert len(sent) == 10 and sent[0][3] == 9  # 100 ticks a message
    finally:
        sink.close()
    with TickStore(db, readonly=True) as store:
        assert store.count() == 7_999


def test_a_flush_of_uneven_entries_reaches_the_child_whole(db, monkeypatch):
    """The ring's ticks are queued a chunk of frames at a time, so a flush's entries hold
    from one tick to thousands. Parts cut by entry count put two small parts in the
    first message, the second in the place of the first: under load a 20k burst lost
    ~900 ticks, counted as duplicates (test_tls_reads)."""
    monkeypatch.setattr(writer_child, "CHUNK_ROWS", 1024)
    ticks = TradeRows("binance", ticks_in_entries([100, 100, 100, 2000, 5, 700, 700]))
    sink = child_sink(db)
    try:
        assert sink.write(Batch(ticks, [], []), []) == len(ticks) == 3705
    finally:
        sink.close()
    with TickStore(db, readonly=True) as store:
        assert store.count() == 3705


def test_a_parent_gone_in_the_middle_of_a_flush_leaves_none_of_it(db):
    """The first parts of a flush were inserted when the pipe ended: rolled back, and the
    child ends."""
    child = writer_child.WriterChild(db, TickStore)
    try:
        child.call(("open", RUN, None, None), 30)
        part = TradeRows("binance", [(T0, [("BTC-USDT", i, T0 + i, 100.0, 0.5, 0)
                                           for i in range(2_000)])])
        child.send(("write", [], [part, [], []], 2))  # two more parts announced,
        child.send((0, TradeRows("binance", [(T0, [("BTC-USDT", 5_000, T0, 100.0, 0.5, 0)])])))
        assert child.end(10) == 0  # one sent: the pipe ends before the last
    finally:
        child.end()
    with TickStore(db, readonly=True) as store:
        assert store.count() == 0


@pytest.mark.parametrize("trades, rejects", [(1, 0), (5_000, 1_500)],
                         ids=["one message", "in parts"])
def test_an_error_of_the_database_is_raised_in_the_caller_as_itself(
        db, monkeypatch, trades, rejects):
    """A locked database is the caller's refused write, and the same child takes the next.
    In parts: the child inserts the trades part by part as they arrive, and a write
    refused after the first still reads the parts behind it (the rejects' too), so the
    next call's answer is its own."""
    monkeypatch.setattr(writer_child, "CHUNK_ROWS", 1000)
    ticks = [tick(i) for i in range(trades)]
    bad = [(T0, "binance", "malformed_json", "bad", "{", 1)] * rejects  # parts after trades'
    sink = child_sink(db)
    blocker = sqlite3.connect(db, timeout=0)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(sqlite3.OperationalError, match="database is locked"):
            sink.write(Batch(ticks, bad, []), [])
        assert sink.is_open  # a refused write: the next try goes to the same child
    finally:
        blocker.rollback()
        blocker.close()
    try:
        assert sink.check() is None
        assert sink.write(Batch(ticks, bad, []), []) == trades
    finally:
        sink.close()
    with TickStore(db, readonly=True) as store:
        assert store.count() == trades
        assert len(store.rejects()) == rejects


def test_a_sink_whose_store_has_no_importable_name_is_refused_at_once(db):
    class LocalStore(TickStore):
        pass

    with pytest.raises(ValueError, match="top level"):
        ProcessSink(db, LocalStore)


def modules_of_a_child_that_wrote(db, tmp_path, monkeypatch, batch: Batch) -> set[str]:
    """The modules a writer process had loaded once it wrote ``batch`` and served its run."""
    loaded = tmp_path / "modules"  # written by the child when it has served its run
    monkeypatch.setattr(writer_child, "_CHILD_CODE", writer_child._CHILD_CODE + (
        f"\nimport sys\nopen({str(loaded)!r}, 'w').write(' '.join(sys.modules))"))
    sink = child_sink(db)
    try:
        inserted = sink.write(batch, [])
        assert inserted == len(batch.ticks)
        assert inserted.kinds == {name: len(rows) for name, rows in (batch.records or {}).items()}
    finally:
        sink.close(RunEnd(T0, "stopped", {}))
    wait_for(loaded.exists, 10)
    return set(loaded.read_text().split())


#: a quote, in the columns of rtkit.kinds.quotes.QUOTES
QUOTE = ("binance", "BTC-USDT", T0, T0 + 5, 100.0, 1.0, 100.5, 2.0, 0)


def test_the_writer_process_imports_neither_pandas_nor_the_package_init(db, tmp_path,
                                                                       monkeypatch):
    modules = modules_of_a_child_that_wrote(db, tmp_path, monkeypatch,
                                            Batch([tick(1), tick(2)], [], []))
    assert "rtkit.sinks.sqlite" in modules  # it did write
    # what made it slow to take over: pandas (through sqlite-utils and rtkit.store),
    # rtkit/__init__.py, which imports the collector and its ring, and sqlite-utils and
    # numpy, which a file that has its tables needs neither of
    assert not {"pandas", "rtkit.collector", "rtkit.buffer", "rtkit.frame", "sqlite_utils",
                "numpy"} & modules
    # nor what only receiving needs: the checks of a frame (their logging, statistics and
    # URL redaction) and the venues' adapters, ~18 ms of its start's CPU time
    assert not {"rtkit.validate", "rtkit.redact", "statistics", "rtkit.venues"} & modules
    with TickStore(db, readonly=True) as store:
        assert store.count() == 2 and list(store.runs()["status"]) == ["stopped"]


def test_a_writer_process_makes_a_table_the_file_lacks_through_sqlite_utils_not_pandas(
        db, tmp_path, monkeypatch):
    from rtkit.kinds.quotes import QUOTES

    assert len(QUOTE) == len(QUOTES.columns)
    modules = modules_of_a_child_that_wrote(db, tmp_path, monkeypatch,
                                            Batch([tick(1)], [], [], {"quotes": [QUOTE]}))
    assert "sqlite_utils" in modules and "pandas" not in modules
    with TickStore(db, readonly=True) as store:
        assert store.conn.execute("SELECT count(*) FROM quotes").fetchone() == (1,)


def test_the_first_flush_goes_to_the_child_as_soon_as_it_is_up(db, held_child, monkeypatch):
    monkeypatch.setattr(receiver, "FLUSH_BATCH", 10**9)  # no ask for a flush ...
    monkeypatch.setattr(chunks, "FLUSH_BATCH", 10**9)
    monkeypatch.setattr(chunks, "IDLE_FLUSH_MIN_TICKS", 10**9)
    with Simulator("binance", rate=2000, count=100_000, seed=9) as sim:  # ... nor a pause
        c = rtkit.Collector("binance", SYMBOLS, url=sim.url, db=db, flush_interval_s=60,
                            writer="process")
        local = local_writes(c, monkeypatch)
        c.start()
        try:
            wait_for(lambda: c.stats["ticks"] >= 200, 20)
            assert c.stats["stored"] == 0  # the child is held: nothing is written yet
            held_child.touch()
            # well before the 60 s interval: the writer thread saw the child come up
            wait_for(lambda: c.stats["stored"] >= 200, 20)
            assert c.sink.in_child and local == []
        finally:
            c.stop()
        assert stored_rows(db) == expected_rows(list(sim.trades)[: c.stats["ticks"]])
    assert_accounted(c.stats)


def test_ticks_that_came_while_the_child_wrote_a_flush_go_at_once(db, monkeypatch):
    from rtkit.runtime import writer

    monkeypatch.setattr(receiver, "FLUSH_BATCH", 10**9)  # no ask for a flush, at a pause
    monkeypatch.setattr(chunks, "FLUSH_BATCH", 10**9)  # of the feed or after so many ticks:
    monkeypatch.setattr(chunks, "IDLE_FLUSH_MIN_TICKS", 10**9)  # only the interval, a minute
    monkeypatch.setattr(writer, "BACK_TO_BACK_TICKS", 20)
    with Simulator("binance", rate=2000, count=100_000, seed=10) as sim:
        c = rtkit.Collector("binance", SYMBOLS, url=sim.url, db=db, flush_interval_s=60,
                            writer="process")
        flushes = []
        write = c.sink.write

        def slow_write(batch, refused):  # a child on a slow disk: ~100 ticks come meanwhile
            time.sleep(0.05)
            flushes.append(c.sink.in_child)
            return write(batch, refused)

        monkeypatch.setattr(c.sink, "write", slow_write)
        c.start()
        try:
            wait_for(lambda: c.sink.in_child and c.stats["stored"] > 0, 30)
            at = c.stats["ticks"]
            # the flushes follow one another while ticks come, a minute before the interval
            wait_for(lambda: c.stats["stored"] >= at + 1000, 20)
            assert flushes.count(True) >= 5
        finally:
            c.stop()
        assert stored_rows(db) == expected_rows(list(sim.trades)[: c.stats["ticks"]])
    assert_accounted(c.stats)


def test_a_store_type_that_asks_the_package_for_names_works_in_the_writer_process(db):
    from tests.process_store import PackageNamedStore

    sink = ProcessSink(db, PackageNamedStore)
    sink.probe()
    sink.open(RUN)
    wait_for(lambda: taken_over(sink), 30)  # its module did `rtkit.TickStore` in the child
    try:
        assert sink.write(Batch([tick(1)], [], []), []) == 1
    finally:
        sink.close()
    with TickStore(db, readonly=True) as store:
        assert store.count() == 1


def test_an_unknown_writer_is_refused_with_the_choices(db):
    with pytest.raises(ValueError, match="'auto', 'thread', 'process'"):
        rtkit.Collector("binance", SYMBOLS, db=db, writer="fork")


def test_the_thread_writer_never_starts_a_child(db):
    assert not isinstance(rtkit.Collector("binance", SYMBOLS, db=db, writer="thread").sink,
                          ProcessSink)


def test_a_file_moved_before_the_take_over_answers_is_opened_again_and_taken_over(
        tmp_path, held_child):
    db = tmp_path / "ticks.sqlite"
    sink = ProcessSink(db)
    sink.probe()
    sink.open(RUN)  # the child is asked to take over, and is held
    assert sink.write(Batch([tick(1)], [], []), []) == 1  # written here meanwhile
    db.rename(tmp_path / "aside.sqlite")
    with TickStore(db) as other:  # a new file, whose first run is another's
        other.start_run(name="other", venue="binance", symbols=SYMBOLS, url="", config={},
                        started_at=T0)
    assert "moved, replaced or deleted" in sink.check()
    sink.open(RUN)  # our run is the new file's second: the first take-over is stale
    held_child.touch()
    wait_for(lambda: taken_over(sink), 30)
    try:
        assert sink.write(Batch([tick(2), tick(3)], [], []), []) == 2  # in step with the child
        assert sink.check() is None
    finally:
        sink.close(RunEnd(T0, "stopped", {}))
    with TickStore(db, readonly=True) as store:
        assert store.count() == 2
        assert list(store.runs()["status"]) == ["running", "stopped"]  # ours finished


def test_a_take_over_refuses_a_file_replaced_since_the_run_opened(tmp_path):
    """The child takes the run over in the file the thread opened: a file replaced at the
    path meanwhile (a deleted folder made again) is refused, so the thread's own check
    notices and says so, rather than the child silently writing a new file."""
    from rtkit.sinks import SinkRefused
    from rtkit.sinks.sqlite import SQLiteSink

    db = tmp_path / "data" / "ticks.sqlite"
    db.parent.mkdir()
    thread_side = SQLiteSink(db)
    thread_side.open(RUN)
    identity, run_id = thread_side.identity, thread_side.run_id
    assert identity is not None
    thread_side.close()
    db.rename(db.with_name("moved.sqlite"))  # kept: its inode is not reused
    TickStore(db).close()  # another file at the same path
    child_side = SQLiteSink(db)
    with pytest.raises(SinkRefused, match="no longer the file the run was opened in"):
        child_side.open(RUN, run_id, identity)
    assert not child_side.is_open
    child_side.open(RUN, run_id, file_identity_of(db))  # the file it was opened in: taken
    child_side.close()


def file_identity_of(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino
