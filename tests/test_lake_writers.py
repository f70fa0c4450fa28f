"""Many writers, one lake: every file has one writer, and two collectors on one
market read back as each trade once, the union of what either saw.

``lake_rows`` is this suite's own reader (file by file, the partition columns from
the path, copies of a key dropped by the rule compaction keeps, re-listed when a
file vanishes). It stands in for ``rtkit.lake.read`` until that lands: switch to it then.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import rtkit
from rtkit.sim import Simulator
from tests.conftest import wait_for

TRADE_COLUMNS = ("venue", "symbol", "trade_id", "timestamp", "received_at", "price", "volume",
                 "side")
FILE_NAME = re.compile(r"^part-([0-9a-f]{12})-\d{6}\.parquet$")


class Vanished(Exception):
    """A file listed was gone before it was read, or the listing changed meanwhile."""


def lake_files(root, kind: str = "trades") -> list[Path]:
    """Every whole file of ``kind``: ``*.parquet`` names, no ``_…tmp``."""
    return sorted(p for p in Path(root, kind).glob("venue=*/symbol=*/date=*/*.parquet")
                  if not p.name.startswith(("_", ".")))


def _read_once(root, kind: str) -> list[tuple]:
    files = lake_files(root, kind)
    rows = []
    for path in files:
        parts = dict(unquote(p).split("=", 1) for p in path.relative_to(root).parts[1:-1])
        try:
            table = pq.ParquetFile(path).read()
        except FileNotFoundError as exc:
            raise Vanished(str(path)) from exc
        columns = {n: (table.column(n).cast(pa.int64()) if n in ("timestamp", "received_at")
                       else table.column(n)).to_pylist() for n in table.column_names}
        for i in range(table.num_rows):
            rows.append(tuple(parts[n] if n in parts else columns[n][i] for n in TRADE_COLUMNS))
    if set(files) - set(lake_files(root, kind)):
        raise Vanished("a file read was removed meanwhile (compaction): read again")
    return rows


def lake_rows(root, kind: str = "trades", attempts: int = 20) -> tuple[list[tuple], list[tuple]]:
    """``(raw rows, unique rows)`` of the lake's trades; unique: one per (venue, symbol,
    trade_id), the first received (then the smallest other columns), sorted."""
    for attempt in range(attempts):
        try:
            raw = _read_once(root, kind)
            break
        except Vanished:
            if attempt == attempts - 1:
                raise
    best: dict[tuple, tuple] = {}
    for row in raw:
        key = row[:3]
        order = (row[4], row[3], *row[5:])
        if key not in best or order < (best[key][4], best[key][3], *best[key][5:]):
            best[key] = row
    return raw, sorted(best.values())


def sqlite_ids(db) -> set[tuple]:
    return set(sqlite3.connect(db).execute("SELECT venue, symbol, trade_id FROM ticks"))


@pytest.mark.usefixtures("no_thread_leak")
def test_two_collectors_on_one_market_give_each_trade_once_and_the_union(tmp_path):
    """Both connect to one simulator: each gets the trades made for its connection,
    plus the other's recent ones the simulator re-sends on subscribe. Neither alone
    has every trade; the lake, read by key, has each exactly once."""
    lake, count = tmp_path / "lake", 3000
    with Simulator("binance", rate=2000, count=count, seed=5, overlap=400) as sim:
        collectors = [rtkit.collect("binance", ["BTC-USDT", "ETH-USDT"], url=sim.url,
                                    db=tmp_path / f"{i}.sqlite", lake=lake, name=f"copy-{i}",
                                    flush_interval_s=0.05) for i in range(2)]
        try:
            wait_for(lambda: sim.all_sent and len(lake_rows(lake)[1]) >= count, 30, 0.05)
        finally:
            for c in collectors:
                c.stop()
    expected = {("binance", t.symbol, str(t.trade_id)) for t in sim.trades}
    raw, unique = lake_rows(lake)
    assert len(expected) == count
    assert [r[:3] for r in unique] == sorted(expected)  # each trade once: the union
    assert len(raw) > len(unique)  # both collectors wrote some of the same trades
    seen = [sqlite_ids(tmp_path / f"{i}.sqlite") for i in range(2)]
    assert seen[0] < expected and seen[1] < expected and seen[0] | seen[1] == expected
    writers = {FILE_NAME.match(p.name).group(1) for p in lake_files(lake)}
    assert len(writers) == 2  # every file names its writer; one id per collector


_WRITER = textwrap.dedent("""
    import json, sys
    from rtkit.sinks.parquet import ParquetSink
    root, me, flushes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    sink = ParquetSink(root)
    sink.open()
    day = 1_764_000_000_000_000_000
    written = []
    for f in range(flushes):
        # every writer writes the same trades of the same partitions, flush by flush
        rows = [("binance", sym, str(f * 10 + i), day + f * 10 + i, day + me, 1.0 + i, 0.5,
                 "buy") for sym in ("BTC-USDT", "ETH-USDT") for i in range(10)]
        sink.write(rows)
    print(json.dumps(sink.writer_id))
