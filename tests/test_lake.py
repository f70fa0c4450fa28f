"""The Parquet lake beside SQLite: the same rows, atomic files, exact accounting."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from importlib import resources
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import rtkit
from rtkit.cli import main
from rtkit.pipeline import Batch
from rtkit.sim import Simulator
from rtkit.sinks import RunInfo
from rtkit.sinks.fanout import Fanout
from rtkit.sinks.parquet import SCHEMA_VERSION, ParquetSink
from rtkit.sinks.sqlite import SQLiteSink
from tests.conftest import wait_for

SAMPLE = resources.files("rtkit") / "samples" / "binance_sample.jsonl.gz"
COLUMNS = "venue, symbol, trade_id, timestamp, received_at, price, volume, side"


def sqlite_rows(db) -> list[tuple]:
    return sorted(sqlite3.connect(db).execute(f"SELECT {COLUMNS} FROM ticks").fetchall())


def duckdb_rows(lake) -> list[tuple]:
    glob = f"{lake}/trades/**/*.parquet"
    sql = (f"SELECT venue, symbol, trade_id, epoch_ns(timestamp), epoch_ns(received_at), price, "
           f"volume, side FROM read_parquet('{glob}', hive_partitioning=true)")
    return sorted(duckdb.sql(sql).fetchall())


def pyarrow_rows(lake) -> list[tuple]:
    files = sorted(Path(lake, "trades").glob("**/*.parquet"))
    rows = []
    for path in files:
        parts = dict(p.split("=", 1) for p in path.relative_to(lake).parts[1:-1])
        table = pq.read_table(path)
        ts = table.column("timestamp").cast(pa.int64()).to_pylist()
        recv = table.column("received_at").cast(pa.int64()).to_pylist()
        for tid, t, r, price, volume, side in zip(
                table.column("trade_id").to_pylist(), ts, recv, table.column("price").to_pylist(),
                table.column("volume").to_pylist(), table.column("side").to_pylist(), strict=True):
            rows.append((parts["venue"], parts["symbol"], tid, t, r, price, volume, side))
    return sorted(rows)


def test_replay_of_the_sample_writes_the_lake_with_exactly_the_sqlite_rows(tmp_path, capsys):
    db, lake = tmp_path / "t.sqlite", tmp_path / "lake"
    assert main(["replay", str(SAMPLE), "--db", str(db), "--lake", str(lake), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    expected = sqlite_rows(db)
    assert len(expected) == summary["stored"] == 2000
    assert duckdb_rows(lake) == expected
    assert pyarrow_rows(lake) == expected
    for path in Path(lake).glob("trades/**/*.parquet"):
        meta = pq.read_schema(path).metadata
        assert meta[b"rtkit.schema_version"] == SCHEMA_VERSION.encode()
        assert meta[b"rtkit.kind"] == b"trades"
        assert pq.ParquetFile(path).metadata.row_group(0).column(0).compression == "ZSTD"
        day = path.parent.name.removeprefix("date=")  # the records' UTC day
        days = pq.read_table(path).column("timestamp").cast(pa.date32()).to_pylist()
        assert {str(d) for d in days} == {day}
        assert path.name.startswith("part-")
    assert not list(Path(lake).glob("**/*.tmp"))


@pytest.mark.usefixtures("no_thread_leak")
def test_a_live_collector_with_lake_writes_the_rows_sqlite_gets(tmp_path):
    db, lake = tmp_path / "t.sqlite", tmp_path / "lake"
    with Simulator("binance", rate=3000, count=1500, seed=3) as sim:
        c = rtkit.collect("binance", ["BTC-USDT", "ETH-USDT", "SOL-USDT"], url=sim.url, db=db,
                          lake=lake, flush_interval_s=0.1)
        try:
            wait_for(lambda: c.stats["stored"] >= 1500, 20)
        finally:
            c.stop()
    s = c.stats
    assert s["ticks"] == (s["stored"] + s["duplicates"] + s["pending"] + s["dropped_overflow"]
                          + s["unstorable"])
    expected = sqlite_rows(db)
    assert len(expected) == s["stored"] == 1500
    assert duckdb_rows(lake) == expected
    assert pyarrow_rows(lake) == expected
    assert c.again().config.lake == lake


class FlakyLake(ParquetSink):
    """Refuses its first write (a full disk), then works."""

    refusals = 1

    def write(self, batch, refused=None):
        if self.refusals:
            self.refusals -= 1
            raise OSError(28, "No space left on device")
        return super().write(batch, refused)


def row(i: int) -> tuple:
    return ("binance", "BTC-USDT", str(i), 1_764_000_000_000_000_000 + i, 1, 1.0, 1.0, "buy")


def test_a_lake_refusal_after_sqlite_took_the_batch_stores_each_row_once(tmp_path):
    """The retry writes only the newer rows to SQLite: nothing counted twice, nothing lost."""
    sqlite, lake = SQLiteSink(tmp_path / "t.sqlite"), FlakyLake(tmp_path / "lake")
    sink = Fanout(sqlite, lake)
    sink.open(RunInfo("t", "binance", ["BTC-USDT"], "ws://127.0.0.1:1/ws"))
    first = Batch([row(i) for i in range(5)], [], [])
    with pytest.raises(OSError):
        sink.write(first, [])
    retry = Batch([row(i) for i in range(5)] + [row(i) for i in range(5, 8)], [], [])
    refused: list = []
    assert sink.write(retry, refused) == 8 and refused == []
    sink.close()
    assert len(sqlite_rows(tmp_path / "t.sqlite")) == 8
    assert duckdb_rows(tmp_path / "lake") == sqlite_rows(tmp_path / "t.sqlite")


def test_rows_sqlite_refuses_stay_out_of_the_lake_too(tmp_path):
    sink = Fanout(SQLiteSink(tmp_path / "t.sqlite"), ParquetSink(tmp_path / "lake"))
    sink.open(RunInfo("t", "binance", ["BTC-USDT"], "ws://127.0.0.1:1/ws"))
    bad = ("binance", "BTC-USDT", "x", 2**63, 1, 1.0, 1.0, "buy")  # beyond SQLite's int64
    batch = Batch([row(1), bad, row(2)], [], [])
    refused: list = []
    assert sink.write(batch, refused) == 2
    assert [r[1] for r in refused] == [bad]
    sink.close()
    assert duckdb_rows(tmp_path / "lake") == sqlite_rows(tmp_path / "t.sqlite")


_KILLED_CHILD = textwrap.dedent("""
    import sys
    import threading
    import rtkit
    from rtkit.sim import Simulator
    with Simulator("binance", rate=20000, seed=int(sys.argv[3])) as sim:
        c = rtkit.collect("binance", ["BTC-USDT", "ETH-USDT"], url=sim.url, db=sys.argv[1],
                          lake=sys.argv[2], flush_interval_s=0.01)
        print("collecting", flush=True)
        threading.Event().wait(60)  # until killed (bounded, should the test not kill it)
