"""Reading the lake and exporting into it: ``python -m benchmarks.lake_read [N]``.

A synthetic lake of N trades (default 1M; 2 venues × 2 symbols × 3 days, written
through the sink 50,000 rows a flush, so one file per partition and flush), read
whole through ``rtkit.lake.read``, ``connect`` (a count and the whole view into
pandas) and ``to_dask`` (on a two-process ``distributed.LocalCluster``); then the
same trades written a second time by another writer (every record twice on disk);
then ``rtkit.lake.export`` of an SQLite file of N trades. Medians of 3 runs.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.util import median_of

DAY = 1_764_028_800 * 10**9
MARKETS = [("binance", "BTC-USDT"), ("binance", "ETH-USDT"), ("kraken", "BTC-USDT"),
           ("kraken", "ETH-USDT")]
FLUSH_ROWS = 50_000


def seconds(fn, runs: int = 3) -> float:
    """Median wall time of ``fn()`` over ``runs`` runs."""
    def once() -> float:
        started = time.perf_counter()
        fn()
        return time.perf_counter() - started
    return median_of(once, runs)


def trades(n: int) -> list[tuple]:
    rng = np.random.default_rng(7)
    ts = DAY + np.sort(rng.integers(0, 3 * 86_400 * 10**9, n))
    price = 100 + rng.random(n)
    volume = rng.random(n)
    sides = ("buy", "sell")
    return [(*MARKETS[i % 4], str(i), int(ts[i]), int(ts[i]) + 2_000_000, float(price[i]),
             float(volume[i]), sides[i % 2]) for i in range(n)]


def write_lake(root: Path, rows: list[tuple]) -> None:
    from rtkit.sinks.parquet import ParquetSink

    sink = ParquetSink(root)
    sink.open()
    for start in range(0, len(rows), FLUSH_ROWS):
        sink.write(rows[start:start + FLUSH_ROWS])


def reads(root: Path, client) -> dict:
    import rtkit.lake

    out = {"read_s": seconds(lambda: rtkit.lake.read(root))}
    con = rtkit.lake.connect(root)
    out["duckdb_count_s"] = seconds(
        lambda: con.execute("SELECT count(*) FROM trades").fetchall())
    out["duckdb_df_s"] = seconds(lambda: con.execute("SELECT * FROM trades").df())
    out["dask_count_s"] = seconds(lambda: len(rtkit.lake.to_dask(root)))
    out["dask_vwap_1min_s"] = seconds(
        lambda: rtkit.analysis.vwap(rtkit.lake.to_dask(root), "1min"))
    out["pandas_vwap_1min_s"] = seconds(
        lambda: rtkit.analysis.vwap(rtkit.lake.read(root), "1min"))
    return out


def run(n: int = 1_000_000) -> dict:
    import distributed

    import rtkit.lake
    from rtkit.store import TickStore

    rows = trades(n)
    results: dict = {"trades": n}
    with tempfile.TemporaryDirectory() as tmp, \
            distributed.LocalCluster(n_workers=2, threads_per_worker=1,
                                     dashboard_address=":0",
                                     silence_logs=logging.ERROR) as cluster, \
            distributed.Client(cluster) as client:
        root = Path(tmp) / "lake"
        write_lake(root, rows)
        results.update({f"{k}": v for k, v in reads(root, client).items()})
        write_lake(root, rows)  # a second collector on the same markets
        results.update({f"twice_{k}": v for k, v in reads(root, client).items()})
        db = Path(tmp) / "t.sqlite"
        with TickStore(db) as store:
            store.write(rows)
        started = time.perf_counter()
        counts = rtkit.lake.export(db, Path(tmp) / "exported")
        took = time.perf_counter() - started
        results["export_rows_per_s"] = counts["trades"] / took
    return results


if __name__ == "__main__":
    for key, value in run(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000).items():
        print(f"{key:<32} {value:>14,.3f}")