""")


def test_writers_in_several_processes_never_share_a_file(tmp_path):
    """Three processes write the same partitions at once, each its own file names:
    the files on disk are exactly the sum of what each wrote, none overwritten."""
    lake, flushes = tmp_path / "lake", 40
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(lake), str(me), str(flushes)],
                              stdout=subprocess.PIPE, text=True,
                              cwd=Path(rtkit.__file__).parents[1]) for me in range(3)]
    ids = []
    for p in procs:
        out, _ = p.communicate(timeout=60)
        assert p.returncode == 0
        ids.append(out.strip().strip('"'))
    files = lake_files(lake)
    assert len(set(ids)) == 3
    assert len(files) == 3 * flushes * 2  # one file per flush and symbol, per writer
    by_writer = {i: [f for f in files if FILE_NAME.match(f.name).group(1) == i] for i in ids}
    assert all(len(v) == flushes * 2 for v in by_writer.values())
    raw, unique = lake_rows(lake)
    assert len(raw) == 3 * len(unique) == 3 * flushes * 20
    # of the three copies of each trade, the one received first (writer 0's) is kept
    assert {r[4] for r in unique} == {1_764_000_000_000_000_000}
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]


def test_a_batch_append_writes_one_new_file_per_partition_in_time_order(tmp_path):
    from rtkit.kinds.trades import TRADES
    from rtkit.sinks.parquet import append, full_schema

    day = 1_764_000_000_000_000_000 // 86_400_000_000_000 * 86_400_000_000_000
    rows = [(v, s, str(i), day + (i % 2) * 86_400_000_000_000 + (1000 - i) * 1_000_000,
             day + 7, 1.0 + i, 0.5, "sell" if i % 3 else None)
            for v in ("binance", "bybit") for s in ("BTC-USDT", "ETH-USDT") for i in range(40)]
    schema = full_schema(TRADES)
    table = pa.table([pa.array([r[i] for r in rows]).cast(f.type) for i, f in enumerate(schema)],
                     schema=schema)
    first = append(tmp_path, table)
    second = append(tmp_path, table)  # another writer, the same trades: new files beside
    assert len(first) == len(second) == 8 and not set(first) & set(second)
    assert set(lake_files(tmp_path)) == set(first) | set(second)
    for path in first:
        ts = pq.read_table(path).column("timestamp").cast(pa.int64()).to_pylist()
        assert ts == sorted(ts) and len({t // 86_400_000_000_000 for t in ts}) == 1
    raw, unique = lake_rows(tmp_path)
    assert len(raw) == 2 * len(unique) == 2 * len(rows)
    assert unique == sorted(rows)


def test_files_are_encoded_for_size(tmp_path):
    """Deltas for times, shared prefixes for trade ids, dictionaries for the rest."""
    from rtkit.sinks.parquet import ParquetSink

    sink = ParquetSink(tmp_path)
    sink.open()
    sink.write([("binance", "BTC-USDT", str(4_000_000 + i), 1_764_000_000_000_000_000 + i,
                 1_764_000_000_000_000_000 + i, 100.0 + i % 5, 0.5, "buy") for i in range(500)])
    meta = pq.ParquetFile(lake_files(tmp_path)[0]).metadata.row_group(0)
    encodings = {meta.column(i).path_in_schema: set(meta.column(i).encodings)
                 for i in range(meta.num_columns)}
    assert "DELTA_BINARY_PACKED" in encodings["timestamp"]
    assert "DELTA_BINARY_PACKED" in encodings["received_at"]
    assert "DELTA_BYTE_ARRAY" in encodings["trade_id"]
    assert "RLE_DICTIONARY" in encodings["price"] and "RLE_DICTIONARY" in encodings["side"]


def test_a_flush_larger_than_one_conversion_step_is_written_whole(tmp_path):
    """The live sink converts a flush a few thousand rows at a time (the receive thread
    gets the interpreter lock between steps): every row still lands, in order."""
    from rtkit.sinks.parquet import ROWS_PER_CONVERSION, ParquetSink

    n = 2 * ROWS_PER_CONVERSION + 17
    rows = [("binance", "BTC-USDT", str(i), 1_764_000_000_000_000_000 + i * 1000,
             1_764_000_000_000_000_000 + i * 1000 + 5, 100.0 + i, 0.25,
             ("buy", "sell", None)[i % 3])
            for i in range(n)]
    sink = ParquetSink(tmp_path)
    sink.open()
    assert sink.write(rows) == n
    assert len(lake_files(tmp_path)) == 1
    raw, unique = lake_rows(tmp_path)
    assert raw == rows and unique == sorted(rows)
