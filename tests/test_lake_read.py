"""Reading the lake: rtkit.lake.read (pyarrow → pandas) and rtkit.lake.connect (DuckDB)
give every record once, the same rows as a plain pyarrow read with the lake's rule,
and open only the folders a filter needs."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

import rtkit
from rtkit.frame import empty_frame
from rtkit.lake import files, frames
from rtkit.sinks.parquet import ParquetSink
from rtkit.store import TickStore

DAY = 1_764_028_800 * 10**9  # 2025-11-25 00:00 UTC
STEP = 3_600 * 10**9 // 7  # trades spread over several days and both UTC edges


def trade(i: int, received_late: int = 0, venue: str = "binance", symbol: str = "BTC-USDT",
          ) -> tuple:
    ts = DAY - 5 * 3_600 * 10**9 + i * STEP
    side = ("buy", "sell", None)[i % 3]
    return (venue, symbol, str(i), ts, ts + 1_000_000 + received_late, 100.0 + (i % 97) / 8,
            0.5 + (i % 13) / 4, side)


def write(root: Path, rows: list[tuple], per_file: int = 40) -> ParquetSink:
    """The rows through one writer (its own id), ``per_file`` rows a flush."""
    sink = ParquetSink(root)
    sink.open()
    for start in range(0, len(rows), per_file):
        sink.write(rows[start:start + per_file])
    return sink


def overlapping_lake(root: Path) -> list[tuple]:
    """Two collectors on the same markets, their runs overlapping by half, the second
    receiving the shared trades later; returns the rows read back must hold."""
    markets = [("binance", "BTC-USDT"), ("binance", "ETH/USD"), ("kraken", "BTC-USDT")]
    first = [trade(i, 0, v, s) for v, s in markets for i in range(0, 400)]
    second = [trade(i, 7_000, v, s) for v, s in markets for i in range(200, 600)]
    write(root, first)
    write(root, second, per_file=33)
    expected = {(r[0], r[1], r[2]): r for r in second}
    expected.update({(r[0], r[1], r[2]): r for r in first})  # received first: kept
    return sorted(expected.values(), key=repr)


def rows_of(df: pd.DataFrame) -> list[tuple]:
    """A frame's rows in the sink's column order, as plain values."""
    out = []
    for v, s, tid, ts, recv, price, vol, side in zip(
            df["venue"].astype(str), df["symbol"].astype(str), df["trade_id"].astype(str),
            df["timestamp"].array.asi8, df["received_at"].array.asi8, df["price"],
            df["volume"], df["side"].astype(object), strict=True):
        out.append((v, s, tid, int(ts), int(recv), float(price), float(vol),
                    None if pd.isna(side) else side))
    return sorted(out, key=repr)


def digest(rows: list[tuple]) -> str:
    return hashlib.sha256(repr(sorted(rows, key=repr)).encode()).hexdigest()


def duckdb_rows(root: Path, where: str = "") -> list[tuple]:
    con = rtkit.lake.connect(root)
    return sorted(con.execute(
        "SELECT venue, symbol, trade_id, epoch_ns(timestamp), epoch_ns(received_at), price, "
        f"volume, side FROM trades {where}").fetchall(), key=repr)


def pyarrow_rows(root: Path) -> list[tuple]:
    """Plain pyarrow: the hive dataset, then the lake's rule by hand (per folder and key,
    the row received first)."""
    table = ds.dataset(root / "trades", partitioning="hive", format="parquet").to_table()
    for name in ("timestamp", "received_at"):  # ns as int: to_pylist's datetimes lose them
        i = table.schema.get_field_index(name)
        table = table.set_column(i, name, pc.cast(table.column(name), pa.int64()))
    best: dict[tuple, tuple] = {}
    for r in table.to_pylist():
        row = (r["venue"], r["symbol"], r["trade_id"], r["timestamp"], r["received_at"],
               r["price"], r["volume"], r["side"])
        key = (r["venue"], r["symbol"], str(r["date"]), r["trade_id"])
        if key not in best or row[4] < best[key][4]:
            best[key] = row
    return sorted(best.values(), key=repr)


def test_read_duckdb_and_pyarrow_give_each_record_once_with_overlapping_writers(tmp_path):
    expected = overlapping_lake(tmp_path)
    assert len(expected) == 3 * 600
    files_written = list(tmp_path.glob("trades/*/*/*/*.parquet"))
    assert sum(pq.ParquetFile(f).metadata.num_rows for f in files_written) == 3 * 800
    got = rows_of(rtkit.lake.read(tmp_path))
    assert len(got) == len(duckdb_rows(tmp_path)) == len(pyarrow_rows(tmp_path)) == 1800
    assert digest(got) == digest(duckdb_rows(tmp_path)) == digest(pyarrow_rows(tmp_path)) \
        == digest(expected)


def test_copies_received_at_the_same_time_are_decided_by_the_other_columns(tmp_path):
    """The same trade from two writers with one receive time but another price: every
    reader keeps the same copy (the lesser price), whichever file it read first."""
    rows = [trade(i) for i in range(50)]
    dearer = [r[:5] + (r[5] + 1.0,) + r[6:] for r in rows[10:20]]
    write(tmp_path, dearer)
    write(tmp_path, rows[::-1])
    write(tmp_path, [trade(i, 5) for i in range(15, 25)])  # later copies
    got = rows_of(rtkit.lake.read(tmp_path))
    assert digest(got) == digest(duckdb_rows(tmp_path)) == digest(rows)


def test_read_has_the_dtypes_and_order_of_c_df(tmp_path):
    rows = [trade(i) for i in range(300)]
    write(tmp_path / "lake", rows[::-1])  # written newest first
    with TickStore(tmp_path / "t.sqlite") as store:
        store.write(rows)
        from_sqlite = store.ticks()
    df = rtkit.lake.read(tmp_path / "lake")
    assert df.dtypes.astype(str).to_dict() == empty_frame().dtypes.astype(str).to_dict()
    assert list(df.columns) == list(from_sqlite.columns)
    pd.testing.assert_frame_equal(df, from_sqlite, check_categorical=False)
    assert df["timestamp"].is_monotonic_increasing


def test_text_ids_stay_strings_as_in_c_df(tmp_path):
    rows = [trade(i)[:2] + (f"id-{i}",) + trade(i)[3:] for i in range(5)]
    rows.append(trade(6)[:2] + ("007",) + trade(6)[3:])  # not canonical: not a number
    write(tmp_path, rows)
    df = rtkit.lake.read(tmp_path)
    assert str(df["trade_id"].dtype) == str(pd.array(["x"], "string").dtype)
    assert "007" in set(df["trade_id"])


def test_filters_open_only_the_folders_they_need_and_cut_at_start_and_end(tmp_path,
                                                                          monkeypatch):
    overlapping_lake(tmp_path)
    opened: list[str] = []
    real = pq.read_table

    def spy(path, *args, **kwargs):
        opened.append(str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(frames.pq, "read_table", spy)
    start, end = pd.Timestamp("2025-11-25 10:00", tz="UTC"), pd.Timestamp("2025-11-26", tz="UTC")
    df = rtkit.lake.read(tmp_path, venue="binance", symbol="ETH/USD", start=start, end=end)
    assert opened and {Path(p).parent.relative_to(tmp_path).as_posix() for p in opened} == {
        "trades/venue=binance/symbol=ETH%2FUSD/date=2025-11-25"}
    assert (df["timestamp"] >= start).all() and (df["timestamp"] < end).all()
    whole = rtkit.lake.read(tmp_path)
    inside = whole[(whole["venue"] == "binance") & (whole["symbol"] == "ETH/USD")
                   & (whole["timestamp"] >= start) & (whole["timestamp"] < end)]
    assert len(df) == len(inside) > 0
    assert digest(rows_of(df)) == digest(rows_of(inside))
    where = (f"WHERE venue = 'binance' AND symbol = 'ETH/USD' AND timestamp >= "
             f"'{start}' AND timestamp < '{end}'")
    assert digest(duckdb_rows(tmp_path, where)) == digest(rows_of(df))


def test_duckdb_prunes_folders_below_its_dedup(tmp_path):
    overlapping_lake(tmp_path)
    con = rtkit.lake.connect(tmp_path)
    plan = con.execute("EXPLAIN SELECT count(*) FROM trades WHERE venue = 'kraken' "
                       "AND date = '2025-11-25'").fetchall()[0][1]
    total = len(list(tmp_path.glob("trades/*/*/*/*.parquet")))
    wanted = len(list(tmp_path.glob("trades/venue=kraken/*/date=2025-11-25/*.parquet")))
    assert f"Scanning Files: {wanted}/{total}" in plan


def compact(folder: Path) -> None:
    """What compaction does to a folder: its merged file renamed in, then its inputs gone."""
    inputs = files.files_in(str(folder))
    merged = pa.concat_tables([pq.read_table(p) for p in inputs])
    temporary = folder / "_part-compacted-000001.parquet.tmp"
    pq.write_table(merged, temporary, compression="zstd")
    os.replace(temporary, folder / "part-compacted-000001.parquet")
    for p in inputs:
        os.unlink(p)


def test_a_file_compaction_removes_under_a_read_makes_it_list_again(tmp_path, monkeypatch):
    expected = overlapping_lake(tmp_path)
    real = pq.read_table
    swapped: list[Path] = []

    def compacting_first(path, *args, **kwargs):
        if not swapped:  # compaction runs between the listing and this read
            swapped.append(Path(path).parent)
            compact(Path(path).parent)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(frames.pq, "read_table", compacting_first)
    assert digest(rows_of(rtkit.lake.read(tmp_path))) == digest(expected)
    assert swapped and (swapped[0] / "part-compacted-000001.parquet").exists()


def test_a_read_gives_up_after_a_bounded_number_of_vanished_files(tmp_path, monkeypatch):
    overlapping_lake(tmp_path)
    calls = []

    def always_gone(path, *args, **kwargs):
        calls.append(path)
        raise FileNotFoundError(path)

    monkeypatch.setattr(frames.pq, "read_table", always_gone)
    with pytest.raises(FileNotFoundError):
        rtkit.lake.read(tmp_path)
    assert len(calls) == files.READ_ATTEMPTS


def test_query_runs_again_when_duckdb_met_a_vanished_file(tmp_path):
    overlapping_lake(tmp_path)
    one = sorted(tmp_path.glob("trades/*/*/*/*.parquet"))[0]
    con = duckdb.connect()
    con.execute(f"CREATE VIEW gone AS SELECT * FROM read_parquet(['{one}'])")
    one.unlink()
    with pytest.raises(duckdb.IOException) as raised:
        con.execute("SELECT count(*) FROM gone").fetchall()
    assert files.vanished(raised.value)

    class Flaky:
        """A connection whose first query meets that vanished file."""

        def __init__(self):
            self.tries = 0

        def execute(self, sql, params=None):
            self.tries += 1
            if self.tries == 1:
                raise raised.value
            return rtkit.lake.connect(tmp_path).execute(sql, params)

    flaky = Flaky()
    out = rtkit.lake.query(flaky, "SELECT count(*) AS n FROM trades")
    assert flaky.tries == 2 and out["n"].iloc[0] > 0


def test_every_lake_kind_has_a_view_and_kinds_the_lake_cannot_hold_are_refused(tmp_path):
    overlapping_lake(tmp_path)
    con = rtkit.lake.connect(tmp_path)
    views = {name for (name,) in con.execute(
        "SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
    assert {"trades", "quotes", "book", "swaps"} <= views
    assert con.execute("SELECT count(*) FROM quotes").fetchall() == [(0,)]
    assert rtkit.lake.read(tmp_path, "quotes").empty
    with pytest.raises(ValueError, match="no venue, symbol column"):
        rtkit.lake.read(tmp_path, "blocks")
    with pytest.raises(FileNotFoundError, match="no lake at"):
        rtkit.lake.read(tmp_path / "nowhere")


def test_ids_keep_their_text_when_compared(tmp_path):
    """``pc`` casts are exact: a 19-digit id beyond int64 stays text."""
    big = trade(1)[:2] + (str(2**63),) + trade(1)[3:]
    write(tmp_path, [trade(0), big])
    df = rtkit.lake.read(tmp_path)
    assert str(2**63) in set(df["trade_id"].astype(str))
    assert pc.cast(pa.array(["1"]), pa.int64()).to_pylist() == [1]


def test_rtkit_lake_is_an_attribute_imported_on_first_use():
    from tests.test_lazy_import import fresh

    out = fresh("import sys, rtkit\n"
                "print('duckdb' in sys.modules or 'rtkit.lake' in sys.modules)\n"
                "print(rtkit.lake.read.__module__, 'lake' in dir(rtkit), 'dask' in sys.modules)")
    assert out.splitlines() == ["False", "rtkit.lake.read True False"]
