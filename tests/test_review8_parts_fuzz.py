"""Review 8: a flush's trades cut into parts (the thread's ``TradeRows.in_parts``, the
writer process's messages) against the promise: every tick stored, or a duplicate only if
SQLite had its key, or refused and named as the caller's own row; never lost, never
counted twice. Random flushes (fixed seed, bounded), slow and fast feeds, both writers."""

from __future__ import annotations

import random
from itertools import zip_longest

import pytest

from rtkit.kinds.trades import TradeRows, stored_rows
from rtkit.pipeline_queue import Batch
from rtkit.runtime import writer_child
from rtkit.runtime.writer_process import ProcessSink
from rtkit.sinks import RunInfo
from rtkit.sinks import sqlite as sqlite_sink
from rtkit.sinks.sqlite import SQLiteSink
from rtkit.store import TickStore
from tests.conftest import wait_for

pytestmark = pytest.mark.usefixtures("no_thread_leak")
RUN = RunInfo("test", "binance", ["BTC-USDT"], "ws://127.0.0.1:1/ws")
T0 = 1_764_000_000_000_000_000
SIZES = (0, 1, 1, 2, 3, 7, 50, 300, 511, 512, 513, 1000, 1024, 1025, 2500, 5000)


def random_flush(rng: random.Random, known: list[int], next_id: list[int]):
    """A flush: entries of random sizes, some duplicates of earlier keys, some rows SQLite
    refuses (a timestamp beyond 64 bits), and a few reject rows, one refused."""
    frames, refused_ids = [], set()
    for e in range(rng.randint(0, 6)):
        ticks = []
        for _ in range(rng.choice(SIZES)):
            if known and rng.random() < 0.1:
                tid = rng.choice(known)
                ts = T0 + tid
            else:
                tid, next_id[0] = next_id[0], next_id[0] + 1
                ts = T0 + tid
                if rng.random() < 0.002:
                    ts = 2**63  # SQLite refuses it; its key is never stored
                    refused_ids.add(tid)
            ticks.append(("BTC-USDT", tid, ts, 100.0, 0.5, tid % 2))
        frames.append((T0 + e, ticks))
    rejects = [(T0, "binance", "malformed_json", "bad", "{", 2**64 if rng.random() < 0.3 else 1)
               for _ in range(rng.choice((0, 0, 1, 3, 1500)))]
    return TradeRows("binance", frames), rejects, refused_ids


def check_flushes(sink, db, seed: int, flushes: int) -> None:
    rng = random.Random(seed)
    known: list[int] = []
    stored: set[int] = set()
    next_id = [1]
    for _ in range(flushes):
        ticks, rejects, refused_ids = random_flush(rng, known, next_id)
        batch = Batch(ticks, rejects, [])
        refused: list = []
        inserted = sink.write(batch, refused)
        rows = batch.ticks.rows()
        keys = [int(r[2]) for r in rows]
        new = {k for k in keys if k not in stored and k not in refused_ids}
        refused_ticks = [row for table, row, _ in refused if table == "ticks"]
        refused_rejects = [row for table, row, _ in refused if table == "rejects"]
        # refused rows are the caller's own objects (pipeline.set_aside finds them by id)
        assert all(any(r is row for r in rows) for row in refused_ticks)
        assert all(any(r is row for r in rejects) for row in refused_rejects)
        assert sorted(int(r[2]) for r in refused_ticks) == sorted(
            k for k in keys if k in refused_ids)
        assert len(refused_rejects) == sum(1 for r in rejects if r[5] == 2**64)
        assert int(inserted) == len(new)
        duplicates = len(rows) - len(refused_ticks) - int(inserted)
        assert duplicates == sum(1 for k in keys if k not in refused_ids) - len(new)
        stored |= new
        known += [k for k in new]
    with TickStore(db, readonly=True) as store:
        assert store.count() == len(stored)


@pytest.mark.parametrize("pace", [0, 10**12], ids=["fast", "slow"])
def test_random_flushes_in_parts_through_the_writer_thread(db, monkeypatch, pace):
    monkeypatch.setattr(sqlite_sink, "SLOW_FEED_TICKS_PER_S", pace)
    monkeypatch.setattr(sqlite_sink, "SMALL_FLUSH_PART_ROWS", 37)
    sink = SQLiteSink(db)
    sink.open(RUN)
    try:
        check_flushes(sink, db, seed=8, flushes=40)
    finally:
        sink.close()


@pytest.mark.parametrize("pace", [0, 10**12], ids=["fast", "slow"])
def test_random_flushes_in_parts_through_the_writer_process(db, monkeypatch, pace):
    monkeypatch.setattr(sqlite_sink, "SLOW_FEED_TICKS_PER_S", pace)
    monkeypatch.setattr(writer_child, "CHUNK_ROWS", 700)
    monkeypatch.setattr(writer_child, "SMALL_FLUSH_MESSAGE_ROWS", 97)
    sink = ProcessSink(db)
    sink.probe()
    sink.open(RUN)
    wait_for(lambda: sink.check() is None and sink.in_child, 30)
    try:
        check_flushes(sink, db, seed=18, flushes=40)
    finally:
        sink.close()


