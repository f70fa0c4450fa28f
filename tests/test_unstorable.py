"""A row SQLite cannot store (an int beyond 64 bits, a lone surrogate, a wrong type) is
set aside and counted; the rest of its flush is written and collection goes on."""

from __future__ import annotations

import contextlib
import sqlite3
import time

import pytest

import rtkit
from rtkit.sim import Simulator
from rtkit.store import TickStore
from tests.conftest import wait_for

T0 = 1_764_000_000_000_000_000
SYMBOLS = ["BTC-USDT", "ETH-USDT"]


def tick(i, ts=None):
    return ("binance", "BTC-USDT", str(i), T0 + i if ts is None else ts, T0, 100.0, 0.5, "buy")


def reject(i, size=10, detail="bad"):
    return (T0 + i, "binance", "malformed_json", detail, "{", size)


def gap(i, missing=1):
    return ("binance", "BTC-USDT", str(i), str(i), missing, T0, "gap")


def test_write_sets_aside_the_rows_sqlite_refuses_and_writes_the_rest(db):
    ticks = [tick(i) for i in range(100)]
    ticks[37] = tick(37, ts=2**63)  # does not fit an SQLite INTEGER
    ticks[80] = tick(80, ts="late")  # STRICT: text in an INTEGER column
    rejects = [reject(1), reject(2, size=2**63), reject(3, detail="\ud800")]
    gaps = [gap(1), gap(2, missing=2**64), gap(3)]
    refused = []
    with TickStore(db) as store:
        assert store.write(ticks, rejects, gaps, refused=refused) == 98
        assert store.count() == 98
        assert store.conn.execute("SELECT frame_bytes FROM rejects").fetchall() == [(10,)]
        assert store.conn.execute("SELECT count(*) FROM gaps").fetchone() == (2,)
    assert sorted((table, row[2] if table == "ticks" else row[0]) for table, row, _ in refused) \
        == [("gaps", "binance"), ("rejects", T0 + 2), ("rejects", T0 + 3), ("ticks", "37"),
            ("ticks", "80")]
    assert any("OverflowError" in error for _, _, error in refused)


def test_without_a_refused_list_a_bad_row_still_fails_the_whole_write(db):
    with TickStore(db) as store:
        with pytest.raises(OverflowError):
            store.write([tick(1), tick(2, ts=2**63)])
        assert store.count() == 0


def test_a_locked_database_still_fails_the_whole_write_with_nothing_set_aside(db):
    TickStore(db).close()
    blocker = sqlite3.connect(db, timeout=0)
    blocker.execute("BEGIN EXCLUSIVE")
    refused = []
    try:
        with TickStore(db, busy_timeout_s=0.05) as store, \
                pytest.raises(sqlite3.OperationalError, match="locked"):
            store.write([tick(1), tick(2, ts=2**63)], refused=refused)
    finally:
        blocker.rollback()
        blocker.close()
    assert refused == []


@pytest.mark.usefixtures("no_thread_leak")
def test_a_frame_too_large_to_count_does_not_stop_every_later_write(db, caplog):
    """The issue's case: a ``frame_too_large`` reject of 2^63 bytes, plus a tick and a
    gap SQLite cannot store, in one flush with good rows of every table."""
    with Simulator("binance", rate=2000, count=2000, seed=5) as sim:
        c = rtkit.collect("binance", SYMBOLS, url=sim.url, db=db, flush_interval_s=0.1)
        try:
            wait_for(lambda: c.stats["stored"] == 2000)  # all in: the receive thread idles
            p = c.pipeline
            now = time.time_ns()
            p.reject_oversized(b'{"e":"trade"', 2**63, now)
            p.reject_oversized(b'{"e":"trade"', 5_000_000, now)
            with p._lock:  # a bad and a good row of each table
                p._ticks.append((now, [("BTC-USDT", 10**9, 2**64, 1.0, 1.0, 0),
                                       ("BTC-USDT", 10**9 + 1, now, 1.0, 1.0, 0)]))
                p._gaps += [("binance", "BTC-USDT", "1", "2", 2**63, now, "gap"),
                            ("binance", "BTC-USDT", "3", "4", 2, now, "gap")]
                p.ticks += 2
                p.queued += 2
            c._flush_now.set()
            wait_for(lambda: c.stats["stored"] == 2001)
            s = c.stats
            assert (s["unstorable"], s["rejects_unstorable"], s["gaps_unstorable"]) == (1, 1, 1)
            assert s["pending"] == 0 and s["rejects_pending"] == 0
            assert c.status == "live" and s["flush_failures"] == 0
        finally:
            c.stop()
    assert c.status == "stopped"
    s = c.stats
    assert s["frames"] == s["tick_frames"] + s["control"] + s["rejected_frames"]
    assert s["ticks"] == s["stored"] + s["duplicates"] + s["pending"] + s["dropped_overflow"] \
        + s["unstorable"]
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT count(*) FROM ticks").fetchone() == (2001,)
        assert conn.execute("SELECT frame_bytes FROM rejects").fetchall() == [(5_000_000,)]
        assert conn.execute("SELECT missing FROM gaps WHERE kind = 'gap'").fetchall() == [(2,)]
        assert conn.execute("SELECT status FROM runs").fetchall() == [("stopped",)]
    refusals = [m for m in caplog.messages if "SQLite refused a row" in m]
    assert len(refusals) == 3 and any("'rejects'" in m and "OverflowError" in m for m in refusals)


def test_a_replay_sets_aside_what_sqlite_cannot_store_and_stores_the_rest(tmp_path, db,
                                                                          monkeypatch):
    """The recording reader refuses sizes beyond int64 itself (a counted bad line, see
    test_recording_hardening); with that check lifted, the writer still sets such a row
    aside instead of failing the replay: the two defences hold one without the other."""
    from rtkit import recording
    from rtkit.recording import RecordingWriter

    path = tmp_path / "hostile.jsonl"
    w = RecordingWriter(path)
    w.too_large(5, "binance", b'{"e":"trade"', 2**63)  # recorded before the reader checked it
    w.too_large(6, "binance", b'{"e":"trade"', 9_000_000)
    w.close()
    s = rtkit.replay(path, db=db)  # the reader's own check: a counted bad line
    assert s["rejected"] == 2 and s["bad_lines"] == 1 and s["rejects_unstorable"] == 0
    monkeypatch.setattr(recording, "MAX_INT64", 2**64)
    db2 = tmp_path / "second.sqlite"
    s = rtkit.replay(path, db=db2)  # past the reader: SQLite refuses the row, the rest stays
    assert s["rejected"] == 2 and s["rejects_unstorable"] == 1 and s["rejects_pending"] == 0
    with contextlib.closing(sqlite3.connect(db2)) as conn:
        assert conn.execute("SELECT frame_bytes FROM rejects").fetchall() == [(9_000_000,)]
