"""Kinds of record: the descriptions, and what is derived from them."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

import rtkit
from rtkit.buffer import RingBuffer
from rtkit.kinds import CONTINUITY, Column, Kind, get_kind, kinds
from rtkit.kinds.sql import without_rowid_ddl
from rtkit.kinds.trades import TRADES
from rtkit.onchain.store import ChainStore
from rtkit.store import TickStore

T0 = 1_764_000_000_000_000_000

BEFORE = json.loads((Path(__file__).parent / "sqlite_schema_before.json").read_text())
#: the gap ledger (rtkit.gaps) added these columns to ``gaps`` after the capture
_LEDGER = ',\n   "status" TEXT,\n   "why" TEXT,\n   "filled_at" INTEGER,\n   "filled" INTEGER,' \
    '\n   "claimed_at" INTEGER'
for _schema in BEFORE.values():
    for _row in _schema:
        if _row[:2] == ["table", "gaps"]:
            _row[3] = _row[3].replace('"kind" TEXT\n)', f'"kind" TEXT{_LEDGER}\n)')


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
    assert {"trades", "quotes", "book", "book_events", "blocks", "swaps"} <= set(found)
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
    db.execute(quotes.insert_sql(), ("binance", "BTC-USDT", 1, 2, 1.0, 2.0, 1.5, 3.0, 7))
    db.execute(quotes.insert_sql(), ("binance", "BTC-USDT", 1, 3, 1.0, 2.0, 1.5, 3.0, 7))
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
    with pytest.raises(ValueError, match="ring's dtype must be one of"):
        Column("x", "TEXT", "object", ring="int65")
    with pytest.raises(ValueError, match="continuity"):
        Kind("k", "k", (Column("a", "TEXT", "object"),), key=("a",), continuity="hope")
    with pytest.raises(ValueError, match="key/index"):
        Kind("k", "k", (Column("a", "TEXT", "object"),), key=("b",))
    with pytest.raises(ValueError, match="unknown kind of record 'trade'"):
        get_kind("trade")


def test_every_ring_dtype_a_column_may_name_is_numpys():
    import numpy as np

    from rtkit.kinds import RING_DTYPES

    assert all(np.dtype(name).name == name for name in RING_DTYPES)


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


# --- a kind beside trades, from an adapter, to SQLite and the lake ------------------------
class QuotingVenue:
    """A test venue whose frames carry a trade, a quote, or both: ``Rows`` by kind."""

    @staticmethod
    def make():
        import orjson

        from rtkit.kinds import Rows
        from rtkit.venues.base import Adapter

        class Quoting(Adapter):
            name = "quoting"
            default_url = "ws://127.0.0.1:9/ws"
            kinds = ("trades", "quotes")

            def normalise_symbol(self, symbol: str) -> str:
                return symbol

            def parse(self, frame, received_at_ns: int):
                m = orjson.loads(frame)
                rows = Rows()
                if "t" in m:
                    rows["trades"] = [("BTC-USDT", m["t"], m["ts"], m["p"], 0.5, 0)]
                if "u" in m:
                    rows["quotes"] = [(self.name, "BTC-USDT", m["ts"], received_at_ns,
                                       m["b"], 1.0, m["a"], 2.0, m["u"])]
                return rows

        return Quoting()


DAY = 1_764_000_000_000_000_000


def quoting_frames():
    import orjson

    return [orjson.dumps(m) for m in (
        {"t": 1, "ts": DAY, "p": 100.0, "u": 10, "b": 99.5, "a": 100.5},
        {"t": 2, "ts": DAY + 1, "p": 101.0},
        {"u": 11, "ts": DAY + 2, "b": 99.0, "a": 100.0},
        {"u": 11, "ts": DAY + 2, "b": 99.0, "a": 100.0},  # the venue repeats itself
        {"u": 12, "ts": DAY + 3, "b": 98.0, "a": 101.0},
    )]


def quoting_pipeline(kinds):
    from rtkit.pipeline import Pipeline

    return Pipeline(QuotingVenue.make(), RingBuffer(100), symbols=["BTC-USDT"], kinds=kinds)


def test_a_new_kind_flows_from_the_adapter_to_its_table_with_its_own_accounting(tmp_path):
    p = quoting_pipeline(("trades", "quotes"))
    p.process_frames(quoting_frames(), DAY + 10)
    batch = p.take()
    with TickStore(tmp_path / "q.sqlite") as store:
        inserted = store.write(*batch)
        p.done(batch, inserted)
        rows = store.conn.execute("SELECT * FROM quotes ORDER BY seq").fetchall()
    s = p.stats()
    assert s["frames"] == s["tick_frames"] == 5 and s["stored"] == 2
    assert (s["quotes"], s["quotes_stored"], s["quote_duplicates"], s["quotes_pending"]) == (
        4, 3, 1, 0)
    assert [r[8] for r in rows] == [10, 11, 12] and rows[0][4:8] == (99.5, 1.0, 100.5, 2.0)
    assert len(p.ring) == 2  # the ring keeps trades


def test_rows_of_a_kind_not_collected_are_counted_and_dropped(tmp_path):
    p = quoting_pipeline(("trades",))
    p.process_frames(quoting_frames(), DAY + 10)
    batch = p.take()
    assert batch.records is None and len(batch.ticks) == 2
    s = p.stats()
    assert s["rows_not_collected"] == 4 and s["frames"] == s["tick_frames"] + s["rejected_frames"]


def test_kinds_an_adapter_offers_are_what_a_collector_may_collect(tmp_path):
    c = rtkit.Collector(QuotingVenue.make(), ["BTC-USDT"], db=tmp_path / "q.sqlite",
                        kinds=["quotes", "trades"])
    assert c.kinds == ("quotes", "trades") and set(c.pipeline.records.kinds) == {"quotes"}
    with pytest.raises(ValueError, match="offers trades, quotes, not book"):
        rtkit.Collector(QuotingVenue.make(), ["BTC-USDT"], db=tmp_path / "q.sqlite",
                        kinds=["book"])


def test_frames_that_carry_only_other_kinds_count_as_tick_frames():
    """A batch with no trades at all (quotes collected alone) still counts its frames:
    ``frames == tick_frames + control + rejected_frames`` whatever the kinds."""
    p = quoting_pipeline(("quotes",))
    p.process_frames(quoting_frames(), DAY + 10)
    s = p.stats()
    assert s["quotes"] == 4 and s["ticks"] == 0
    assert s["frames"] == s["tick_frames"] + s["control"] + s["rejected_frames"]


def test_trade_rows_are_made_once_when_first_read_and_pickle_as_the_rings_ticks():
    """A flush's trades (``TradeRows``) are the rows ``stored_rows`` makes, made once (a
    refused row is found by identity); pickled, they are the ring's ticks, which is what
    the writer process is sent (issue 17)."""
    import pickle

    from rtkit.kinds.trades import TradeRows, stored_rows

    frames = [(T0 + f, [("BTC-USDT", f * 3 + k, T0 + k, 100.5, 0.25, k % 2 or -1)
                        for k in range(3)]) for f in range(1000)]
    rows = TradeRows("binance", frames)
    assert len(rows) == 3000 and not rows._made  # counted without making the rows
    assert list(rows) == stored_rows("binance", frames) == rows
    assert rows[5] is rows[5] and rows[1:3] == stored_rows("binance", frames)[1:3]
    assert not TradeRows("binance", [])
    fresh = TradeRows("binance", frames)
    sent = pickle.loads(pickle.dumps(fresh, pickle.HIGHEST_PROTOCOL))
    assert not fresh._made and not sent._made  # the ticks went, not rows
    assert sent.frames == frames and sent == rows and sent[7] == rows[7]


def test_trade_rows_travel_to_the_writer_process_as_one_marshal_string():
    """Pickled, a flush's trades are one marshal string (a third of pickle's cost to
    the writer thread, whose interpreter lock the receive loop waits for); a value
    marshal cannot take (not a builtin type) travels by pickle as before."""
    import pickle
    from fractions import Fraction

    from rtkit.kinds import trades

    frames = [(T0 + f, [("BTC-USDT", f, T0 + f, 100.5, 0.25, f % 2)]) for f in range(50)]
    data = pickle.dumps(trades.TradeRows("binance", frames), pickle.HIGHEST_PROTOCOL)
    assert b"_unmarshal_trades" in data
    sent = pickle.loads(data)
    assert sent.frames == frames and sent.venue == "binance"
    assert sent.rows() == trades.stored_rows("binance", frames)
    odd = [(T0, [("BTC-USDT", 1, T0, Fraction(1, 3), 0.25, 0)])]
    data = pickle.dumps(trades.TradeRows("binance", odd), pickle.HIGHEST_PROTOCOL)
    assert b"_unmarshal_trades" not in data and pickle.loads(data).frames == odd
