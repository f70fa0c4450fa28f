"""Review 10: ``TradeRows``' one progressive state (``rows``, ``in_parts``) and its one
packing (``packed``, also the writer process's messages), fuzzed: random entry sizes
(empty entries, entries larger than a part, parts of one row), every read interleaved
with every other at each step, writes that fail in a random part and are retried with
the same rows, and the writer process end to end. The promise: each row made once (a
refusal names the caller's own object), every row written once, none lost."""

from __future__ import annotations

import copy
import pickle
import random
import sqlite3
from itertools import pairwise

import pytest

from rtkit import store as store_module
from rtkit.kinds.trades import TradeRows, stored_rows
from rtkit.pipeline_queue import Batch
from rtkit.runtime import writer_child
from rtkit.sinks import RunInfo
from rtkit.sinks import sqlite as sqlite_sink
from rtkit.sinks.sqlite import SQLiteSink
from rtkit.store import TickStore
from tests.test_writer_process import child_sink

pytestmark = pytest.mark.usefixtures("no_thread_leak")
RUN = RunInfo("test", "binance", ["BTC-USDT"], "ws://127.0.0.1:1/ws")
T0 = 1_764_000_000_000_000_000
#: entry sizes a flush holds: empty entries, one trade a frame, chunks, bursts
SIZES = (0, 0, 1, 1, 1, 2, 3, 5, 8, 13, 40, 97, 200)
TOO_LARGE = 2**63  # a timestamp SQLite cannot store: the row is refused
INSERT_MANY = store_module.insert_many


def random_frames(rng: random.Random, start: int = 0, refuse: float = 0.0,
                  entries: int = 30) -> list[tuple[int, list]]:
    frames, at = [], start
    for e in range(rng.randint(0, entries)):
        ticks = []
        for _ in range(rng.choice(SIZES)):
            ts = TOO_LARGE if rng.random() < refuse else T0 + at
            ticks.append(("BTC-USDT", at, ts, 100.0, 0.5, at % 3 - 1))
            at += 1
        frames.append((T0 + e, ticks))
    return frames


def entry_sizes(run: list) -> list[int]:
    return [len(ticks) for _, ticks in run]


@pytest.mark.parametrize("seed", range(4))
def test_packed_runs_are_the_entries_whole_in_order_full_and_bounded(seed):
    rng = random.Random(seed)
    for _ in range(300):
        frames = random_frames(rng)
        most = rng.choice((1, 2, 3, 7, 40, 100, 10_000))
        runs = list(TradeRows("binance", frames).packed(most))
        assert [entry for run in runs for entry in run] == frames
        assert all(e is f for e, f in zip((e for r in runs for e in r), frames, strict=True))
        assert all(run for run in runs)
        for i, run in enumerate(runs):
            size = sum(entry_sizes(run))
            assert size <= most or [s for s in entry_sizes(run) if s] == [size]
            if i + 1 < len(runs):  # full: the next run's first entry did not fit
                assert size + entry_sizes(runs[i + 1])[0] > most


def test_the_writer_processs_parts_are_packed_runs_and_each_fits_a_message_alone():
    rng = random.Random(10)
    for _ in range(300):
        frames = random_frames(rng)
        most = rng.choice((1, 2, 5, 40, 100))
        ticks = TradeRows("binance", frames)
        parts = writer_child._parts(ticks, most)
        assert sum(len(p) for p in parts) == len(ticks)
        got = [row for p in parts for row in p]
        assert got == stored_rows("binance", frames)
        assert all(len(p) <= most or len([f for f in p.frames if f[1]]) == 1 for p in parts)
        # no two parts of the trades fit in one message (send_rows puts one part of a list
        # in the first message, and a second would take its place)
        sizes = [len(p) for p in parts]
        assert all(a + b > most for a, b in pairwise(sizes) if a and b)


