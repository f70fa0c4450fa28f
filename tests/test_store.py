import sqlite3

import pandas as pd
import pytest

from rtkit.store import StoreError, TickStore

T0 = 1_764_000_000_000_000_000


def row(i, venue="binance", sym="BTC-USDT", side="buy"):
    return (venue, sym, str(i), T0 + i, T0 + i + 5, 100.0 + i, 0.5, side)


def test_ticks_come_back_in_trade_time_order(db):
    with TickStore(db) as store:
        store.write([row(5), row(1), row(3)])
        assert store.ticks()["trade_id"].tolist() == [1, 3, 5]


def test_schema_is_the_contract(db):
    TickStore(db).close()
    conn = sqlite3.connect(db)
    cols = {r[1]: r[2] for r in conn.execute("PRAGMA table_info(ticks)")}
    assert cols == {"venue": "TEXT", "symbol": "TEXT", "trade_id": "TEXT", "timestamp": "INTEGER",
                    "received_at": "INTEGER", "price": "REAL", "volume": "REAL", "side": "TEXT"}
    pk = [r[1] for r in sorted(conn.execute("PRAGMA table_info(ticks)"), key=lambda r: r[5])
          if r[5]]
    assert pk == ["venue", "symbol", "trade_id"]
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    indexes = [r[1] for r in conn.execute("PRAGMA index_list(ticks)")]
    assert any("timestamp" in [c[2] for c in conn.execute(f"PRAGMA index_info('{i}')")]
               for i in indexes)
    assert {"rejects", "gaps", "runs"} <= {r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type='table'")}


def test_write_ignores_duplicates_and_counts_new(db):
    with TickStore(db) as store:
        assert store.write([row(1), row(2)]) == 2
        assert store.write([row(2), row(3), row(3)]) == 1
        assert store.write([row(1, venue="coinbase")]) == 1  # same id, other venue
        assert store.count() == 4


def test_strict_table_refuses_wrong_types(db):
    with TickStore(db) as store, pytest.raises(sqlite3.Error):
        store.write([("binance", "BTC-USDT", "1", "not a time", T0, 1.0, 1.0, "buy")])


def test_ticks_filters_and_dtypes(db):
    with TickStore(db) as store:
        store.write([row(i) for i in range(5)] + [row(9, sym="ETH-USDT", side=None)])
    with TickStore(db, readonly=True) as store:
        df = store.ticks()
        assert len(df) == 6 and df["trade_id"].dtype == "int64"
        assert str(df["timestamp"].dtype) == "datetime64[ns, UTC]"
        assert pd.isna(df["side"].iloc[-1]) and df["side"].iloc[0] == "buy"
        assert store.ticks(symbol="ETH-USDT")["trade_id"].tolist() == [9]
        assert store.ticks(start=T0 + 2, end=T0 + 4)["trade_id"].tolist() == [2, 3]
        ts = pd.Timestamp(T0 + 3, tz="UTC")
        assert store.ticks(start=ts)["trade_id"].tolist() == [3, 4, 9]
        assert store.ticks(venue="kraken").empty


def test_non_integer_trade_ids_stay_text(db):
    with TickStore(db) as store:
        store.write([("bybit", "BTC-USDT", "20f4-uuid", T0, T0, 1.0, 1.0, "buy"),
                     ("bybit", "BTC-USDT", "007", T0, T0, 1.0, 1.0, "buy")])
        assert sorted(store.ticks()["trade_id"].tolist()) == ["007", "20f4-uuid"]


def test_readers_see_committed_data_while_writer_is_open(db):
    writer = TickStore(db)
    reader = TickStore(db, readonly=True)
    writer.write([row(1)])
    assert reader.count() == 1
    writer.write([row(2)])
    assert reader.count() == 2
    writer.close()
    reader.close()


def test_bad_paths_say_what_to_do(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="Pass db= a file path in a folder you can write to"):
        TickStore(blocker / "sub" / "t.sqlite")
    with pytest.raises(StoreError, match="no database at"):
        TickStore(tmp_path / "missing.sqlite", readonly=True)
    with pytest.raises(ValueError, match="cannot read 'whenever' as a time"):
        TickStore(tmp_path / "ok.sqlite").ticks(start="whenever")


def test_runs_round_trip(db):
    with TickStore(db) as store:
        run = store.start_run(name="n", venue="binance", symbols=["BTC-USDT"], url="ws://x",
                              config={"a": 1}, started_at=T0)
        store.finish_run(run, stopped_at=T0 + 10, status="stopped", counters={"frames": 3})
        runs = store.runs()
    assert runs.loc[0, "status"] == "stopped" and '"frames": 3' in runs.loc[0, "counters"]
    assert runs.loc[0, "stopped_at"] == pd.Timestamp(T0 + 10, tz="UTC")
