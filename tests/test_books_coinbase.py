"""Coinbase Advanced Trade books and quotes: the adapter's channels, its one
``sequence_num`` counter per connection fed by every frame, then end to end over a real
loopback socket against the simulator (which numbers every frame of a connection as
it goes out) — a lost, repeated or swapped frame of any channel desyncs the books and
a resubscribe heals them to the simulator's book level by level; trades keep flowing."""

from __future__ import annotations

import sqlite3

import orjson
import pytest

from rtkit.books.keeper import keeper_for
from rtkit.sim import Faults, get_dialect
from rtkit.venues import get_adapter
from tests.books_over_socket import (
    books_equal,
    clean_run_to_the_end,
    each_close_started_the_book_over,
    every_fault_detected_and_resynced,
    frames_quotes_and_deltas_add_up,
    run_to_the_end,
    start,
    trades_as_without_books,
)
from tests.conftest import wait_for

pytestmark = pytest.mark.usefixtures("no_thread_leak")
SYMBOL = "BTC-USD"
T = "2023-02-09T20:32:50.714964855Z"


def adapter(kinds=("trades", "quotes", "book")):
    a = get_adapter("coinbase")
    a.configure(kinds, None)
    return a


# --- the adapter ---------------------------------------------------------------------------
def test_subscribes_the_channels_of_the_collected_kinds_and_heartbeats():
    def channels(kinds):
        return [orjson.loads(m)["channel"] for m in adapter(kinds).subscribe_messages([SYMBOL])]

    assert channels(("trades", "quotes", "book")) == ["market_trades", "ticker", "level2",
                                                      "heartbeats"]
    assert channels(("trades",)) == ["market_trades", "heartbeats"]
    assert channels(("book",)) == ["level2", "heartbeats"]


def test_depth_is_refused_with_what_to_do():
    with pytest.raises(ValueError, match="leave depth= out"):
        get_adapter("coinbase").configure(("book",), 50)


def test_a_resync_unsubscribes_then_subscribes_level2():
    sent = [orjson.loads(m) for m in adapter().book_resubscribe_messages([SYMBOL, "ETH-USD"])]
    assert sent == [{"type": op, "product_ids": [SYMBOL, "ETH-USD"], "channel": "level2"}
                    for op in ("unsubscribe", "subscribe")]


def _frame(channel, n, events):
    return orjson.dumps({"channel": channel, "client_id": "", "timestamp": T,
                         "sequence_num": n, "events": events})


def _l2(n, kind, *updates):
    return _frame("l2_data", n, [{"type": kind, "product_id": SYMBOL, "updates": [
        {"side": side, "event_time": T, "price_level": p, "new_quantity": q}
        for side, p, q in updates]}])


def _heartbeat(n):
    return _frame("heartbeats", n, [{"current_time": "2023-02-09 20:32:50 +0000 UTC",
                                     "heartbeat_counter": n}])


def _trade(n, trade_id):
    return _frame("market_trades", n, [{"type": "update", "trades": [
        {"trade_id": str(trade_id), "product_id": SYMBOL, "price": "100.5", "size": "1",
         "side": "BUY", "time": T}]}])


def _run(a, keeper, frames):
    for frame in frames:
        out = a.parse(frame, 1)
        if isinstance(out, dict) and out.get("book"):
            keeper.feed(out["book"])


def test_frames_of_every_channel_count_and_a_hole_anywhere_desyncs_the_book():
    """Between two book messages the connection's counter moves on for heartbeats and
    trades (no desync: each frame was seen); a trades frame that skips a number
    means a lost frame, which may have been this book's: the next book message desyncs."""
    a = adapter()
    a.subscribe_messages([SYMBOL])
    keeper = keeper_for(a, [SYMBOL])
    _run(a, keeper, [_l2(0, "snapshot", ("bid", "100.0", "1"), ("offer", "101.0", "2")),
                     _heartbeat(1), _trade(2, 7), _l2(3, "update", ("bid", "100.5", "3")),
                     _heartbeat(4)])
    machine = keeper.machines[SYMBOL]
    assert machine.state == "live" and machine.desyncs == 0
    _run(a, keeper, [_trade(6, 8), _l2(7, "update", ("bid", "100.0", "0"))])  # 5 was lost
    assert machine.state == "resyncing" and machine.desyncs == 1
    assert keeper.take_resubscribes() == [SYMBOL]
    # the resubscribe's snapshot starts the book again
    _run(a, keeper, [_heartbeat(8),
                     _l2(9, "snapshot", ("bid", "99.0", "1"), ("offer", "99.5", "1")),
                     _l2(10, "update", ("offer", "99.6", "4"))])
    assert machine.state == "live" and machine.desyncs == 1
    assert keeper.read(SYMBOL, lambda b: (b.levels("bid", 9), b.levels("ask", 9))) == (
        [("99.0", "1")], [("99.5", "1"), ("99.6", "4")])