@pytest.mark.parametrize("same_batch", [True, False], ids=["same_rows", "given_back"])
def test_a_database_error_in_a_later_part_then_the_retry_writes_and_counts_every_row(
        db, monkeypatch, same_batch):
    """A write that fails in its third part (the database, not a row) leaves nothing; the
    retry, of the same TradeRows or of the frames given back, writes every row once and
    names its refused row as the batch's own."""
    import sqlite3

    from rtkit import store as store_module

    monkeypatch.setattr(sqlite_sink, "SLOW_FEED_TICKS_PER_S", 10**12)
    monkeypatch.setattr(sqlite_sink, "SMALL_FLUSH_PART_ROWS", 100)
    calls = [0]
    insert_many = store_module.insert_many

    def failing(conn, sql, rows):
        calls[0] += 1
        if calls[0] == 3:
            raise sqlite3.OperationalError("disk I/O error")
        return insert_many(conn, sql, rows)

    monkeypatch.setattr(store_module, "insert_many", failing)
    frames = [(T0 + f, [("BTC-USDT", f * 10 + k, 2**63 if f * 10 + k == 777 else T0 + f * 10 + k,
                         100.0, 0.5, 0) for k in range(10)]) for f in range(100)]
    sink = SQLiteSink(db)
    sink.open(RUN)
    try:
        first = TradeRows("binance", frames)
        with pytest.raises(sqlite3.OperationalError):
            sink.write(Batch(first, [], []), [])
        batch = Batch(first if same_batch else TradeRows("binance", list(frames)), [], [])
        refused: list = []
        assert sink.write(batch, refused) == 999
        assert [row for _, row, _ in refused] == [batch.ticks[777]]
        assert refused[0][1] is batch.ticks[777]
    finally:
        sink.close()
    with TickStore(db, readonly=True) as store:
        assert store.count() == 999


def test_the_writer_processs_feed_pace_starts_at_open_as_the_threads_does(db, monkeypatch):
    """A sink made long before its run opens (a collector made in one cell, started in a
    later one) measured its first flush's pace from when it was made: a fast feed's first
    flush, after the take-over, went in small messages. SQLiteSink restarts at open."""
    import time

    monkeypatch.setattr(sqlite_sink, "SLOW_FEED_TICKS_PER_S", 1_000)
    monkeypatch.setattr(writer_child, "CHUNK_ROWS", 1 << 15)
    monkeypatch.setattr(writer_child, "SMALL_FLUSH_MESSAGE_ROWS", 1024)
    sent: list = []
    send = writer_child.WriterChild.send
    monkeypatch.setattr(writer_child.WriterChild, "send",
                        lambda self, message: (sent.append(message), send(self, message)))
    sink = ProcessSink(db)
    sink._pace._at = time.monotonic() - 3600  # made an hour before the run opens
    sink.probe()
    sink.open(RUN)
    wait_for(lambda: sink.check() is None and sink.in_child, 15)
    frames = [(T0 + f, [("BTC-USDT", f * 10 + k, T0 + f * 10 + k, 100.0, 0.5, 0)
                        for k in range(10)]) for f in range(2_000)]  # 20k trades since open
    try:
        sent.clear()
        assert sink.write(Batch(TradeRows("binance", frames), [], []), []) == 20_000
        assert len(sent) == 1  # a fast feed's flush: one message
    finally:
        sink.close()


def test_rows_read_while_parts_are_made_stay_the_rows_the_parts_hold():
    frames = [(T0 + f, [("BTC-USDT", f, T0 + f, 100.0, 0.5, 0)]) for f in range(10)]
    ticks = TradeRows("binance", frames)
    parts = ticks.in_parts(3)
    first = next(parts)
    read_meanwhile = ticks.rows()
    rest = [row for part in parts for row in part]
    assert read_meanwhile[0] is first[0]
    assert ticks.rows() is read_meanwhile and ticks.rows()[-1] is rest[-1]