""")


def test_kill_9_while_writing_the_lake_never_leaves_a_file_a_reader_fails_on(tmp_path):
    lake = tmp_path / "lake"
    rng = random.Random(12)
    for attempt in range(10):
        child = subprocess.Popen(
            [sys.executable, "-c", _KILLED_CHILD, str(tmp_path / f"{attempt}.sqlite"), str(lake),
             str(attempt)], stdout=subprocess.PIPE, text=True, cwd=Path(rtkit.__file__).parents[1])
        try:
            assert child.stdout.readline().strip() == "collecting"
            deadline = time.monotonic() + 10
            while not list(lake.glob("trades/**/*.parquet")) and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.3))  # a random moment of the writing
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(10)
            child.stdout.close()
        files = sorted(lake.glob("trades/**/*.parquet"))
        assert files
        for path in files:  # every visible file is whole
            pq.read_table(path)
        n = duckdb.sql(f"SELECT count(*) FROM read_parquet('{lake}/trades/**/*.parquet', "
                       "hive_partitioning=true)").fetchall()[0][0]
        assert n == sum(pq.ParquetFile(p).metadata.num_rows for p in files) > 0


def test_kinds_are_checked_against_what_the_venue_offers(tmp_path, capsys):
    db = tmp_path / "t.sqlite"
    c = rtkit.Collector("binance", ["BTC-USDT"], db=db)
    assert c.kinds == ("trades",)
    with pytest.raises(ValueError, match="venue 'binance' offers trades.*, not blocks"):
        rtkit.Collector("binance", ["BTC-USDT"], db=db, kinds=["blocks"])
    with pytest.raises(ValueError, match="unknown kind of record 'trade'"):
        rtkit.Collector("binance", ["BTC-USDT"], db=db, kinds=["trade"])
    assert main(["collect", "binance", "BTC-USDT", "--db", str(db), "--kinds", "swaps",
                 "--duration", "0.1"]) == 2
    assert "not swaps" in capsys.readouterr().err


def test_a_lake_that_cannot_be_written_fails_in_the_callers_cell(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(ValueError, match="cannot write the lake"):
        rtkit.Collector("binance", ["BTC-USDT"], db=tmp_path / "t.sqlite", lake=blocker / "lake")


def test_temporaries_a_killed_writer_left_are_removed_when_old(tmp_path):
    folder = tmp_path / "lake" / "trades" / "venue=binance" / "symbol=BTC-USDT" / "date=2025-11-24"
    folder.mkdir(parents=True)
    old, fresh = folder / "_part-dead-000001.parquet.tmp", folder / "_part-live-000001.parquet.tmp"
    old.write_bytes(b"PAR1 half")
    fresh.write_bytes(b"PAR1 half")
    long_ago = time.time() - 2 * 3600
    os.utime(old, (long_ago, long_ago))
    ParquetSink(tmp_path / "lake").open()
    assert not old.exists() and fresh.exists()  # another writer may be writing that one


def test_a_kind_beside_trades_reaches_the_lake_as_sqlite_has_it_through_a_refusal(tmp_path):
    """Quotes from an adapter that emits them: SQLite's quotes table and the lake's
    quotes files hold the same rows, also when the lake refused a flush first."""
    from tests.test_kinds import DAY, quoting_frames, quoting_pipeline

    p = quoting_pipeline(("trades", "quotes"))
    sink = Fanout(SQLiteSink(tmp_path / "t.sqlite"), FlakyLake(tmp_path / "lake"))
    sink.open(RunInfo("t", "quoting", ["BTC-USDT"], "ws://127.0.0.1:9/ws"))
    frames = quoting_frames()
    p.process_frames(frames[:3], DAY + 10)
    with pytest.raises(OSError):
        sink.write(p.take(), [])
    p.give_back()
    p.process_frames(frames[4:], DAY + 20)
    batch = p.take()
    p.done(batch, sink.write(batch, []))
    sink.close()
    s = p.stats()
    assert (s["quotes"], s["quotes_stored"], s["quote_duplicates"], s["quotes_pending"]) == (
        3, 3, 0, 0)
    assert s["stored"] == 2 and s["duplicates"] == 0
    columns = "venue, symbol, timestamp, received_at, bid_price, bid_size, " \
              "ask_price, ask_size, seq"
    in_sqlite = sorted(sqlite3.connect(tmp_path / "t.sqlite").execute(
        f"SELECT {columns} FROM quotes").fetchall())
    as_ns = columns.replace("timestamp", "epoch_ns(timestamp)").replace(
        "received_at", "epoch_ns(received_at)")
    in_lake = sorted(duckdb.sql(
        f"SELECT {as_ns} FROM read_parquet('{tmp_path}/lake/quotes/**/*.parquet', "
        "hive_partitioning=true)").fetchall())
    assert len(in_sqlite) == 3 and in_lake == in_sqlite
    assert duckdb_rows(tmp_path / "lake") == sqlite_rows(tmp_path / "t.sqlite")
