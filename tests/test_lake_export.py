"""SQLite → lake (``rtkit export DB --lake DIR``) with the sink's layout, idempotent on
read, and back (``rtkit import`` / ``rtkit.lake.to_store``) without DuckDB."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow.parquet as pq

import rtkit
from rtkit.cli import main
from rtkit.sinks.parquet import SCHEMA_VERSION
from rtkit.store import TickStore
from tests.test_lake_read import DAY, digest, duckdb_rows, rows_of, trade


def quote(i: int) -> tuple:
    ts = DAY + i * 10**9
    return ("binance", "BTC-USDT", ts, ts + 5, 99.5 + i, 1.0, 100.5 + i, 2.0, 1000 + i)


def filled_db(path) -> list[tuple]:
    rows = [trade(i, 0, v, s) for v, s in (("binance", "BTC-USDT"), ("kraken", "ETH/USD"))
            for i in range(250)]
    with TickStore(path) as store:
        store.write(rows, rejects=[(DAY, "binance", "bad_json", "x", "{", 1)],
                    records={"quotes": [quote(i) for i in range(30)]})
    return rows


def test_export_writes_every_kind_with_the_sinks_layout_and_reads_back_equal(tmp_path,
                                                                             capsys):
    db, lake = tmp_path / "t.sqlite", tmp_path / "lake"
    filled_db(db)
    assert main(["export", str(db), "--lake", str(lake), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"trades": 500, "quotes": 30}
    with TickStore(db, readonly=True) as store:
        from_sqlite = store.ticks()
    pd.testing.assert_frame_equal(rtkit.lake.read(lake), from_sqlite, check_categorical=False)
    quotes = rtkit.lake.read(lake, "quotes")
    assert quotes["seq"].tolist() == [1000 + i for i in range(30)]
    files = sorted(lake.glob("*/venue=*/symbol=*/date=*/part-*.parquet"))
    assert {f.relative_to(lake).parts[0] for f in files} == {"trades", "quotes"}
    for f in files:
        meta = pq.read_schema(f).metadata
        assert meta[b"rtkit.schema_version"] == SCHEMA_VERSION.encode()
        assert pq.ParquetFile(f).metadata.row_group(0).column(0).compression == "ZSTD"
    assert not list(lake.glob("**/*.tmp")) and not (lake / "rejects").exists()


def test_exporting_twice_gives_no_duplicate_on_read(tmp_path, capsys):
    db, lake = tmp_path / "t.sqlite", tmp_path / "lake"
    filled_db(db)
    assert main(["export", str(db), "--lake", str(lake)]) == 0
    once = rtkit.lake.read(lake)
    assert main(["export", str(db), "--lake", str(lake)]) == 0
    assert "exported quotes 30, trades 500" in capsys.readouterr().out
    files = list(lake.glob("trades/*/*/*/*.parquet"))
    assert sum(pq.ParquetFile(f).metadata.num_rows for f in files) == 1000  # twice on disk
    pd.testing.assert_frame_equal(rtkit.lake.read(lake), once)
    assert len(duckdb_rows(lake)) == 500 == len(rtkit.lake.read(lake))
    assert len(rtkit.lake.read(lake, "quotes")) == 30


def test_a_slice_goes_back_into_sqlite_without_duckdb(tmp_path, capsys):
    db, lake = tmp_path / "t.sqlite", tmp_path / "lake"
    filled_db(db)
    rtkit.lake.export(db, lake)
    back = tmp_path / "back.sqlite"
    assert main(["import", str(lake), "--db", str(back), "--venue", "kraken"]) == 0
    assert "imported 250 new trades" in capsys.readouterr().out
    assert rtkit.lake.read(lake, venue="kraken").pipe(rtkit.lake.to_store, back) == 0  # known
    with TickStore(back, readonly=True) as store:
        assert digest(rows_of(store.ticks())) == digest(rows_of(
            rtkit.lake.read(lake, venue="kraken")))
    assert rtkit.lake.read(lake, "quotes").pipe(rtkit.lake.to_store, back, "quotes") == 30


def test_swaps_without_a_block_time_stay_in_sqlite_and_are_counted(tmp_path):
    from rtkit.kinds.onchain import BLOCKS, SWAPS

    def swap(i: int, ts: int | None) -> tuple:
        return (f"0x{i:064x}", 0, 100 + i, f"0xb{i}", ts, DAY + 5, "uniswap", "WETH-USDC",
                "0xpool", 3, "0xs", "0xr", "-1000000000000000000000", "5", "7922816251", "1",
                -5, 3000.5, 1.2, "buy")

    with TickStore(tmp_path / "c.sqlite", kinds=(BLOCKS, SWAPS)) as store:
        store.write(records={"swaps": [swap(1, DAY), swap(2, None), swap(3, DAY + 86_400 * 10**9)],
                             "blocks": [("0xb1", 101, "0xb0", DAY, None, 5, DAY)]})
    counts = rtkit.lake.export(tmp_path / "c.sqlite", tmp_path / "lake")
    assert counts == {"trades": 0, "swaps": 2, "skipped_swaps": 1}
    swaps = rtkit.lake.read(tmp_path / "lake", "swaps")
    assert swaps["amount0"].tolist() == ["-1000000000000000000000"] * 2  # exact, as text
    assert not (tmp_path / "lake" / "blocks").exists()