@pytest.mark.parametrize("seed", range(6))
def test_every_read_interleaved_at_every_step_gives_each_row_once_as_one_object(seed):
    """Random programs of reads on one TradeRows: in_parts of random sizes (1 row, entry
    sizes, more than the flush) started and advanced at random, rows(), len, indexing,
    slicing, iteration, equality, pickling and copying. Every read of row i is one object,
    every in_parts yields every row once in order, in parts of whole entries."""
    rng = random.Random(100 + seed)
    for _ in range(120):
        frames = random_frames(rng)
        reference = stored_rows("binance", frames)
        bounds = {0}
        at = 0
        for _, ticks in frames:
            at += len(ticks)
            bounds.add(at)
        ticks = TradeRows("binance", frames)
        seen: dict[int, tuple] = {}  # row index -> the object read there

        def saw(i: int, row: tuple, reference=reference, seen=seen) -> None:
            assert row == reference[i]
            assert seen.setdefault(i, row) is row

        gens: list[list] = []  # [generator, rows asked, next row index]
        for _step in range(rng.randint(1, 25)):
            op = rng.randrange(9)
            if op == 0:
                gens.append([ticks.in_parts(rng.choice((1, 2, 3, 13, 97, 10_000))), 0, 0])
            elif op == 1 and gens:
                g = rng.choice(gens)
                part = next(g[0], None)
                if part is None:
                    assert g[2] == len(reference)
                    gens.remove(g)
                    continue
                assert g[2] in bounds and g[2] + len(part) in bounds  # whole entries
                for k, row in enumerate(part):
                    saw(g[2] + k, row)
                g[2] += len(part)
            elif op == 2:
                for i, row in enumerate(ticks.rows()):
                    saw(i, row)
            elif op == 3:
                assert len(ticks) == len(reference)
            elif op == 4 and reference:
                i = rng.randrange(-len(reference), len(reference))
                saw(i % len(reference), ticks[i])
            elif op == 5:
                a, b = sorted(rng.randrange(len(reference) + 1) for _ in range(2))
                for k, row in enumerate(ticks[a:b]):
                    saw(a + k, row)
            elif op == 6:
                for i, row in enumerate(ticks):
                    saw(i, row)
            elif op == 7:
                other = pickle.loads(pickle.dumps(ticks, pickle.HIGHEST_PROTOCOL))
                assert other.venue == "binance" and other.frames == frames
                assert [r for p in other.in_parts(rng.choice((1, 7))) for r in p] == reference
                assert other.rows() == reference and ticks == other
            else:
                other = copy.copy(ticks)
                assert other == reference and len(other) == len(reference)
        for g in gens:  # drain what is left
            for part in g[0]:
                assert g[2] in bounds and g[2] + len(part) in bounds
                for k, row in enumerate(part):
                    saw(g[2] + k, row)
                g[2] += len(part)
            assert g[2] == len(reference)
        assert ticks.rows() == reference
        for i, row in enumerate(ticks.rows()):
            saw(i, row)
        assert len(ticks.rows()) == len(ticks)


@pytest.mark.parametrize("most", [1, 2, 5, 64])
def test_parts_are_about_the_rows_asked_for_and_a_larger_entry_is_a_part_alone(most):
    rng = random.Random(most)
    for _ in range(200):
        frames = random_frames(rng)
        ticks = TradeRows("binance", frames)
        runs = list(ticks.packed(most))
        parts = list(ticks.in_parts(most))
        assert [len(p) for p in parts] == [sum(entry_sizes(r)) for r in runs]
        assert sum(map(len, parts)) == len(ticks)


def failing_insert(fail_at: int):
    """``insert_many`` that raises a database error (not a row's) at its ``fail_at``th call."""
    calls = [0]

    def insert(conn, sql, rows):
        calls[0] += 1
        if calls[0] == fail_at:
            raise sqlite3.OperationalError("disk I/O error")
        return INSERT_MANY(conn, sql, rows)
    return insert


