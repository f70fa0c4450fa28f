"""Coinbase Advanced Trade's rule (rtkit.books.rules.coinbase) over the
connection-wide ``sequence_num``, read through ConnectionSequence."""

from __future__ import annotations

import orjson

from rtkit.books.parse.coinbase import ConnectionSequence, parse
from rtkit.books.rules.coinbase import RULE
from tests.books.driver import R, run

TS = "2023-02-09T20:32:50.714964855Z"


def l2(seq, product, kind="update", side="bid", price="100.0", qty="1"):
    return orjson.dumps({"channel": "l2_data", "client_id": "", "timestamp": TS,
                         "sequence_num": seq, "events": [{"type": kind, "product_id": product,
                         "updates": [{"side": side, "event_time": TS, "price_level": price,
                                      "new_quantity": qty}]}]})


def heartbeat(seq):
    return orjson.dumps({"channel": "heartbeats", "client_id": "", "timestamp": TS,
                         "sequence_num": seq, "events": [{"heartbeat_counter": seq}]})


def trades(seq):
    return orjson.dumps({"channel": "market_trades", "client_id": "", "timestamp": TS,
                         "sequence_num": seq, "events": []})


def books_of(frames, conn):
    """The book messages per product, every frame fed to ``parse`` in order."""
    out: dict[str, list] = {}
    for frame in frames:
        for m in parse(frame, R, conn).book:
            out.setdefault(m.symbol, []).append(m)
    return out


def test_facts():
    assert (RULE.name, RULE.verified, RULE.snapshot_from) == ("coinbase", True, "ws")


def test_other_channels_and_products_between_two_book_messages_are_not_gaps():
    """Real captures: the counter runs across all channels of the connection."""
    conn = ConnectionSequence()
    frames = [heartbeat(0), l2(1, "BTC-USD", "snapshot", qty="2"),
              l2(2, "ETH-USD", "snapshot", side="offer"), trades(3), heartbeat(4),
              l2(5, "BTC-USD"), l2(6, "ETH-USD", side="offer", qty="0"), heartbeat(7),
              l2(8, "BTC-USD", price="99.0", qty="0")]  # an absent level removed: no-op
    books = books_of(frames, conn)
    for product in ("BTC-USD", "ETH-USD"):
        snap, *stream = books[product]
        assert snap.is_snapshot
        assert run(RULE, snap, stream) == []
    assert conn.jumps == 0


def test_a_lost_frame_anywhere_on_the_connection_desyncs_every_book_on_it():
    """Frame 4 is lost (whatever it was: maybe a BTC-USD level2): each book's
    next message says so, even though a heartbeat came in between."""
    conn = ConnectionSequence()
    frames = [l2(1, "BTC-USD", "snapshot"), l2(2, "ETH-USD", "snapshot"), heartbeat(3),
              heartbeat(5), l2(6, "BTC-USD"), l2(7, "ETH-USD"), l2(8, "BTC-USD")]
    books = books_of(frames, conn)
    assert conn.jumps == 1 and conn.resumed_at == 5
    expected = "connection sequence_num jumped (resumed at 5) since this book's previous message"
    btc_snap, *btc = books["BTC-USD"]
    assert run(RULE, btc_snap, btc) == [f"{expected} 1"]
    eth_snap, *eth = books["ETH-USD"]
    assert run(RULE, eth_snap, eth) == [f"{expected} 2"]


def test_after_the_resubscribe_snapshot_the_book_is_continuous_again():
    conn = ConnectionSequence()
    frames = [l2(1, "BTC-USD", "snapshot"), heartbeat(3), l2(4, "BTC-USD"),
              l2(5, "BTC-USD", "snapshot"), l2(6, "BTC-USD")]
    snap1, desynced, snap2, after = books_of(frames, conn)["BTC-USD"]
    assert RULE.follows(desynced, snap1) is not None
    assert RULE.bridges(after, snap2) is None


def test_a_repeated_or_older_sequence_num_is_a_desync():
    conn = ConnectionSequence()
    snap, a, b = books_of([l2(1, "BTC-USD", "snapshot"), l2(2, "BTC-USD"), l2(2, "BTC-USD")],
                          conn)["BTC-USD"]
    assert RULE.follows(a, snap) is None
    assert RULE.follows(b, a) == "sequence_num 2 not after previous 2"
