"""``kill -9`` of a collector and of ``rtkit lake compact`` at random moments, ten
times each, while a reader reads the lake over and over: the reader never fails,
never loses a record it saw committed, never meets a file it cannot read, and
reads each record once (by key).

The killed processes are forked from a fork server that imported rtkit once
(``multiprocessing``'s ``forkserver``): each starts in milliseconds, not the second
a fresh interpreter takes, and has none of the test process's threads."""

from __future__ import annotations

import multiprocessing
import random
import threading
from pathlib import Path

import pyarrow.parquet as pq

import rtkit
from rtkit.lake.compact import compact
from rtkit.sim import Simulator
from rtkit.sinks.parquet import ParquetSink
from tests.test_lake_compact import age, trade
from tests.test_lake_writers import lake_files, lake_rows

KILLS = 10
PARTITIONS = 6


class Reader(threading.Thread):
    """Reads the lake until told to stop; keeps the first error and, per read, the keys
    it found and those known committed before the read began."""

    def __init__(self, lake: Path, committed=lambda: set()) -> None:
        super().__init__(daemon=True, name="lake-reader")
        self.lake, self.committed = lake, committed
        self.stop = threading.Event()
        self.reads: list[tuple[int, int]] = []  # (unique rows, raw rows)
        self.error: BaseException | None = None
        self.lost: set = set()

    def run(self) -> None:
        while not self.stop.is_set():
            before = set(self.committed())
            try:
                raw, unique = lake_rows(self.lake)
            except BaseException as exc:  # noqa: BLE001 - the test reports it
                self.error = exc
                return
            keys = [r[:3] for r in unique]
            assert len(keys) == len(set(keys))
            self.lost |= before - set(keys)
            self.reads.append((len(unique), len(raw)))
            self.stop.wait(0.01)  # the GIL, now and then, for the test's own thread

    def finish(self) -> None:
        self.stop.set()
        self.join(30)
        assert not self.is_alive()


def every_file_is_whole(lake: Path) -> None:
    for path in lake_files(lake):
        pq.ParquetFile(path).read()  # a truncated or half-written file raises here


def forked():
    """The fork server's context, with rtkit and this module imported once in it."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["rtkit.collector", "rtkit.lake.compact", __name__])
    return context


def _collect(url: str, db: str, lake: str, pipe) -> None:
    c = rtkit.collect("binance", ["BTC-USDT", "ETH-USDT"], url=url, db=db, lake=lake,
                      flush_interval_s=0.01)
    pipe.send("collecting")
    threading.Event().wait(60)  # until killed (bounded, should the test not kill it)
    c.stop()


def _compact(lake: str, pipe) -> None:
    compact(lake, min_age_s=0, progress=lambda merged: pipe.send(merged.output))
    pipe.send(None)


def start(context, target, *args):
    """``target(*args, pipe)`` in a forked process; the process and our end of the pipe."""
    ours, theirs = context.Pipe(duplex=False)
    process = context.Process(target=target, args=(*args, theirs), daemon=True)
    process.start()
    theirs.close()
    return process, ours


def kill_9(process) -> None:
    process.kill()  # SIGKILL
    process.join(10)
    assert process.exitcode == -9 or process.exitcode is not None


def test_kill_9_of_a_collector_never_troubles_a_reader(tmp_path):
    lake, rng, context = tmp_path / "lake", random.Random(15), forked()
    reader = Reader(lake)
    with Simulator("binance", rate=20_000, seed=3, overlap=200) as sim:
        reader.start()
        for attempt in range(KILLS):
            files_before = len(lake_files(lake))
            child, pipe = start(context, _collect, sim.url, str(tmp_path / f"{attempt}.sqlite"),
                                str(lake))
            try:
                assert pipe.poll(30) and pipe.recv() == "collecting"
                # a random moment once it writes
                sim.wait_generated(len(sim.trades) + rng.randrange(200, 4000), 20)
                while len(lake_files(lake)) == files_before and reader.is_alive():
                    threading.Event().wait(0.005)
            finally:
                kill_9(child)
                pipe.close()
            every_file_is_whole(lake)
        reader.finish()
    assert reader.error is None, repr(reader.error)
    uniques = [u for u, _ in reader.reads]
    assert uniques == sorted(uniques) and uniques[-1] > 0  # never a record less than before
    assert len(reader.reads) >= 2


def _add_small_files(lake: Path, first: int, committed: set) -> None:
    """Six writers' flushes over 6 partitions, each trade twice (a redundant pair)."""
    rows = [(s, i) for s in [f"S{k}-USDT" for k in range(PARTITIONS)]
            for i in range(first, first + 60)]
    for copy in range(2):
        for w in range(3):
            sink = ParquetSink(lake)
            sink.open()
            sink.write([trade(s, i, received=copy) for s, i in rows[w::3]])
    age(lake_files(lake))
    committed |= {("binance", s, str(i)) for s, i in rows}


def test_kill_9_of_compact_never_troubles_a_reader(tmp_path):
    lake, rng, context = tmp_path / "lake", random.Random(16), forked()
    committed: set = set()
    _add_small_files(lake, 0, committed)
    reader = Reader(lake, lambda: set(committed))
    reader.start()
    merged_at_kill = []
    for attempt in range(KILLS):
        _add_small_files(lake, 60 * (attempt + 1), committed)
        child, pipe = start(context, _compact, str(lake))
        try:
            # a random moment of its work: after 0 to 4 of its 6 partitions, plus a little
            merged = rng.randrange(0, PARTITIONS - 1)
            for _ in range(merged):
                assert pipe.poll(30) and pipe.recv()
            threading.Event().wait(rng.uniform(0, 0.02))
        finally:
            kill_9(child)
            pipe.close()
        merged_at_kill.append(merged)
        every_file_is_whole(lake)
    reader.finish()
    assert len(set(merged_at_kill)) > 1  # killed at different points of its work
    assert reader.error is None, repr(reader.error)
    assert not reader.lost, f"{len(reader.lost)} committed records missing from a read"
    assert len(reader.reads) > KILLS
    report = compact(lake, min_age_s=0)  # finishes what the killed runs left
    assert len(lake_files(lake)) == PARTITIONS
    raw, unique = lake_rows(lake)
    assert sorted(raw) == unique and {r[:3] for r in unique} == committed
    assert report.summary()["rows_out"] <= len(unique)