@pytest.mark.parametrize("seed", range(3))
def test_a_write_failing_in_a_random_part_then_retried_with_the_same_rows_writes_each_once(
        db, monkeypatch, seed):
    """SQLite fails in a random statement of a slow flush's parts (after some rows were
    made, some read, an in_parts left half-read); the retry of the same TradeRows, slow
    or fast, writes every row once, and the refused rows are the caller's objects."""
    rng = random.Random(seed)
    monkeypatch.setattr(sqlite_sink, "SMALL_FLUSH_PART_ROWS", rng.choice((1, 3, 17)))
    sink = SQLiteSink(db)
    sink.open(RUN)
    written = start = failed = 0
    try:
        for _ in range(25):
            frames = random_frames(rng, start=start, refuse=0.02, entries=15)
            start += sum(entry_sizes(frames)) + 1
            ticks = TradeRows("binance", frames)
            reference = stored_rows("binance", frames)
            good = sum(1 for r in reference if r[3] != TOO_LARGE)
            before = rng.randrange(4)  # what read the rows before the write
            if before == 1:
                ticks.rows()
            elif before == 2:
                half = ticks.in_parts(rng.choice((1, 5)))
                next(half, None)
            monkeypatch.setattr(sqlite_sink, "SLOW_FEED_TICKS_PER_S", 10**12)
            monkeypatch.setattr(store_module, "insert_many", failing_insert(rng.randint(1, 6)))
            try:
                first = sink.write(Batch(ticks, [], []), [])
            except sqlite3.OperationalError:
                first = None
            monkeypatch.setattr(store_module, "insert_many", failing_insert(0))
            if first is None:  # nothing of it was written: the retry writes all of it
                failed += 1
                with TickStore(db, readonly=True) as store:
                    assert store.count() == written
                if rng.random() < 0.5:
                    monkeypatch.setattr(sqlite_sink, "SLOW_FEED_TICKS_PER_S", 0)
                refused: list = []
                assert sink.write(Batch(ticks, [], []), refused) == good
                rows = ticks.rows()
                assert [row for _, row, _ in refused] == [r for r in rows if r[3] == TOO_LARGE]
                assert all(any(r is row for r in rows) for _, row, _ in refused)
            else:
                assert first == good
            written += good
            assert ticks.rows() == reference
    finally:
        sink.close()
    assert failed >= 5
    with TickStore(db, readonly=True) as store:
        assert store.count() == written


def test_a_refused_row_in_a_later_part_is_the_object_the_caller_holds(db, monkeypatch):
    monkeypatch.setattr(sqlite_sink, "SLOW_FEED_TICKS_PER_S", 10**12)
    monkeypatch.setattr(sqlite_sink, "SMALL_FLUSH_PART_ROWS", 1)
    frames = [(T0 + e, [("BTC-USDT", e * 10 + k, TOO_LARGE if (e, k) == (7, 2) else T0 + e,
                         100.0, 0.5, 0) for k in range(e % 4)]) for e in range(20)]
    ticks = TradeRows("binance", frames)
    held = ticks.in_parts(3)
    early = next(held)  # another reader's parts, half read: the same rows
    sink = SQLiteSink(db)
    sink.open(RUN)
    try:
        refused: list = []
        assert sink.write(Batch(ticks, [], []), refused) == len(ticks) - 1
        at = sum(e % 4 for e in range(7)) + 2  # entry 7's third trade
        assert [row for _, row, _ in refused] == [ticks[at]]
        assert refused[0][1] is ticks.rows()[at]
        assert early[0] is ticks[0]
        assert [r for part in held for r in part] == ticks.rows()[len(early):]
    finally:
        sink.close()


@pytest.mark.parametrize("slow", [False, True], ids=["fast", "slow"])
def test_random_uneven_flushes_through_the_writer_process_land_once(db, monkeypatch, slow):
    """Random entries (empty, one trade, more than a message) in messages of 1 to 50
    rows, with refused rows: every row lands once, each refusal is the caller's row."""
    rng = random.Random(7 + slow)
    monkeypatch.setattr(sqlite_sink, "SLOW_FEED_TICKS_PER_S", 10**12 if slow else 0)
    sink = child_sink(db)
    written, start = 0, 0
    try:
        for _ in range(15):
            most = rng.choice((1, 2, 7, 50))
            monkeypatch.setattr(writer_child, "CHUNK_ROWS", most)
            monkeypatch.setattr(writer_child, "SMALL_FLUSH_MESSAGE_ROWS", most)
            frames = random_frames(rng, start=start, refuse=0.01, entries=12)
            start += sum(entry_sizes(frames)) + 1
            ticks = TradeRows("binance", frames)
            good = sum(1 for _, t in frames for tick in t if tick[2] != TOO_LARGE)
            refused: list = []
            assert sink.write(Batch(ticks, [], []), refused) == good
            assert [row for _, row, _ in refused] == [
                r for r in ticks.rows() if r[3] == TOO_LARGE]
            assert all(any(r is row for r in ticks.rows()) for _, row, _ in refused)
            written += good
    finally:
        sink.close()
    with TickStore(db, readonly=True) as store:
        assert store.count() == written


