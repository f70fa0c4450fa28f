"""``rtkit lake compact``: small files merged per partition, duplicates dropped, the
merged file swapped in atomically; settled files only; a second run does nothing."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from rtkit.cli import main
from rtkit.lake.compact import compact
from rtkit.sinks.parquet import ParquetSink
from tests.test_lake_writers import lake_files, lake_rows

DAY = 1_764_000_000_000_000_000  # 2025-11-24


def trade(symbol: str, i: int, received: int = 0, price: float = 1.0) -> tuple:
    return ("binance", symbol, str(i), DAY + i * 1_000_000, DAY + received, price, 0.5, "buy")


def age(paths, seconds: float = 3600) -> None:
    then = time.time() - seconds
    for p in paths:
        os.utime(p, (then, then))


def small_lake(root, writers: int = 2, flushes: int = 5) -> None:
    """``writers`` sinks writing the same trades of two symbols in ``flushes`` files each
    (a redundant pair of collectors): every trade ``writers`` times."""
    for w in range(writers):
        sink = ParquetSink(root)
        sink.open()
        for f in range(flushes):
            sink.write([trade(s, f * 100 + i, received=w) for s in ("BTC-USDT", "ETH-USDT")
                        for i in range(100)])
    age(lake_files(root))


def test_compact_merges_each_partition_into_one_file_without_duplicates(tmp_path, capsys):
    lake = tmp_path / "lake"
    small_lake(lake)
    raw, before = lake_rows(lake)
    assert len(raw) == 2 * len(before) == 2000 and len(lake_files(lake)) == 20
    assert main(["lake", "compact", str(lake), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["partitions_merged"], summary["files_in"], summary["files_out"]) == (2, 20, 2)
    assert (summary["rows_in"], summary["rows_out"], summary["duplicates_dropped"]) == (
        2000, 1000, 1000)
    files = lake_files(lake)
    assert len(files) == 2 and {f.parent.name for f in files} == {"date=2025-11-24"}
    raw, after = lake_rows(lake)
    assert sorted(raw) == after == before  # the same records, each once, now in the files
    for f in files:  # time order inside the merged file
        ts = pq.read_table(f).column("timestamp").to_pylist()
        assert ts == sorted(ts)
    assert not list(lake.glob("**/*.tmp"))


def test_a_second_run_does_nothing(tmp_path, capsys):
    lake = tmp_path / "lake"
    small_lake(lake)
    compact(lake, min_age_s=0)
    state = {f: f.stat().st_mtime_ns for f in lake_files(lake)}
    assert main(["lake", "compact", str(lake), "--min-age", "0"]) == 0
    assert "compacted 0 of 2 partitions: 0 files → 0" in capsys.readouterr().out
    assert {f: f.stat().st_mtime_ns for f in lake_files(lake)} == state


def test_young_files_and_temporaries_are_left_alone(tmp_path, capsys):
    lake = tmp_path / "lake"
    small_lake(lake, writers=1, flushes=3)
    sink = ParquetSink(lake)
    sink.open()
    sink.write([trade("BTC-USDT", 9000 + i) for i in range(10)])  # just written
    folder = lake / "trades" / "venue=binance" / "symbol=BTC-USDT" / "date=2025-11-24"
    fresh = max(folder.glob("part-*.parquet"), key=lambda p: p.stat().st_mtime)
    being_written = folder / "_part-0123456789ab-000001.parquet.tmp"
    being_written.write_bytes(b"PAR1 half a file")
    age([being_written], 60)  # a minute: a slow writer on a shared folder, still writing
    assert main(["lake", "compact", str(lake)]) == 0
    out = capsys.readouterr().out
    assert "merged 3 files of" in out and "1 files younger than 10 s left" in out
    assert fresh.exists() and being_written.read_bytes() == b"PAR1 half a file"
    assert len(list(folder.glob("part-*.parquet"))) == 2  # the merged file and the fresh one
    assert len(lake_rows(lake)[1]) == 2 * 300 + 10


def test_the_copy_kept_is_the_first_received_whatever_the_file_order(tmp_path):
    """Compaction keeps the copy a reader's dedup keeps: the lake reads the same before
    and after, whichever writer's file sorts first."""
    for name, first_writer_received in (("a", 5), ("b", 1)):
        lake = tmp_path / name
        for received, price in ((first_writer_received, 10.0), (3, 30.0)):
            sink = ParquetSink(lake)
            sink.open()
            sink.write([trade("BTC-USDT", 1, received=received, price=price)])
        age(lake_files(lake))
        before = lake_rows(lake)[1]
        compact(lake)
        raw, after = lake_rows(lake)
        assert sorted(raw) == after == before
        assert after[0][5] == (10.0 if first_writer_received < 3 else 30.0)


def test_compact_of_a_missing_lake_says_what_to_give(tmp_path, capsys):
    assert main(["lake", "compact", str(tmp_path / "nowhere")]) == 2
    assert "no lake at" in capsys.readouterr().err


def test_temporaries_a_killed_writer_left_an_hour_ago_are_removed(tmp_path):
    lake = tmp_path / "lake"
    small_lake(lake, writers=1, flushes=1)
    folder = lake_files(lake)[0].parent
    old, fresh = folder / "_part-dead-000001.parquet.tmp", folder / "_part-live-000001.parquet.tmp"
    old.write_bytes(b"PAR1 half")
    fresh.write_bytes(b"PAR1 half")
    age([old], 2 * 3600)
    assert compact(lake).stale_temporaries_removed == 1
    assert not old.exists() and fresh.exists()


