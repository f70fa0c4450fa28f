"""rtkit.lake.to_dask on a distributed.LocalCluster of two worker processes: the same
records as rtkit.lake.read and DuckDB, and rtkit.analysis with the same numbers.

Worker processes share no memory with the client (as on a real cluster): the graph
carries folder paths, the workers read the files. One cluster for the module: it
starts in about half a second."""

from __future__ import annotations

import logging

import pandas as pd
import pytest

import rtkit
from tests.test_lake_read import digest, duckdb_rows, overlapping_lake, rows_of, trade, write

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0",
                                  silence_logs=logging.ERROR) as cluster, \
            distributed.Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    root = tmp_path_factory.mktemp("lake")
    expected = overlapping_lake(root)
    write(root, [trade(i, 0, "kraken", "ETH-USDT") for i in range(0, 500, 2)])
    return root, expected


def test_dask_gives_the_records_read_and_duckdb_give(client, lake):
    root, _ = lake
    ddf = rtkit.lake.to_dask(root)
    assert ddf.npartitions == len(list(root.glob("trades/*/*/*")))  # one per folder
    on_cluster = ddf.compute()
    assert client.run(lambda: True)  # the workers are there
    read = rtkit.lake.read(root)
    assert len(on_cluster) == len(read) == len(duckdb_rows(root))
    assert digest(rows_of(on_cluster)) == digest(rows_of(read)) == digest(duckdb_rows(root))
    filtered = rtkit.lake.to_dask(root, venue="kraken", start="2025-11-25",
                                  end="2025-11-25 12:00").compute()
    assert digest(rows_of(filtered)) == digest(rows_of(rtkit.lake.read(
        root, venue="kraken", start="2025-11-25", end="2025-11-25 12:00")))


def test_analysis_on_dask_gives_the_numbers_of_pandas(client, lake):
    root, _ = lake
    ddf, df = rtkit.lake.to_dask(root), rtkit.lake.read(root)
    a = rtkit.analysis
    bars = a.ohlcv(ddf, "1h")
    assert len(bars) > 24
    pd.testing.assert_frame_equal(bars, a.ohlcv(df, "1h"))
    pd.testing.assert_frame_equal(a.ohlcv(ddf, "5min", by=["venue", "symbol"]),
                                  a.ohlcv(df, "5min", by=["venue", "symbol"]))
    pd.testing.assert_series_equal(a.vwap(ddf), a.vwap(df))
    pd.testing.assert_series_equal(a.vwap(ddf, "1D", by="venue"), a.vwap(df, "1D", by="venue"))
    pd.testing.assert_frame_equal(a.imbalance(ddf, "15min"), a.imbalance(df, "15min"))
    pd.testing.assert_frame_equal(a.quality(ddf), a.quality(df))
    rejects = pd.DataFrame({"venue": ["binance", "okx", "binance"],
                            "reason": ["bad_json", "bad_price", "bad_price"]})
    gaps = pd.DataFrame({"venue": ["kraken", "binance"], "kind": ["ids", "reconnect"],
                         "missing": [5, None]})
    pd.testing.assert_frame_equal(a.quality(ddf, rejects, gaps), a.quality(df, rejects, gaps))
    legs = ("binance", "BTC-USDT"), ("kraken", "BTC-USDT")
    pd.testing.assert_frame_equal(a.spread(ddf, *legs, "7s"), a.spread(df, *legs, "7s"))