def test_without_the_other_channels_frames_the_same_book_messages_would_desync():
    """The counter must see every frame: fed the book frames only, the numbers the
    heartbeats took look like a hole (what a per-channel check would do)."""
    a = adapter()
    a.subscribe_messages([SYMBOL])
    keeper = keeper_for(a, [SYMBOL])
    _run(a, keeper, [_l2(0, "snapshot", ("bid", "100.0", "1"), ("offer", "101.0", "2")),
                     _l2(3, "update", ("bid", "100.5", "3"))])
    assert keeper.machines[SYMBOL].desyncs == 1


def test_a_ticker_is_a_quotes_row_with_the_connections_number():
    out = adapter().parse(_frame("ticker", 9, [{"type": "update", "tickers": [
        {"type": "ticker", "product_id": SYMBOL, "price": "100.5", "best_bid": "100.4",
         "best_bid_quantity": "2", "best_ask": "100.6", "best_ask_quantity": "3"}]}]), 5)
    assert out["quotes"] == [("coinbase", SYMBOL, 1675974770714964855, 5, 100.4, 2.0, 100.6,
                              3.0, 9)]


# --- end to end over a socket ----------------------------------------------------------------
def number_of(sim, symbol):
    """The simulated book's ``seq`` → the ``sequence_num`` its message went out with
    (the first, where a later snapshot has the same ``seq``)."""
    numbers = sim.dialect.book_numbers

    def to_number(seq: int) -> int:
        for n in sorted(numbers):
            if numbers[n] == (symbol, seq):
                return n
        return -1

    return to_number


def book_seq(sim, number: int) -> int:
    """The simulated ``seq`` of the book message sent with ``sequence_num`` ``number``."""
    return sim.dialect.book_numbers.get(number, ("", -1))[1]


FAULTS = {  # fault → (Faults, what the book's health record says of it)
    "dropped": (Faults(book_drop_every=250), "sequence_num jumped"),
    "duplicated": (Faults(book_duplicate_every=250), "not after previous"),
    "reordered": (Faults(book_reorder_every=250), "sequence_num jumped"),
    "crossed": (Faults(book_cross_every=250), "crossed book: best bid"),
}


def _start(db, faults, count, symbols=(SYMBOL,), **options):
    return start("coinbase", db, faults, count, symbols, trace=True, from_seq=book_seq,
                 **options)


@pytest.mark.parametrize("fault", list(FAULTS))
def test_every_injected_fault_is_detected_and_resynced_to_the_simulators_book(fault, db):
    faults, reason = FAULTS[fault]
    sim, c, seen = _start(db, faults, 2_100)
    run_to_the_end(c, sim, 2_100, lambda: books_equal(c, sim, [SYMBOL]))
    every_fault_detected_and_resynced(c, sim, db, seen, fault, reason, number_of(sim, SYMBOL))


def test_a_swapped_trades_frame_resyncs_every_book_on_the_connection(db):
    """A hole in ``sequence_num`` on the trades channel: any frame may have been lost,
    so every book resubscribes; the trades themselves are all stored."""
    symbols = ["BTC-USD", "ETH-USD"]
    sim, c, seen = _start(db, Faults(reorder_every=30), 3_000, symbols,
                          kinds=("trades", "book"), rate=200, trades=300)
    try:
        wait_for(lambda: sim.books.messages >= 3_000 and c.stats["stored"] >= 300
                 and books_equal(c, sim, symbols), 40)
    finally:
        c.stop()
        sim.stop()
    assert sim.reordered >= 3
    record = sqlite3.connect(db).execute(
        "SELECT symbol, reason FROM book_events WHERE to_state = 'desynced'").fetchall()
    assert {symbol for symbol, _ in record} == set(symbols)
    assert all("sequence_num jumped" in reason for _, reason in record)
    assert len(record) >= sim.reordered and c.stats["book_resyncs"] == len(record)
    rows = sqlite3.connect(db).execute("SELECT count(*) FROM ticks").fetchone()
    assert rows == (300,) and c.stats["rejected"] == 0
    assert all(simulated is not None and local == simulated for _, _, local, simulated in seen)


def test_a_forced_close_reconnects_and_the_books_start_over_on_the_new_count(db):
    sim, c, _ = _start(db, Faults(book_close_every=400), 1_300)
    run_to_the_end(c, sim, 1_300, lambda: books_equal(c, sim, [SYMBOL]))
    each_close_started_the_book_over(c, sim, db)
    assert c.stats["book_desyncs"] == 0


def test_a_clean_run_has_no_desync_and_trades_are_collected_as_without_books(db):
    dialect = get_dialect("coinbase")
    symbols = list(dialect.example_symbols)
    sim, c, _ = start("coinbase", db, Faults(), 20_000, symbols,
                      kinds=("trades", "quotes", "book"), rate=3_000, book_rate=None,
                      trades=1_200)
    s = clean_run_to_the_end(c, sim, symbols, books_equal)
    trades_as_without_books(db, sim, dialect, s)
    frames_quotes_and_deltas_add_up(c, s)