@pytest.mark.parametrize("writer", ["thread", "process"])
def test_a_slow_flush_of_trades_rejects_and_gaps_in_small_parts_stores_every_list(
        db, monkeypatch, writer):
    """Several lists, each of several parts, in small messages: each row lands once in
    its own table, and a refused reject (a size beyond 64 bits) is the caller's own."""
    monkeypatch.setattr(sqlite_sink, "SLOW_FEED_TICKS_PER_S", 10**12)
    monkeypatch.setattr(sqlite_sink, "SMALL_FLUSH_PART_ROWS", 50)
    monkeypatch.setattr(writer_child, "SMALL_FLUSH_MESSAGE_ROWS", 97)
    frames = [(T0 + f, [("BTC-USDT", f * 1000 + k, T0 + f * 1000 + k, 100.0, 0.5, 0)
                        for k in range(size)]) for f, size in enumerate([3, 0, 250, 1, 96, 97])]
    rejects = [(T0 + i, "binance", "malformed_json", f"bad {i}", "{", 2**64 if i == 150 else 1)
               for i in range(301)]
    gaps = [("binance", "BTC-USDT", 10 * i, 10 * i + 5, 6, T0 + i, "trades") for i in range(203)]
    sink = ProcessSink(db) if writer == "process" else SQLiteSink(db)
    if writer == "process":
        sink.probe()
    sink.open(RUN)
    if writer == "process":
        wait_for(lambda: sink.check() is None and sink.in_child, 30)
    try:
        batch = Batch(TradeRows("binance", frames), rejects, gaps)
        refused: list = []
        assert sink.write(batch, refused) == 447
        assert [(table, row) for table, row, _ in refused] == [("rejects", rejects[150])]
        assert refused[0][1] is rejects[150]
    finally:
        sink.close()
    with TickStore(db, readonly=True) as store:
        assert store.count() == 447
        assert len(store.rejects()) == 300
        assert len(store.gaps()) == 203


def test_a_slow_flush_in_parts_behind_a_lake_that_refused_first_lands_once_in_each(tmp_path,
                                                                                   monkeypatch):
    """SQLite takes the flush in parts, the lake refuses it; the retry (the frames given
    back, and more) writes only the newer rows to SQLite; both hold each row once, and
    a row SQLite refused in a later part is named as the retried batch's own."""
    from tests.test_lake import FlakyLake, duckdb_rows, sqlite_rows

    monkeypatch.setattr(sqlite_sink, "SLOW_FEED_TICKS_PER_S", 10**12)
    monkeypatch.setattr(sqlite_sink, "SMALL_FLUSH_PART_ROWS", 40)
    from rtkit.sinks.fanout import Fanout

    def entries(start: int, sizes: list[int]) -> list:
        out, at = [], start
        for e, size in enumerate(sizes):
            out.append((T0 + e, [("BTC-USDT", at + k, 2**63 if at + k == 333 else T0 + at + k,
                                  100.0, 0.5, 0) for k in range(size)]))
            at += size
        return out

    sink = Fanout(SQLiteSink(tmp_path / "t.sqlite"), FlakyLake(tmp_path / "lake"))
    sink.open(RUN)
    first = entries(0, [1, 0, 300, 99])
    with pytest.raises(OSError):
        sink.write(Batch(TradeRows("binance", first), [], []), [])
    retry = Batch(TradeRows("binance", list(first) + entries(400, [77, 0, 5])), [], [])
    refused: list = []
    assert sink.write(retry, refused) == 400 + 82 - 1
    assert [row for _, row, _ in refused] == [retry.ticks[333]]
    assert refused[0][1] is retry.ticks[333]
    sink.close()
    in_sqlite = sqlite_rows(tmp_path / "t.sqlite")
    assert len(in_sqlite) == 481 and duckdb_rows(tmp_path / "lake") == in_sqlite


def test_uneven_entries_are_cut_into_parts_of_about_the_rows_asked_for():
    """A burst's entries of 500 trades, then 1,000 quiet entries of one: every entry is
    under 512 rows, so no part need hold more than 512 (the receive thread waits for one
    part's rows and statement, issue 17)."""
    sizes = [500] * 10 + [1] * 1000
    frames, at = [], 0
    for e, size in enumerate(sizes):
        frames.append((T0 + e, [("BTC-USDT", at + k, T0 + at + k, 100.0, 0.5, 0)
                                for k in range(size)]))
        at += size
    parts = [len(part) for part in TradeRows("binance", frames).in_parts(512)]
    assert sum(parts) == 6000
    assert max(parts) <= 512


def test_parts_of_two_sizes_read_in_turn_hold_every_row_once_as_rows_has_them():
    """Two in_parts of different sizes, read in turn, then rows(): each part is whole and
    its rows are the objects rows() returns, each made once."""
    frames = [(T0 + f, [("BTC-USDT", f * 10 + k, T0 + f, 100.0, 0.5, 0) for k in range(f % 4)])
              for f in range(40)]
    ticks = TradeRows("binance", frames)
    small, large = ticks.in_parts(3), ticks.in_parts(7)
    got_small: list = []
    got_large: list = []
    for a, b in zip_longest(small, large, fillvalue=[]):
        got_small += a
        got_large += b
    every = ticks.rows()
    assert len(every) == len(ticks) == sum(f % 4 for f in range(40))
    assert all(x is y for x, y in zip(got_small, every, strict=True))
    assert all(x is y for x, y in zip(got_large, every, strict=True))
    assert every == stored_rows("binance", frames)