def duckdb_unique_rows(lake) -> list[tuple]:
    """The lake through DuckDB, one row per key by the rule compaction keeps."""
    import duckdb

    sql = f"""
        SELECT venue, symbol, trade_id, epoch_ns(timestamp), epoch_ns(received_at), price,
               volume, side
        FROM read_parquet('{lake}/trades/*/*/*/*.parquet', hive_partitioning = true)
        QUALIFY row_number() OVER (PARTITION BY venue, symbol, trade_id
                                   ORDER BY received_at, timestamp, price, volume, side) = 1"""
    return sorted(duckdb.sql(sql).fetchall())


def test_duckdb_and_pyarrow_read_the_same_rows_before_and_after_compaction(tmp_path):
    """Copies of a key that differ (two collectors' receive times, a corrected price):
    every reader keeps the first received, before compaction and after."""
    import hashlib

    lake = tmp_path / "lake"
    for received, price in ((9, 2.0), (4, 3.0), (6, 1.0)):
        sink = ParquetSink(lake)
        sink.open()
        for f in range(3):
            sink.write([trade(s, f * 50 + i, received=received + (i % 3), price=price + i)
                        for s in ("BTC-USDT", "ETH-USDT") for i in range(50)])
    age(lake_files(lake))

    def digest(rows) -> str:
        return hashlib.sha256(repr(rows).encode()).hexdigest()

    before = {digest(lake_rows(lake)[1]), digest(duckdb_unique_rows(lake))}
    assert len(before) == 1
    compact(lake)
    assert {digest(lake_rows(lake)[1]), digest(duckdb_unique_rows(lake))} == before
    assert len(lake_files(lake)) == 2


def test_compaction_while_a_collector_writes_loses_nothing(tmp_path):
    """Files renamed in during a run are either merged (they were whole) or left for
    the next; only the files a run read are removed."""
    import threading

    lake, written = tmp_path / "lake", []
    lake.mkdir()
    done = threading.Event()

    def write() -> None:
        sink = ParquetSink(lake)
        sink.open()
        for f in range(60):
            rows = [trade("BTC-USDT", f * 20 + i) for i in range(20)]
            sink.write(rows)
            written.extend(r[:3] for r in rows)
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    runs = 0
    while not done.is_set() or runs < 2:
        compact(lake, min_age_s=0)
        runs += 1
    writer.join(30)
    compact(lake, min_age_s=0)
    raw, unique = lake_rows(lake)
    assert sorted(raw) == unique and [r[:3] for r in unique] == sorted(written)
    assert len(lake_files(lake)) == 1


def test_one_merge_reads_at_most_merge_rows_so_its_memory_is_bounded(tmp_path, monkeypatch):
    # a partition with more rows than one merge may hold: merged into several files of
    # at most MERGE_ROWS rows each; every record is still there, and runs again converge
    import rtkit.lake.compact as compaction

    lake = tmp_path / "lake"
    small_lake(lake, writers=2, flushes=10)  # 20 files of 100 rows a partition
    raw, before = lake_rows(lake)
    monkeypatch.setattr(compaction, "MERGE_ROWS", 500)
    report = compact(lake)
    assert report.merged and all(m.rows_in <= 500 for m in report.merged)
    summary = report.summary()
    assert summary["partitions_merged"] == 2 and summary["files_in"] == 40
    assert summary["files_out"] == len(report.merged) == 8  # 20 files in runs of 5
    assert lake_rows(lake)[1] == before  # each record, read once, as before
    for _ in range(6):  # runs again merge what is still small, then leave it alone
        age(lake_files(lake))
        again = compact(lake)
        assert all(m.rows_in <= 500 for m in again.merged)
        if not again.merged:
            break
    assert not again.merged and lake_rows(lake)[1] == before


COMPACT_PEAK = """
import json, os, sys, time
from pathlib import Path
import rtkit.lake.compact as compaction
from rtkit.sinks.parquet import ParquetSink
from tests.conftest import peak_rss_kib
lake, files, rows = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
compaction.MERGE_ROWS = 200_000
sink = ParquetSink(lake)
sink.open()
day = 1_764_000_000_000_000_000
for f in range(files):
    sink.write([("binance", "BTC-USDT", str(f * rows + k), day + (f * rows + k) * 1000,
                 day, 1.0 + k % 97, 0.5, "buy") for k in range(rows)])
then = time.time() - 3600
for p in lake.glob("**/*.parquet"):
    os.utime(p, (then, then))
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # the peak from here on: compaction's own
before = peak_rss_kib()
out = compaction.compact(lake).summary()
print(json.dumps({"growth_kib": peak_rss_kib() - before, "rows_in": out["rows_in"]}))
"""


@pytest.mark.skipif(not os.access("/proc/self/clear_refs", os.W_OK), reason="needs Linux")
def test_compaction_memory_does_not_grow_with_the_partition(tmp_path):
    # peak RSS of a child compacting 200k rows and then 800k rows of small files,
    # MERGE_ROWS 200k: a merged-whole partition would need about four times as much
    import subprocess
    import sys

    growth = {}
    for files in (10, 40):
        done = subprocess.run([sys.executable, "-c", COMPACT_PEAK, str(tmp_path / str(files)),
                               str(files), "20000"], capture_output=True, text=True,
                              timeout=300, cwd=Path(__file__).parent.parent)
        assert done.returncode == 0, done.stderr[-2000:]
        out = json.loads(done.stdout.strip().splitlines()[-1])
        assert out["rows_in"] == files * 20_000
        growth[files] = out["growth_kib"]
    assert growth[40] < 1.5 * growth[10] + 8 * 1024, growth
