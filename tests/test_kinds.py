"""Kinds of record: the descriptions, and what is derived from them."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from rtkit.buffer import RingBuffer
from rtkit.kinds import CONTINUITY, Column, Kind, get_kind, kinds
from rtkit.kinds.sql import without_rowid_ddl
from rtkit.kinds.trades import TRADES
from rtkit.onchain.store import ChainStore
from rtkit.store import TickStore

BEFORE = json.loads((Path(__file__).parent / "sqlite_schema_before.json").read_text())


def schema(path) -> list[list]:
    rows = sqlite3.connect(path).execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name").fetchall()
    return [list(r) for r in rows]


@pytest.mark.parametrize(("store", "captured"), [(TickStore, "trades"), (ChainStore, "onchain")])
def test_the_sqlite_schema_is_byte_for_byte_the_one_before_kinds(tmp_path, store, captured):
    """Tables made from the kind descriptions have exactly the DDL that the hand-written
    schema had (captured from main before the change, in sqlite_schema_before.json)."""
    path = tmp_path / "x.sqlite"
    store(path).close()
    assert schema(path) == BEFORE[captured]
    store(path).close()  # opening again changes nothing
    assert schema(path) == BEFORE[captured]


def test_every_kind_is_described_whole():
    found = kinds()
    assert {"trades", "quotes", "book_deltas", "book_snapshots", "blocks", "swaps"} <= set(found)
    for name, kind in found.items():
        assert kind.name == name and kind.continuity in CONTINUITY and kind.key
        assert kind.counters is not None and len(set(kind.counters)) == 4
        assert kind.insert_sql().count("?") == len(kind.columns)
        if kind.without_rowid:
            assert "WITHOUT ROWID" in without_rowid_ddl(kind)


def test_a_new_kind_gets_its_table_from_its_description(tmp_path):
    import sqlite_utils

    from rtkit.kinds.sql import create_table

    db = sqlite_utils.Database(tmp_path / "q.sqlite")
    quotes = get_kind("quotes")
    create_table(db, quotes)
    columns = [(r[1], r[2], r[3], r[5]) for r in db.execute("PRAGMA table_info(quotes)")]
    assert [c[0] for c in columns] == list(quotes.names)
    assert [c[1] for c in columns] == [c.sql for c in quotes.columns]
    key = [c[0] for c in sorted((c for c in columns if c[3]), key=lambda c: c[3])]
    assert key == list(quotes.key)
    db.execute(quotes.insert_sql(), ("binance", "BTC-USDT", "7", 1, 2, 1.0, 2.0, 1.5, 3.0))
    db.execute(quotes.insert_sql(), ("binance", "BTC-USDT", "7", 1, 2, 1.0, 2.0, 1.5, 3.0))
    assert db.execute("SELECT count(*) FROM quotes").fetchone()[0] == 1  # the key dedups


def test_the_ring_and_the_frame_follow_the_trades_description():
    ring = RingBuffer(8)
    for name, dtype in TRADES.ring_dtypes().items():
        assert ring.columns[name].dtype == dtype
    ring.append("binance", 5, [("BTC-USDT", 1, 3, 2.0, 0.5, 0)])
    df = ring.snapshot()
    assert list(df.columns) == [c for c in ("timestamp", "received_at", "venue", "symbol",
                                              "price", "volume", "side", "trade_id")]
    for column, dtype in TRADES.frame_dtypes().items():
        shown = str(df[column].dtype)
        assert shown in dtype.split("|") or (dtype == "string" and shown.startswith("string"))
    assert df["trade_id"].dtype == np.int64


def test_a_description_with_a_mistake_fails_at_once():
    with pytest.raises(ValueError, match="SQLite type"):
        Column("x", "VARCHAR", "object")
    with pytest.raises(TypeError):
        Column("x", "TEXT", "object", ring="int65")
    with pytest.raises(ValueError, match="continuity"):
        Kind("k", "k", (Column("a", "TEXT", "object"),), key=("a",), continuity="hope")
    with pytest.raises(ValueError, match="key/index"):
        Kind("k", "k", (Column("a", "TEXT", "object"),), key=("b",))
    with pytest.raises(ValueError, match="unknown kind of record 'trade'"):
        get_kind("trade")


def test_a_replay_summary_has_the_counters_of_its_kinds_even_of_an_empty_recording(tmp_path):
    import gzip

    import rtkit
    from rtkit.onchain import replay as chain_replay
    from rtkit.onchain.pools import Pool

    empty = tmp_path / "empty.jsonl.gz"
    with gzip.open(empty, "wt"):
        pass
    summary = rtkit.replay(empty, db=tmp_path / "t.sqlite")
    for name in TRADES.counters:
        assert summary[name] == 0
    pool = Pool("0x" + "1" * 40, token0="USDC", token1="ETH", decimals0=6, decimals1=18,
                version=3, base="ETH")
    summary = chain_replay(empty, [pool], db=tmp_path / "c.sqlite")
    for name in get_kind("blocks").counters + get_kind("swaps").counters:
        assert summary[name] == 0


def test_the_chain_collector_subclasses_neither_the_pipeline_nor_the_store(tmp_path):
    """The chain's items go through the one Pipeline, by the stage its adapter gives;
    its store keeps the chain's kinds by composition."""
    from rtkit.collector import Collector
    from rtkit.onchain import ChainCollector, ChainStore
    from rtkit.onchain.pipeline import ChainStage
    from rtkit.onchain.pools import Pool
    from rtkit.pipeline import Pipeline

    pool = Pool("0x" + "1" * 40, token0="USDC", token1="ETH", decimals0=6, decimals1=18,
                version=3, base="ETH")
    c = ChainCollector([pool], db=tmp_path / "c.sqlite")
    assert type(c.pipeline) is Pipeline and isinstance(c.pipeline.stage, ChainStage)
    assert c.pipeline.store_type is ChainStore and not issubclass(ChainStore, TickStore)
    assert not hasattr(Collector, "pipeline_type") and not hasattr(Collector, "store_type")
    assert c.kinds == ("swaps", "blocks") and c.again().kinds == ("swaps", "blocks")
    with c.store() as store:
        assert list(store.swaps().columns) == list(get_kind("swaps").names)
