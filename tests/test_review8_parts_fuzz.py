"""Review 8: a flush's trades cut into parts (the thread's ``TradeRows.in_parts``, the
writer process's messages) against the promise: every tick stored, or a duplicate only if
SQLite had its key, or refused and named as the caller's own row; never lost, never
counted twice. Random flushes (fixed seed, bounded), slow and fast feeds, both writers."""

from __future__ import annotations

import random

import pytest

from rtkit.kinds.trades import TradeRows
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
