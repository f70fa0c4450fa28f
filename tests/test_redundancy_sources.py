"""Which connection feeds a book (``rtkit.books.sources``), without sockets: the keeper
takes each symbol's messages from its source only, moves a book whose source ended to
the other connection with a resync (never a desync), and sends its resubscribe there.
The socket runs are in ``tests/test_redundancy_books.py``."""

from __future__ import annotations

from rtkit.books import BookMessage
from rtkit.books.keeper import BookKeeper
from rtkit.books.machine import BookMachine
from rtkit.books.rules import rule_for
from rtkit.books.sources import Sources

BTC, ETH = "BTC-USDT", "ETH-USDT"


def bybit(symbol: str, seq: int, snapshot: bool = False, at: int = 0) -> BookMessage:
    return BookMessage(symbol, at or seq, at or seq, snapshot, [("100.0", "1")],
                       [("101.0", "1")], seq=seq)


def keeper(venue: str = "bybit") -> BookKeeper:
    return BookKeeper(venue, [BTC, ETH], lambda: rule_for(venue), clock=lambda: 0)


def feed(k: BookKeeper, messages: list[BookMessage], connection: int):
    """What the pipeline does with a batch read from ``connection``."""
    kept, moved = k.admit(messages, connection)
    step = k.feed(kept)
    return moved.events + step.events


def test_the_first_connection_to_bring_a_symbol_feeds_it_and_the_others_copies_are_counted():
    k = keeper()
    feed(k, [bybit(BTC, 1, True), bybit(BTC, 2)], connection=1)
    # connection 2 brings the same stream: each copy is left out, none is a desync
    events = feed(k, [bybit(BTC, 1, True), bybit(BTC, 2), bybit(BTC, 3)], connection=2)
    feed(k, [bybit(BTC, 3), bybit(BTC, 4)], connection=1)
    assert events == []
    s = k.stats()
    assert (s["book_ignored"], s["book_desyncs"], s["book_messages"]) == (3, 0, 4)
    assert k.machines[BTC].state == "live" and k.machines[BTC].last.seq == 4
    # another symbol is taken from whichever connection brings it first
    feed(k, [bybit(ETH, 1, True)], connection=2)
    assert k.sources.of == {BTC: 1, ETH: 2}


def test_the_source_lost_moves_the_book_to_the_other_connection_and_resubscribes_there():
    k = keeper()
    feed(k, [bybit(BTC, 1, True), bybit(ETH, 1, True)], connection=1)
    feed(k, [bybit(BTC, 1, True), bybit(ETH, 1, True)], connection=2)
    step = k.connection_closed(1, 50, "source connection lost")
    moved = [(e[1], e[3], e[4], e[5]) for e in step.events]
    assert moved == [(BTC, "live", "resyncing", "source connection lost"),
                     (ETH, "live", "resyncing", "source connection lost")]
    assert k.take_resubscribes_by_connection() == {2: [BTC, ETH]}
    # connection 2's new snapshot makes the book live again: one resync, no desync
    feed(k, [bybit(BTC, 9, True), bybit(BTC, 10)], connection=2)
    s = k.stats()
    assert (s["book_resyncs"], s["book_desyncs"], s["book_source_switches"]) == (1, 0, 2)
    assert k.machines[BTC].state == "live" and k.machines[BTC].last.seq == 10
    # a connection that fed no book (or no longer does) ends: nothing moves
    assert k.connection_closed(7, 60, "source connection lost").events == []


def test_a_source_that_ends_before_the_other_brought_anything_hands_over_at_its_first_message():
    k = keeper()
    feed(k, [bybit(BTC, 1, True)], connection=1)
    assert k.connection_closed(1, 50, "source connection closed (handed over)").events == []
    # connection 2's first message is its own snapshot: the book resyncs from it at once
    events = feed(k, [bybit(BTC, 5, True), bybit(BTC, 6)], connection=2)
    assert [(e[3], e[4]) for e in events] == [("live", "resyncing"), ("resyncing", "snapshot"),
                                              ("snapshot", "live")]
    assert events[0][5] == "source connection closed (handed over)"
    assert k.take_resubscribes_by_connection() == {}  # its snapshot came: nothing to ask
    assert k.stats()["book_desyncs"] == 0 and k.machines[BTC].last.seq == 6


def test_a_rest_snapshot_book_moved_asks_its_snapshot_at_the_first_delta_of_the_other():
    """So the delta that must bridge the snapshot is buffered when the snapshot comes."""
    machine = BookMachine("binance", BTC, rule_for("binance"))

    def diff(first: int, last: int) -> BookMessage:
        return BookMessage(BTC, last, last, False, [("100.0", "1")], [], seq=last,
                           first_seq=first)

    assert machine.feed(diff(1, 2)).action == "fetch_snapshot"
    snapshot = BookMessage(BTC, 2, 2, True, [("100.0", "1")], [("101.0", "1")], seq=2,
                           source="rest")
    machine.snapshot(snapshot)
    machine.feed(diff(3, 4))
    assert machine.state == "live"
    step = machine.switch_source(10, "source connection lost")
    assert step.action is None and machine.state == "resyncing"
    assert [e[5] for e in step.events] == ["source connection lost"]
    assert machine.feed(diff(5, 6)).action == "fetch_snapshot"
    assert machine.feed(diff(7, 8)).action is None  # asked once
    step = machine.snapshot(BookMessage(BTC, 6, 6, True, [("100.0", "2")], [("101.0", "1")],
                                        seq=6, source="rest"))
    assert machine.state == "live" and machine.last.seq == 8  # 7..8 applied after it
    assert (machine.resyncs, machine.desyncs) == (1, 0)


def test_a_reconnect_takes_every_symbol_afresh():
    sources = Sources()
    sources.seen(1)
    assert sources.admit(BTC, 1) == (True, None)
    sources.closed(1, "source connection lost")
    sources.clear()  # the reconnect's open starts the books over: no move to tell
    sources.seen(3)
    assert sources.admit(BTC, 3) == (True, None) and sources.switches == 0
