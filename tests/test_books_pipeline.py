"""Bybit's book and quote frames through the pipeline: rows stored, the health record,
the quotes ring, what a notebook reads, and the resubscribe asked of the receiver."""

from __future__ import annotations

import orjson
import pytest

import rtkit
from rtkit.buffer import RingBuffer
from rtkit.pipeline import Pipeline
from rtkit.store import TickStore
from rtkit.venues import get_adapter

MS = 1_764_000_000_000


def book_frame(u, bids, asks, kind="delta", sym="BTCUSDT", depth=50):
    return orjson.dumps({"topic": f"orderbook.{depth}.{sym}", "type": kind, "ts": MS + u,
                         "data": {"s": sym, "b": bids, "a": asks, "u": u, "seq": 7 + u},
                         "cts": MS + u})


def quote_frame(u, bid, ask, sym="BTCUSDT"):
    return orjson.dumps({"topic": f"orderbook.1.{sym}", "type": "snapshot", "ts": MS + u,
                         "data": {"s": sym, "b": [bid], "a": [ask], "u": u, "seq": 1}})


def bybit_pipeline(kinds=("trades", "quotes", "book"), depth=None):
    adapter = get_adapter("bybit")
    adapter.configure(kinds, depth)
    return Pipeline(adapter, RingBuffer(100), symbols=["BTC-USDT"], kinds=kinds)


def test_bybit_subscribes_the_channels_its_kinds_ask_for():
    adapter = get_adapter("bybit")
    adapter.configure(("trades", "quotes", "book"), 200)
    [message] = adapter.subscribe_messages(["BTC-USDT"])
    assert orjson.loads(message)["args"] == ["publicTrade.BTCUSDT", "orderbook.1.BTCUSDT",
                                             "orderbook.200.BTCUSDT"]
    adapter = get_adapter("bybit")
    assert orjson.loads(adapter.subscribe_messages(["BTC-USDT"])[0])["args"] == [
        "publicTrade.BTCUSDT"]
    with pytest.raises(ValueError, match="depth 50, 200, 1000"):
        adapter.configure(("book",), 25)
    with pytest.raises(ValueError, match="depth= is for order books"):
        get_adapter("generic").configure(("trades",), 50)


def test_book_frames_become_deltas_events_and_a_notebook_view(tmp_path):
    p = bybit_pipeline()
    p.process_frames([
        book_frame(9, [["99", "1"]], [], "delta"),  # before the snapshot: skipped
        book_frame(10, [["99.5", "1"], ["99", "2"]], [["100.5", "3"]], "snapshot"),
        book_frame(11, [["99.5", "0"], ["98", "4"]], [["101", "1"]]),
        quote_frame(5, ["99", "2"], ["100.5", "3"]),
        quote_frame(5, ["99", "2"], ["100.5", "3"]),  # resent unchanged: no new quote
    ], 123)
    batch = p.take()
    with TickStore(tmp_path / "b.sqlite") as store:
        p.done(batch, store.write(*batch))
        deltas = store.conn.execute("SELECT seq, is_snapshot, side, price, size FROM "
                                    "book_deltas ORDER BY seq, is_snapshot DESC").fetchall()
        events = store.conn.execute("SELECT from_state, to_state FROM book_events").fetchall()
        quotes = store.conn.execute("SELECT * FROM quotes").fetchall()
    assert sorted(deltas) == sorted([(10, 1, "bid", 99.5, 1.0), (10, 1, "bid", 99.0, 2.0),
                                     (10, 1, "ask", 100.5, 3.0), (11, 0, "bid", 99.5, 0.0),
                                     (11, 0, "bid", 98.0, 4.0), (11, 0, "ask", 101.0, 1.0)])
    assert sorted(events) == sorted([("subscribing", "snapshot"), ("snapshot", "live")])
    assert quotes == [("bybit", "BTC-USDT", (MS + 5) * 10**6, 123, 99.0, 2.0, 100.5, 3.0, 5)]
    s = p.stats()
    assert s["frames"] == s["tick_frames"] + s["control"] + s["rejected_frames"]
    assert s["control"] == 1 and s["rejected_frames"] == 0
    assert (s["book_deltas"], s["book_deltas_stored"], s["book_events"]) == (6, 6, 2)
    assert s["book_messages"] == 3 and s["book_desyncs"] == 0 and s["books_good"] == 1
    assert list(p.quote_ring.snapshot()["bid_price"]) == [99.0]


