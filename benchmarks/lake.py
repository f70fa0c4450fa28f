"""The Parquet lake against SQLite, in the same run (issue 15).

* batch append: an Arrow table of 1M trades into the lake (``rtkit.sinks.parquet.append``)
  against ``TickStore.write`` of the same trades as rows;
* the live sink's cost to the receive thread: one flush written while a thread
  that stands for the receive loop spins, for the lake and for SQLite;
* live ingest persisted to the lake alone against a bare ``WebSocketApp`` counting
  loop and the Collector persisting to SQLite, on the same pre-encoded feed
  (``benchmarks.live``), paired within rounds;
* a synthetic lake of ``RTKIT_BENCH_LAKE_TRADES`` trades (default 20M; made here in a
  temporary folder, never stored) and the same trades in SQLite: bytes per trade, a
  1-minute VWAP of one venue, symbol and day through DuckDB (with the files it opened
  of all there are: partition pruning), SQLite, pandas and Dask on a ``LocalCluster``,
  and the same VWAP over every partition;
* compaction: the same partitions as one-flush files, merged, with bytes before and after.
"""

from __future__ import annotations

import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from itertools import repeat
from pathlib import Path

import numpy as np
import pyarrow as pa

from benchmarks import live
from benchmarks.util import median_of
from rtkit.kinds.trades import TRADES
from rtkit.lake.compact import compact
from rtkit.sinks.parquet import ParquetSink, append, full_schema
from rtkit.sinks.sqlite import SQLiteSink
from rtkit.store import TickStore

#: trades in the synthetic lake (a quick run: RTKIT_BENCH_LAKE_TRADES=2000000)
LAKE_TRADES = int(os.environ.get("RTKIT_BENCH_LAKE_TRADES", 20_000_000))
VENUES = ("binance", "bybit")
#: in key order, so that SQLite's inserts append to its trees as a collector's would
SYMBOLS = ("BTC-USDT", "DOGE-USDT", "ETH-USDT", "SOL-USDT", "XRP-USDT")
DAYS = 2
DAY0 = 1_764_028_800_000_000_000 // 86_400_000_000_000  # 2025-11-25, as a day number
NS_PER_DAY = 86_400 * 10**9
QUERY = ("binance", "BTC-USDT", "2025-11-25")


