"""Replay throughput, snapshot time (fresh and reused arrays), store write and read, ring memory."""

from __future__ import annotations

import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np
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


def bench_read(tmp: Path, n: int = 1_000_000, runs: int = 5) -> dict:
    """Reading stored ticks back as the ring's DataFrame, against pd.read_sql's plain frame.

    Best of ``runs`` calls of each, alternated so that both meet the same load on a
    shared machine. CPU is the whole process's (ticks() builds the integer columns on
    helper threads, whose time counts); the caller's thread's CPU beside it is the part
    that no second core takes over. Once on one symbol in id order (the table as one
    collector of one market fills it), once on three symbols whose rows interleave in
    time with varied prices (numpy then sorts the merged rows).
    """
    out = {}
    for label, rows in (("", _one_symbol(n)), ("_3_symbols", _three_symbols(n))):
        path = tmp / f"read{label}.sqlite"
        with TickStore(path) as store:
            store.write(rows)
        del rows
        conn = sqlite3.connect(path)

        def read_sql(conn=conn):
            return pd.read_sql(READ_SQL, conn)

        with TickStore(path, readonly=True) as store:
            pairs = [(_timed_all(store.ticks), _timed_all(read_sql)) for _ in range(runs)]
        conn.close()
        ours = [min(p[0][i] for p in pairs) for i in range(3)]
        theirs = [min(p[1][i] for p in pairs) for i in range(3)]
        key = f"ticks_read_{n // 1000}k{label}"
        out.update({f"{key}_s": ours[0], f"{key}_cpu_s": ours[1],
                    f"{key}_caller_thread_cpu_s": ours[2],
                    f"ticks_read{label}_ratio_to_read_sql": ours[0] / theirs[0],
                    f"ticks_read{label}_cpu_ratio_to_read_sql": ours[1] / theirs[1]})
    return out


def _one_symbol(n: int) -> list[tuple]:
    return [("binance", "BTC-USDT", str(i), T0 + i, T0 + i, 100.0, 0.5, "buy") for i in range(n)]


def _three_symbols(n: int) -> list[tuple]:
    rng = np.random.default_rng(1)
    price = (65000 + rng.standard_normal(n).cumsum()).round(2).tolist()
    volume = rng.exponential(0.05, n).round(5).tolist()
    symbols = ("BTC-USDT", "ETH-USDT", "SOL-USDT")
    return [("binance", symbols[i % 3], str(10**9 + i), T0 + 1000 * i, T0 + 1000 * i + 5,
             price[i], volume[i], ("buy", "sell")[i & 1]) for i in range(n)]


def _timed_all(f) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds of this process, CPU seconds of this thread) of one call."""
    wall, cpu, thread = time.perf_counter(), time.process_time(), time.thread_time()
    f()
    return (time.perf_counter() - wall, time.process_time() - cpu,
            time.thread_time() - thread)


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
