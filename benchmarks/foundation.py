"""Replay throughput, snapshot time (fresh and reused arrays), store write and read, ring memory."""

from __future__ import annotations

import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd

from benchmarks.util import median_of
from rtkit.buffer import RingBuffer
from rtkit.replay import replay
from rtkit.sim.record import write_recording
from rtkit.store import TickStore

T0 = 1_764_000_000_000_000_000


def bench_replay(tmp: Path, frames: int = 200_000, runs: int = 3) -> dict:
    rec = tmp / "replay.jsonl"
    write_recording(rec, trades=frames, seed=1)

    def once():
        db = tmp / f"replay-{time.monotonic_ns()}.sqlite"
        t = time.perf_counter()
        s = replay(rec, db=db)
        elapsed = time.perf_counter() - t
        assert s["stored"] == frames
        return frames / elapsed

    return {"replay_frames_per_s": median_of(once, runs)}


def _fill(ring: RingBuffer, n: int) -> None:
    batch = [("BTC-USDT", i, T0 + i, 100.0 + i % 7, 0.5, i & 1) for i in range(1000)]
    for _ in range(n // 1000):
        ring.append("binance", T0, batch)


def bench_snapshot(runs: int = 7) -> dict:
    out = {}
    for n in (100_000, 1_000_000):
        ring = RingBuffer(n)
        _fill(ring, n)

        def snap(ring=ring, reuse=False):
            t = time.perf_counter()
            ring.snapshot(reuse=reuse)
            return (time.perf_counter() - t) * 1e3

        out[f"snapshot_{n // 1000}k_ms"] = median_of(snap, runs)
        # reuse=True (a panel's redraw): the first call makes the arrays, later ones refill them
        ring.snapshot(reuse=True)
        out[f"snapshot_{n // 1000}k_reused_ms"] = median_of(lambda ring=ring: snap(ring, True),
                                                            runs)
        if n == 100_000:
            dicts = ring.snapshot().to_dict("records")

            def baseline(dicts=dicts):
                t = time.perf_counter()
                pd.DataFrame(dicts)
                return (time.perf_counter() - t) * 1e3

            out["snapshot_100k_list_of_dicts_ms"] = median_of(baseline, 3)
        out["ring_bytes_per_tick"] = ring.nbytes / ring.capacity
    df = pd.DataFrame(dicts)
    out["dataframe_from_dicts_bytes_per_tick"] = df.memory_usage(deep=True).sum() / len(df)
    return out


def bench_store(tmp: Path, n: int = 200_000, runs: int = 3) -> dict:
    rows = [("binance", "BTC-USDT", str(i), T0 + i, T0 + i, 100.0, 0.5, "buy") for i in range(n)]

    def ours():
        with TickStore(tmp / f"s-{time.monotonic_ns()}.sqlite") as store:
            t = time.perf_counter()
            store.write(rows)
            return n / (time.perf_counter() - t)

    def raw(same_schema: bool):
        path = tmp / f"r-{time.monotonic_ns()}.sqlite"
        if same_schema:  # the same tables, indexes and pragmas as TickStore: our overhead only
            TickStore(path).close()
            conn = sqlite3.connect(path)
            conn.execute("PRAGMA synchronous=NORMAL")
        else:  # a bare table with no key and no index
            conn = sqlite3.connect(path)
            conn.execute("CREATE TABLE ticks (venue TEXT, symbol TEXT, trade_id TEXT, "
                         "timestamp INTEGER, received_at INTEGER, price REAL, volume REAL, "
                         "side TEXT)")
        t = time.perf_counter()
        with conn:
            conn.executemany("INSERT INTO ticks VALUES (?,?,?,?,?,?,?,?)", rows)
        rate = n / (time.perf_counter() - t)
        conn.close()
        return rate

    a = median_of(ours, runs)
    b = median_of(lambda: raw(True), runs)
    c = median_of(lambda: raw(False), runs)
    return {"store_rows_per_s": a, "raw_executemany_same_schema_rows_per_s": b,
            "store_ratio": a / b, "raw_executemany_bare_table_rows_per_s": c}


#: the query TickStore.ticks() answers, as pd.read_sql would run it
READ_SQL = ("SELECT timestamp, received_at, venue, symbol, price, volume, side, trade_id "
            "FROM ticks ORDER BY timestamp, received_at, length(trade_id), trade_id")


def bench_read(tmp: Path, n: int = 1_000_000, runs: int = 3) -> dict:
    """Reading stored ticks back as the ring's DataFrame, against pd.read_sql's plain frame."""
    path = tmp / "read.sqlite"
    with TickStore(path) as store:
        store.write([("binance", "BTC-USDT", str(i), T0 + i, T0 + i, 100.0, 0.5, "buy")
                     for i in range(n)])
    conn = sqlite3.connect(path)
    with TickStore(path, readonly=True) as store:
        # alternated, so that both meet the same load on a shared machine; CPU time
        # too, which that load disturbs less than the wall clock
        pairs = [(_timed_both(store.ticks), _timed_both(lambda: pd.read_sql(READ_SQL, conn)))
                 for _ in range(runs)]
    conn.close()
    ours, theirs = (statistics.median(p[0][0] for p in pairs),
                    statistics.median(p[1][0] for p in pairs))
    ours_cpu, theirs_cpu = (statistics.median(p[0][1] for p in pairs),
                            statistics.median(p[1][1] for p in pairs))
    return {f"ticks_read_{n // 1000}k_s": ours, "ticks_read_ratio_to_read_sql": ours / theirs,
            f"ticks_read_{n // 1000}k_cpu_s": ours_cpu,
            "ticks_read_cpu_ratio_to_read_sql": ours_cpu / theirs_cpu}


def _timed_both(f) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    f()
    return time.perf_counter() - wall, time.process_time() - cpu


def _timed(f) -> float:
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def run() -> dict:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        out = {}
        out.update(bench_replay(tmp))
        out.update(bench_snapshot())
        out.update(bench_store(tmp))
        out.update(bench_read(tmp))
        return out
