"""A slow feed's flush is written in small parts, so that the receive thread never waits
long for the interpreter lock (the receive → ``.df`` p99, issue 17); a fast feed's in
large statements, whatever their size. Timing is ``python -m benchmarks.writer_holds``;
these check the parts, and that nothing else changes: the rows, the counts, the refused
rows."""

from __future__ import annotations

import time

import pytest

from rtkit import store as store_module
from rtkit.kinds.trades import TradeRows
from rtkit.sinks import RunInfo
from rtkit.sinks import sqlite as sqlite_sink
from rtkit.sinks.sqlite import SQLiteSink
from rtkit.store import TickStore

T0 = 1_764_000_000_000_000_000
RUN = RunInfo("test", "binance", ["BTC-USDT"], "ws://127.0.0.1:1/ws")


def trade_rows(n: int, per_frame: int = 1, bad: int | None = None) -> TradeRows:
    """``n`` ticks, ``per_frame`` a frame; tick ``bad`` has a timestamp SQLite refuses."""
    frames = []
    for f in range(n // per_frame):
        ticks = []
        for k in range(per_frame):
            i = f * per_frame + k
            ticks.append(("BTC-USDT", 1000 + i, 2**63 if i == bad else T0 + i, 100.0 + i,
                          0.5, i % 2))
        frames.append((T0 + f * 10, ticks))
    return TradeRows("binance", frames)


@pytest.fixture
def slow_feed(monkeypatch):
    """Every flush as a slow feed's: its trades came slower than the threshold."""
    monkeypatch.setattr(sqlite_sink, "SLOW_FEED_TICKS_PER_S", 10**12)


@pytest.fixture
def sink(db):
    sink = SQLiteSink(db)
    sink.open(RUN)
    yield sink
    sink.close()


@pytest.fixture
def inserts(monkeypatch) -> list[int]:
    """How many rows each ``insert_many`` of the store got."""
    sizes: list[int] = []
    insert_many = store_module.insert_many
    monkeypatch.setattr(store_module, "insert_many",
                        lambda conn, sql, rows: (sizes.append(len(rows)),
                                                 insert_many(conn, sql, rows)))
    return sizes


def test_a_slow_feeds_flush_goes_in_parts_and_is_stored_whole(sink, db, inserts, slow_feed,
                                                               monkeypatch):
    monkeypatch.setattr(sqlite_sink, "SMALL_FLUSH_PART_ROWS", 500)
    ticks = trade_rows(3000)
    assert sink.write((ticks, [], [], None), []) == 3000
    assert inserts == [500] * 6
    with TickStore(db, readonly=True) as store:
        assert store.count() == 3000
        got = store.conn.execute("SELECT trade_id, timestamp, price, side FROM ticks "
                                 "ORDER BY timestamp").fetchall()
    assert got == [(str(1000 + i), T0 + i, 100.0 + i, "sell" if i % 2 else "buy")
                   for i in range(3000)]


def test_frames_of_many_trades_stay_whole_in_a_part(sink, inserts, slow_feed, monkeypatch):
    monkeypatch.setattr(sqlite_sink, "SMALL_FLUSH_PART_ROWS", 500)
    assert sink.write((trade_rows(3000, per_frame=100), [], [], None), []) == 3000
    assert inserts == [500] * 6  # five frames a part


def test_a_fast_feeds_flush_goes_in_one_go_however_small(sink, inserts, monkeypatch):
    monkeypatch.setattr(sqlite_sink, "SMALL_FLUSH_PART_ROWS", 500)
    monkeypatch.setattr(sqlite_sink, "SLOW_FEED_TICKS_PER_S", 1_000)
    first = trade_rows(3000)
    more = TradeRows("binance", [(T0 + 10**9 + i, [("BTC-USDT", 10**6 + i, T0 + i, 1.0, 1.0, 0)])
                                 for i in range(3000)])
    # 3,000 trades since the last flush 0.1 s ago: 30k a second, fast (however loaded the
    # machine: it stays fast for 3 s)
    sink.pace._at = time.monotonic() - 0.1
    assert sink.write((first, [], [], None), []) == 3000
    assert inserts == [3000]
    sink.pace._at = time.monotonic() - 10.0  # 3,000 more in 10 s: 300 a second, slow
    assert sink.write((more, [], [], None), []) == 3000
    assert inserts == [3000, *[500] * 6]


def test_a_refused_row_in_a_later_part_is_the_callers_own(sink, db, slow_feed, monkeypatch):
    monkeypatch.setattr(sqlite_sink, "SMALL_FLUSH_PART_ROWS", 500)
    ticks = trade_rows(3000, bad=2100)
    refused: list = []
    assert sink.write((ticks, [], [], None), refused) == 2999
    assert [(table, row) for table, row, _ in refused] == [("ticks", ticks[2100])]
    assert refused[0][1] is ticks[2100]  # the pipeline sets it aside by identity
    with TickStore(db, readonly=True) as store:
        assert store.count() == 2999


def test_rows_made_in_parts_are_the_rows_themselves():
    ticks = trade_rows(1000, per_frame=10)
    parts = list(ticks.in_parts(300))
    assert [len(part) for part in parts] == [300, 300, 300, 100]
    made = [row for part in parts for row in part]
    assert all(a is b for a, b in zip(made, ticks.rows(), strict=True))
    again = [row for part in ticks.in_parts(400) for row in part]  # made already: sliced
    assert all(a is b for a, b in zip(again, ticks.rows(), strict=True))


def test_a_store_type_with_its_own_write_gets_the_rows_as_before(db, monkeypatch):
    seen: list = []

    class OwnWrite(TickStore):
        def write(self, ticks=(), *args, **kwargs):
            seen.append(type(ticks))
            return super().write(ticks, *args, **kwargs)

    sink = SQLiteSink(db, OwnWrite)
    sink.open(RUN)
    try:
        assert sink.write((trade_rows(100), [], [], None), []) == 100
    finally:
        sink.close()
    assert seen == [TradeRows]