def test_a_writer_process_failing_in_a_later_part_then_retried_with_the_same_rows(
        db, monkeypatch):
    """The child fails in the third part of a slow flush of uneven entries (after two
    were inserted and while more are in the pipe): nothing of it stays, the next call's
    answer is its own, and the retry of the same TradeRows writes every row once and
    names the refused row as the caller's."""
    from rtkit.runtime.writer_process import ProcessSink
    from tests.conftest import wait_for
    from tests.review10_store import FailsInThirdPartOnce

    monkeypatch.setattr(sqlite_sink, "SLOW_FEED_TICKS_PER_S", 10**12)
    monkeypatch.setattr(writer_child, "SMALL_FLUSH_MESSAGE_ROWS", 5)
    rng = random.Random(33)
    frames = random_frames(rng, entries=40)
    frames.append((T0 + 99, [("BTC-USDT", 10**6, TOO_LARGE, 100.0, 0.5, 0)]))
    ticks = TradeRows("binance", frames)
    assert len(list(ticks.packed(5))) > 5
    rejects = [(T0, "binance", "malformed_json", "bad", "{", 1)] * 12  # parts behind
    sink = ProcessSink(db, FailsInThirdPartOnce)
    sink.probe()
    sink.open(RUN)
    wait_for(lambda: sink.check() is None and sink.in_child, 30)
    try:
        with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
            sink.write(Batch(ticks, rejects, []), [])
        with TickStore(db, readonly=True) as store:
            assert store.count() == 0
        refused: list = []
        assert sink.write(Batch(ticks, rejects, []), refused) == len(ticks) - 1
        assert [row for _, row, _ in refused] == [ticks[-1]]
        assert refused[0][1] is ticks.rows()[-1]
    finally:
        sink.close()
    with TickStore(db, readonly=True) as store:
        assert store.count() == len(ticks) - 1
        assert len(store.rejects()) == 12


def test_a_fanout_retrying_the_same_rows_after_sqlite_then_the_lake_failed(tmp_path,
                                                                          monkeypatch):
    """The same TradeRows three times: SQLite fails in its second part (a half-read
    in_parts is dropped), then the lake refuses after SQLite took it, then it goes
    through: each store holds each row once, and the refused row is the caller's."""
    from rtkit.sinks.fanout import Fanout
    from tests.test_lake import FlakyLake, duckdb_rows, sqlite_rows

    monkeypatch.setattr(sqlite_sink, "SLOW_FEED_TICKS_PER_S", 10**12)
    monkeypatch.setattr(sqlite_sink, "SMALL_FLUSH_PART_ROWS", 4)
    frames = random_frames(random.Random(5), refuse=0.03, entries=25)
    ticks = TradeRows("binance", frames)
    good = sum(1 for _, t in frames for tick in t if tick[2] != TOO_LARGE)
    assert 0 < good < len(ticks) and len(list(ticks.packed(4))) > 2
    sink = Fanout(SQLiteSink(tmp_path / "t.sqlite"), FlakyLake(tmp_path / "lake"))
    sink.open(RUN)
    try:
        monkeypatch.setattr(store_module, "insert_many", failing_insert(2))
        with pytest.raises(sqlite3.OperationalError):
            sink.write(Batch(ticks, [], []), [])
        monkeypatch.setattr(store_module, "insert_many", failing_insert(0))
        with pytest.raises(OSError):  # the lake's full disk, after SQLite took it
            sink.write(Batch(ticks, [], []), [])
        refused: list = []
        assert sink.write(Batch(ticks, [], []), refused) == good
        rows = ticks.rows()
        assert [row for _, row, _ in refused] == [r for r in rows if r[3] == TOO_LARGE]
        assert all(any(r is row for r in rows) for _, row, _ in refused)
    finally:
        sink.close()
    in_sqlite = sqlite_rows(tmp_path / "t.sqlite")
    assert len(in_sqlite) == good and duckdb_rows(tmp_path / "lake") == in_sqlite


def test_rows_made_in_one_go_peak_no_higher_than_the_rows_themselves():
    """rows() with none made yet is ``stored_rows`` itself: since d093416 it copied them
    into an empty list (and the frames into a slice), 8 bytes a row more at the peak of
    a fast feed's flush (33.1 against 31.6 MiB for 200k trades). Deterministic: counted
    allocations (tracemalloc), not the process's RSS."""
    import tracemalloc

    frames = [(T0 + f, [("BTC-USDT", f, T0 + f, 100.0, 0.5, 0)]) for f in range(50_000)]
    peaks = []
    for make in (lambda: stored_rows("binance", frames),
                 lambda: TradeRows("binance", frames).rows()):
        tracemalloc.start()
        rows = make()
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        del rows
    assert peaks[1] < peaks[0] * 1.02  # was 1.05: a pointer a row on ~160 bytes