def synthetic_columns(n: int, day: int, seed: int) -> dict[str, np.ndarray]:
    """``n`` trades of one venue, symbol and UTC day, shaped like a busy market's:
    millisecond trade times (exponential gaps), received 2–40 ms later to the
    nanosecond, a random walk on a 0.01 tick, sizes log-normal to 5 decimals,
    consecutive ids, buys and sells at random."""
    rng = np.random.default_rng(seed)
    gaps = rng.exponential(NS_PER_DAY / 1e6 / n * 0.98, n)
    ms = np.minimum(np.cumsum(gaps).astype(np.int64), NS_PER_DAY // 1_000_000 - 1)
    ts = day * NS_PER_DAY + ms * 1_000_000
    first = 4_000_000_000 + seed * 10_000_000
    return {"trade_id": np.arange(first, first + n).astype(str), "timestamp": ts,
            "received_at": ts + rng.integers(2_000_000, 40_000_000, n),
            "price": np.round(30_000 + np.cumsum(rng.integers(-3, 4, n)) * 0.01, 2),
            "volume": np.maximum(np.round(rng.lognormal(-5, 1.5, n), 5), 0.00001),
            "side": np.where(rng.random(n) < 0.5, "buy", "sell")}


def as_table(venue: str, symbol: str, columns: dict[str, np.ndarray]) -> pa.Table:
    n = len(columns["timestamp"])
    utc = pa.timestamp("ns", tz="UTC")
    arrays = {"venue": pa.array(np.full(n, venue)), "symbol": pa.array(np.full(n, symbol)),
              **{k: pa.array(v, utc if k in ("timestamp", "received_at") else None)
                 for k, v in columns.items()}}
    return pa.table([arrays[name] for name in TRADES.names], schema=full_schema(TRADES))


def as_rows(venue: str, symbol: str, columns: dict[str, np.ndarray]) -> list[tuple]:
    """The same trades as the rows a sink or ``TickStore.write`` takes."""
    n = len(columns["timestamp"])
    return list(zip(repeat(venue, n), repeat(symbol, n),
                    *(columns[k].tolist() for k in TRADES.names[2:]), strict=True))


def synthetic_trades(n: int, venue: str, symbol: str, day: int, seed: int) -> pa.Table:
    return as_table(venue, symbol, synthetic_columns(n, day, seed))


def _partitions() -> list[tuple[str, str, int]]:
    return [(v, s, DAY0 + d) for v in VENUES for s in SYMBOLS for d in range(DAYS)]


def _timed(f) -> float:
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def bench_append(tmp: Path, n: int = 1_000_000, runs: int = 3) -> dict:
    parts = [("binance", s, synthetic_columns(n // 2, DAY0, i)) for i, s in enumerate(SYMBOLS[:2])]
    table = pa.concat_tables([as_table(*p) for p in parts])
    lake = median_of(lambda: n / _timed(lambda: append(tmp / f"a-{time.monotonic_ns()}", table)),
                     runs)
    m = 200_000
    rows = as_rows(*parts[0])[:m]

    def sqlite() -> float:
        with TickStore(tmp / f"a-{time.monotonic_ns()}.sqlite") as store:
            return m / _timed(lambda: store.write(rows))

    base = median_of(sqlite, runs)
    return {"lake_append_trades_per_s": lake, "sqlite_append_trades_per_s": base,
            "lake_append_vs_sqlite": lake / base}


def _flush_cost(sink, batch, runs: int = 5) -> tuple[float, float, float]:
    """A flush of ``batch`` while another thread spins as the receive loop would: the
    flush's wall time, the receive thread's time lost to it (its spins in that time
    against its spins alone), and its longest pause; medians of ``runs`` (ms)."""
    def spin(stop: threading.Event, out: list) -> None:
        count, longest, last = 0, 0.0, time.perf_counter()
        while not stop.is_set():
            sum(range(20))
            now = time.perf_counter()
            longest, last, count = max(longest, now - last), now, count + 1
        out.extend([count, longest])

    def alone(seconds: float) -> float:
        stop, out = threading.Event(), []
        t = threading.Thread(target=spin, args=(stop, out))
        t.start()
        time.sleep(seconds)
        stop.set()
        t.join()
        return out[0] / seconds

    walls, lost, pauses = [], [], []
    for _ in range(runs):
        rate = alone(0.2)
        stop, out = threading.Event(), []
        t = threading.Thread(target=spin, args=(stop, out))
        t.start()
        time.sleep(0.02)
        before = time.perf_counter()
        sink.write(batch(), [])
        wall = time.perf_counter() - before
        time.sleep(0.02)
        stop.set()
        t.join()
        spun = wall + 0.04
        walls.append(wall * 1e3)
        lost.append(max(0.0, spun - out[0] / rate) * 1e3)
        pauses.append(out[1] * 1e3)
    return statistics.median(walls), statistics.median(lost), statistics.median(pauses)


def bench_flush_stall(tmp: Path, n: int = 20_000) -> dict:
    """One flush of ``n`` trades (a second of a busy feed at 20k trades/s)."""
    rows = as_rows("binance", "BTC-USDT", synthetic_columns(n, DAY0, 7))
    out = {}
    lake = ParquetSink(tmp / "stall-lake")
    lake.open()
    sqlite = SQLiteSink(tmp / "stall.sqlite")
    from rtkit.sinks import RunInfo

    sqlite.open(RunInfo("bench", "binance", ["BTC-USDT"], "ws://127.0.0.1:1/ws"))
    ids = iter(range(10**9))

    def fresh_rows():  # new ids each flush: SQLite inserts them all, as in a live run
        k = next(ids)
        return [(v, s, f"{k}-{t}", *rest) for v, s, t, *rest in rows]

    from rtkit.pipeline import Batch

    for name, sink in (("lake", lake), ("sqlite", sqlite)):
        wall, lost, pause = _flush_cost(sink, lambda: Batch(fresh_rows(), [], []))
        out[f"{name}_flush_20k_ms"] = wall
        out[f"{name}_flush_20k_receive_lost_ms"] = lost
        out[f"{name}_flush_20k_longest_pause_ms"] = pause
    sqlite.close()
    out["lake_vs_sqlite_flush_receive_lost"] = (out["lake_flush_20k_receive_lost_ms"]
                                                / out["sqlite_flush_20k_receive_lost_ms"])
    return out


def _lake_client(url: str, n: int) -> dict:
    out = subprocess.run([sys.executable, "-m", "benchmarks.lake_clients", "rtkit_collector_lake",
                          url, str(n)], capture_output=True, text=True, timeout=300)
    if out.returncode:
        raise RuntimeError(f"lake client failed:\n{out.stderr[-2000:]}")
    import json

    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_live(n: int = 200_000, k: int = 3) -> dict:
    """Rounds of the lake-only Collector, the SQLite Collector and the bare loop."""
    import random

    names = ["websocket_app", "rtkit_collector", "rtkit_collector_lake"]
    runs: dict[str, list[dict]] = {name: [] for name in names}
    for _ in range(k):
        order = names[:]
        random.shuffle(order)
        for name in order:
            with live.feed(n) as url:
                runs[name].append(_lake_client(url, n) if name.endswith("_lake")
                                  else live.client(name, url, n))
    out = {"ws_lake_collector_stored_frames_per_s":
           statistics.median(live.rate(r) for r in runs["rtkit_collector_lake"]),
           "ws_lake_collector_received_frames_per_s":
           statistics.median(live.rate(r, "received") for r in runs["rtkit_collector_lake"]),
           "ws_lake_collector_store_lag_ms":
           statistics.median(r["store_lag_s"] * 1e3 for r in runs["rtkit_collector_lake"]),
           "ws_lake_live_bytes_per_trade":
           statistics.median(r["bytes_per_trade"] for r in runs["rtkit_collector_lake"])}
    out["ws_rtkit_lake_vs_websocket_app"] = live.paired_ratio(runs["rtkit_collector_lake"],
                                                              runs["websocket_app"])
    out["ws_rtkit_sqlite_vs_websocket_app_same_rounds"] = live.paired_ratio(
        runs["rtkit_collector"], runs["websocket_app"])
    out["ws_rtkit_lake_vs_sqlite"] = live.paired_ratio(runs["rtkit_collector_lake"],
                                                       runs["rtkit_collector"])
    return out


def build(root: Path, db: Path, n: int) -> dict:
    """The synthetic lake (one file per partition, as compaction leaves it) and the
    same trades in SQLite (TickStore's schema: key and time index)."""
    per = n // len(_partitions())
    TickStore(db).close()
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-262144")  # 256 MiB: the key tree stays cached
    # the time index is made once after the load (faster than row by row): the same file
    indexes = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND "
                           "tbl_name = 'ticks' AND sql IS NOT NULL").fetchall()
    for name, _ in indexes:
        conn.execute(f"DROP INDEX {name}")
    lake_s = sqlite_s = 0.0
    for seed, (venue, symbol, day) in enumerate(_partitions()):
        columns = synthetic_columns(per, day, seed)
        table = as_table(venue, symbol, columns)
        lake_s += _timed(lambda table=table: append(root, table))
        rows = as_rows(venue, symbol, columns)
        t = time.perf_counter()
        with conn:
            conn.executemany(TRADES.insert_sql(), rows)
        sqlite_s += time.perf_counter() - t
        print(f"  built {seed + 1}/{len(_partitions())} partitions", file=sys.stderr, flush=True)
    t = time.perf_counter()
    for _, sql in indexes:
        conn.execute(sql)
    sqlite_s += time.perf_counter() - t
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    size = sum(f.stat().st_size for f in root.glob("trades/**/*.parquet"))
    db_size = sum(p.stat().st_size for p in db.parent.glob(db.name + "*"))
    return {"lake_trades": per * len(_partitions()), "lake_build_s": lake_s,
            "sqlite_build_s": sqlite_s, "lake_bytes_per_trade": size / (per * len(_partitions())),
            "sqlite_bytes_per_trade": db_size / (per * len(_partitions()))}


DUCK_VWAP = """
SELECT time_bucket(INTERVAL 1 minute, timestamp) AS minute,
       sum(price * volume) / sum(volume) AS vwap, sum(volume) AS volume
FROM read_parquet('{root}/trades/*/*/*/*.parquet', hive_partitioning = true)
WHERE venue = '{venue}' AND symbol = '{symbol}' AND date = '{date}'
GROUP BY minute ORDER BY minute"""
DUCK_VWAP_UNIQUE = """
SELECT time_bucket(INTERVAL 1 minute, timestamp) AS minute,
       sum(price * volume) / sum(volume) AS vwap, sum(volume) AS volume
FROM (SELECT * FROM read_parquet('{root}/trades/*/*/*/*.parquet', hive_partitioning = true)
      WHERE venue = '{venue}' AND symbol = '{symbol}' AND date = '{date}'
      QUALIFY row_number() OVER (PARTITION BY trade_id ORDER BY received_at) = 1)
GROUP BY minute ORDER BY minute"""
DUCK_VWAP_ALL = """
SELECT venue, symbol, time_bucket(INTERVAL 1 minute, timestamp) AS minute,
       sum(price * volume) / sum(volume) AS vwap
FROM read_parquet('{root}/trades/*/*/*/*.parquet', hive_partitioning = true)
GROUP BY ALL"""
SQLITE_VWAP = """
SELECT timestamp / 60000000000 AS minute, sum(price * volume) / sum(volume), sum(volume)
FROM ticks WHERE venue = ? AND symbol = ? AND timestamp >= ? AND timestamp < ?
GROUP BY minute ORDER BY minute"""


def _pandas_vwap(frame):
    frame = frame.assign(minute=frame["timestamp"].dt.floor("1min"),
                         pv=frame["price"] * frame["volume"])
    g = frame.groupby("minute", observed=True)[["pv", "volume"]].sum()
    return g["pv"] / g["volume"]


def bench_queries(root: Path, db: Path, runs: int = 3) -> dict:
    import duckdb
    import pyarrow.parquet as pq

    venue, symbol, date = QUERY
    out: dict = {}
    con = duckdb.connect()
    sql = DUCK_VWAP.format(root=root, venue=venue, symbol=symbol, date=date)
    minutes = len(con.execute(sql).fetchall())
    out["duckdb_vwap_1day_s"] = median_of(lambda: _timed(lambda: con.execute(sql).fetchall()),
                                          runs)
    plan = con.execute("EXPLAIN ANALYZE " + sql).fetchall()[0][1]
    scanned = re.search(r"Scanning Files: (\d+)/(\d+)", plan)
    if scanned:
        out["duckdb_vwap_files_opened"] = int(scanned.group(1))
        out["duckdb_vwap_files_in_lake"] = int(scanned.group(2))
    unique = DUCK_VWAP_UNIQUE.format(root=root, venue=venue, symbol=symbol, date=date)
    out["duckdb_vwap_1day_dedup_s"] = median_of(
        lambda: _timed(lambda: con.execute(unique).fetchall()), runs)
    day = (np.datetime64(date, "D").astype(np.int64)) * NS_PER_DAY
    conn = sqlite3.connect(db)
    args = (venue, symbol, int(day), int(day + NS_PER_DAY))
    assert len(conn.execute(SQLITE_VWAP, args).fetchall()) == minutes
    out["sqlite_vwap_1day_s"] = median_of(
        lambda: _timed(lambda: conn.execute(SQLITE_VWAP, args).fetchall()), runs)
    conn.close()
    out["duckdb_vs_sqlite_vwap_1day"] = out["sqlite_vwap_1day_s"] / out["duckdb_vwap_1day_s"]
    folder = root / "trades" / f"venue={venue}" / f"symbol={symbol}" / f"date={date}"
    out["pandas_vwap_1day_s"] = median_of(
        lambda: _timed(lambda: _pandas_vwap(pq.read_table(folder).to_pandas())), runs)

    every = DUCK_VWAP_ALL.format(root=root)
    out["duckdb_vwap_all_s"] = median_of(lambda: _timed(lambda: con.execute(every).fetchall()),
                                         runs)
    folders = sorted(p for p in root.glob("trades/*/*/*") if p.is_dir())
    out["pandas_vwap_all_s"] = median_of(lambda: _timed(
        lambda: [_pandas_vwap(pq.read_table(f).to_pandas()) for f in folders]), 1)
    con.close()
    out.update(bench_dask(root, runs))
    return out


def bench_dask(root: Path, runs: int) -> dict:
    """The same VWAPs through Dask on a ``LocalCluster`` of two worker processes (its
    start-up not counted)."""
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    venue, symbol, date = QUERY

    def vwap(filters):
        ddf = dd.read_parquet(str(root / "trades"), filters=filters,
                              columns=["timestamp", "price", "volume"])
        ddf = ddf.assign(minute=ddf["timestamp"].dt.floor("1min"),
                         pv=ddf["price"] * ddf["volume"])
        g = ddf.groupby("minute")[["pv", "volume"]].sum().compute()
        return g["pv"] / g["volume"]

    one = [("venue", "==", venue), ("symbol", "==", symbol), ("date", "==", date)]
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster, Client(cluster):
        vwap(one)  # the workers import what they need once
        return {"dask_vwap_1day_s": median_of(lambda: _timed(lambda: vwap(one)), runs),
                "dask_vwap_all_s": median_of(lambda: _timed(lambda: vwap(None)), 1)}


def bench_compaction(tmp: Path, n: int = 1_000_000, flush: int = 2_000) -> dict:
    """``n`` trades of one partition written as a live sink writes them (one file per
    flush of ``flush`` trades), then compacted: bytes before and after, and speed."""
    table = synthetic_trades(n, "binance", "BTC-USDT", DAY0, 3)
    root = tmp / "compaction"
    sink = ParquetSink(root)
    sink.open()
    for i in range(0, n, flush):
        sink._writer.append(table.slice(i, flush))
    files = list(root.glob("trades/**/*.parquet"))
    before = sum(f.stat().st_size for f in files)
    took = _timed(lambda: compact(root, min_age_s=0))
    after = sum(f.stat().st_size for f in root.glob("trades/**/*.parquet"))
    return {"lake_small_files_bytes_per_trade": before / n,
            "lake_compacted_bytes_per_trade": after / n,
            "compact_trades_per_s": n / took, "compact_files_in": len(files)}


def run() -> dict:
    out: dict = {}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        out.update(bench_append(tmp))
        out.update(bench_flush_stall(tmp))
        out.update(bench_compaction(tmp))
    out.update(bench_live())
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        out.update(build(tmp / "lake", tmp / "lake.sqlite", LAKE_TRADES))
        out.update(bench_queries(tmp / "lake", tmp / "lake.sqlite"))
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