def test_a_gap_asks_the_receiver_to_resubscribe_and_the_snapshot_heals_it():
    p = bybit_pipeline(("book",))
    p.process_frames([book_frame(10, [["99", "1"]], [["100", "1"]], "snapshot"),
                      book_frame(12, [["98", "1"]], [])], 1)
    assert p.books.state("BTC-USDT")[0] == "resyncing"
    sends = [orjson.loads(m) for m in p.book_tick(2)]
    assert [(m["op"], m["args"]) for m in sends] == [
        ("unsubscribe", ["orderbook.50.BTCUSDT"]), ("subscribe", ["orderbook.50.BTCUSDT"])]
    assert p.book_tick(3) == []  # asked once
    p.process_frames([book_frame(20, [["97", "1"]], [["100", "1"]], "snapshot")], 4)
    assert p.books.state("BTC-USDT") == ("live", 4)
    assert p.stats()["book_resyncs"] == 1


def test_a_reconnect_starts_the_books_over():
    p = bybit_pipeline(("book",))
    p.connection_opened(1)
    p.process_frames([book_frame(10, [["99", "1"]], [["100", "1"]], "snapshot")], 2)
    p.connection_opened(3)
    assert p.books.state("BTC-USDT") == ("subscribing", 3)
    assert p.stats()["book_events"] == 3


def test_a_collector_reads_its_books_and_quotes_and_says_what_to_pass(tmp_path):
    c = rtkit.Collector("bybit", ["BTC-USDT"], db=tmp_path / "b.sqlite",
                        kinds=["trades", "quotes", "book"], depth=200)
    c.pipeline.process_frames([
        book_frame(10, [["99.5", "1"], ["99", "2"], ["98", "1"]],
                   [["100.5", "3"], ["101", "1"]], "snapshot", depth=200),
        quote_frame(5, ["99.5", "1"], ["100.5", "3"])], 1)
    frame = c.book("BTCUSDT", depth=2)
    assert frame.to_dict("list") == {"side": ["bid", "bid", "ask", "ask"],
                                     "price": [99.5, 99.0, 100.5, 101.0],
                                     "size": [1.0, 2.0, 3.0, 1.0]}
    assert c.book_state("BTC-USDT").state == "live"
    assert list(c.quotes.columns) == list(rtkit.kinds.get_kind("quotes").names)
    assert c.again().config.depth == 200
    with pytest.raises(ValueError, match="no book for 'ETH-USDT'"):
        c.book("ETH-USDT")
    trades_only = rtkit.Collector("bybit", ["BTC-USDT"], db=tmp_path / "b.sqlite")
    with pytest.raises(ValueError, match=r"pass kinds=\['trades', 'book'\]"):
        trades_only.book("BTC-USDT")
    with pytest.raises(ValueError, match=r"pass kinds=\['trades', 'quotes'\]"):
        trades_only.quotes  # noqa: B018
    with pytest.raises(ValueError, match="pass depth= one of those, not 0"):
        rtkit.Collector("bybit", ["BTC-USDT"], db=tmp_path / "b.sqlite", kinds=["book"],
                        depth=0)


def test_a_bad_level_rejects_the_whole_book_frame():
    p = bybit_pipeline(("book",))
    p.process_frames([book_frame(10, [["99", "1"]], [["nan", "1"]], "snapshot"),
                      book_frame(11, [["99", "-1"]], [])], 1)
    s = p.stats()
    assert s["rejected_by_reason"] == {"bad_number": 2} and s["book_messages"] == 0


def test_the_quotes_ring_keeps_the_newest_in_order_with_the_kinds_dtypes():
    from rtkit.books.quote_ring import QUOTE_BYTES, QuoteRing

    ring = QuoteRing(3)
    ring.append([("bybit", f"S{i % 2}-USDT", 10 + i, 20 + i, 1.0, 2.0, 3.0, 4.0, i)
                 for i in range(5)])
    frame = ring.snapshot()
    assert list(frame["seq"]) == [2, 3, 4] and list(frame["symbol"]) == ["S0-USDT", "S1-USDT",
                                                                          "S0-USDT"]
    assert str(frame["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert frame["timestamp"].iloc[0].value == 12 and ring.nbytes == 3 * QUOTE_BYTES == 186
    assert len(QuoteRing(2).snapshot()) == 0
    with pytest.raises(ValueError, match="capacity"):
        QuoteRing(0)


def test_the_command_line_collects_books_with_comma_kinds_and_a_depth(tmp_path, capsys):
    from rtkit.cli import main

    db = tmp_path / "c.sqlite"
    assert main(["collect", "bybit", "BTC-USDT", "--db", str(db), "--kinds", "trades,book",
                 "--depth", "25", "--duration", "0.1"]) == 2
    assert "pass --depth one of those, not 25" in capsys.readouterr().err
