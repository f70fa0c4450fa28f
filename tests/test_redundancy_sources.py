"""Which connection feeds a book (``rtkit.books.sources``), without sockets: the keeper
takes each symbol's messages from its source only and moves a book whose source ended
to the other connection: where the venue's rule proves the other connection's messages
continue the book it goes on there (no resync), a message that does not continue it
is a desync, and where nothing proves it the book resyncs there (never a desync).
The socket runs are in ``tests/test_redundancy_books.py``."""

from __future__ import annotations

from rtkit.books import BookMessage
from rtkit.books.connections import HANDOVER_TAIL
from rtkit.books.keeper import BookKeeper
from rtkit.books.machine import BookMachine
from rtkit.books.rules import rule_for
from rtkit.books.sources import Sources
from tests.conftest import wait_for

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


def test_the_source_lost_moves_the_book_to_the_other_connection_where_it_goes_on():
    """Bybit's ``u`` is the topic's on every connection: the book continues on the other
    connection with its messages, without a resync, a desync or a resubscribe."""
    k = keeper()
    feed(k, [bybit(BTC, 1, True), bybit(ETH, 1, True), bybit(BTC, 2)], connection=1)
    # connection 2 is behind on ETH (its snapshot only) and ahead on BTC (3 and 4, which
    # connection 1 never brings: it is lost with them unread)
    feed(k, [bybit(BTC, 1, True), bybit(ETH, 1, True), bybit(BTC, 2), bybit(BTC, 3),
             bybit(BTC, 4)], connection=2)
    step = k.connection_closed(1, 50, "source connection lost")
    moved = [(e[1], e[3], e[4], e[5]) for e in step.events]
    assert moved == [(BTC, "live", "live", "source connection lost"),
                     (ETH, "live", "live", "source connection lost")]
    assert k.machines[BTC].last.seq == 4  # the tail kept of connection 2 applied
    assert k.take_resubscribes_by_connection() == {}
    assert feed(k, [bybit(BTC, 5), bybit(ETH, 2)], connection=2) == []
    s = k.stats()
    assert (s["book_resyncs"], s["book_desyncs"], s["book_source_switches"]) == (0, 0, 2)
    assert k.machines[BTC].state == "live" and k.machines[BTC].last.seq == 5
    assert k.machines[ETH].state == "live" and k.machines[ETH].last.seq == 2
    # a connection that fed no book (or no longer does) ends: nothing moves
    assert k.connection_closed(7, 60, "source connection lost").events == []


def test_a_new_source_that_does_not_continue_the_book_desyncs_and_resyncs_from_it():
    """Connection 2 lost message 3 (a hole at the switch): its first message kept does
    not follow the book's last ``u``: a desync, the resubscribe sent on connection 2."""
    k = keeper()
    feed(k, [bybit(BTC, 1, True), bybit(BTC, 2)], connection=1)
    feed(k, [bybit(BTC, 1, True), bybit(BTC, 2), bybit(BTC, 4)], connection=2)
    events = k.connection_closed(1, 50, "source connection lost").events
    assert [(e[3], e[4]) for e in events] == [("live", "live"), ("live", "desynced"),
                                              ("desynced", "resyncing")]
    assert "u 4 != previous u 2 + 1" in events[1][5]
    assert k.take_resubscribes_by_connection() == {2: [BTC]}
    feed(k, [bybit(BTC, 9, True), bybit(BTC, 10)], connection=2)
    s = k.stats()
    assert (s["book_resyncs"], s["book_desyncs"]) == (1, 1)
    assert k.machines[BTC].state == "live" and k.machines[BTC].last.seq == 10


def binance_diff(symbol: str, first: int, last: int, pu: int | None = None) -> BookMessage:
    return BookMessage(symbol, last, last, False, [("100.0", str(last))], [("101.0", "1")],
                       seq=last, first_seq=first, prev_seq=pu)


def rest_snapshot(symbol: str, last_update_id: int) -> BookMessage:
    return BookMessage(symbol, last_update_id, last_update_id, True, [("100.0", "1")],
                       [("101.0", "1")], seq=last_update_id, source="rest")


def live_rest_keeper(venue: str) -> BookKeeper:
    """A REST-snapshot keeper whose BTC book is live on connection 1 at ``u`` 10."""
    k = BookKeeper(venue, [BTC], lambda: rule_for(venue), clock=lambda: 0,
                   fetch=lambda symbol: rest_snapshot(symbol, 8))
    feed(k, [binance_diff(BTC, 5, 8, 4)], connection=1)  # its snapshot asked, at 8
    wait_for(lambda: k.poll() and k.machines[BTC].state == "live", 5)
    feed(k, [binance_diff(BTC, 9, 10, 8)], connection=1)
    assert k.machines[BTC].state == "live"
    return k


def test_a_binance_book_moved_to_another_connection_bridges_its_last_update_without_rest():
    """Spot: the other connection's diffs may be cut elsewhere (9..12 after u 10): the
    first one kept must hold u 10 + 1, as the first diff after a snapshot holds its
    lastUpdateId + 1; no snapshot request."""
    k = live_rest_keeper("binance")
    asked = k.snapshot_requests
    feed(k, [binance_diff(BTC, 7, 8), binance_diff(BTC, 9, 12)], connection=2)
    events = k.connection_closed(1, 50, "source connection closed (handed over)").events
    assert [(e[3], e[4], e[5]) for e in events] == [
        ("live", "live", "source connection closed (handed over)")]
    feed(k, [binance_diff(BTC, 13, 14)], connection=2)
    machine = k.machines[BTC]
    assert machine.state == "live" and machine.last.seq == 14
    assert k.snapshot_requests == asked
    assert (machine.resyncs, machine.desyncs) == (0, 0)
    assert k.read(BTC, lambda b: b.levels("bid", 1)) == [("100.0", "14")]


def test_a_binance_futures_book_moved_chains_on_pu():
    k = live_rest_keeper("binance-futures")
    feed(k, [binance_diff(BTC, 9, 10, 8), binance_diff(BTC, 11, 13, 10)], connection=2)
    assert [e[4] for e in k.connection_closed(1, 50, "source connection lost").events] \
        == ["live"]
    feed(k, [binance_diff(BTC, 14, 15, 13)], connection=2)
    machine = k.machines[BTC]
    assert (machine.state, machine.last.seq, machine.resyncs, machine.desyncs) == \
        ("live", 15, 0, 0)


def test_a_binance_book_whose_new_source_skipped_an_update_desyncs_and_fetches_a_snapshot():
    k = live_rest_keeper("binance")
    asked = k.snapshot_requests
    k.connection_closed(1, 50, "source connection lost")  # connection 2 brought nothing yet
    events = feed(k, [binance_diff(BTC, 12, 13)], connection=2)  # the switch: 11 is lost
    assert [(e[4], e[5].split(":")[0]) for e in events] == [
        ("live", "source connection lost"),
        ("desynced", "the new source connection does not continue the book"),
        ("resyncing", "snapshot asked")]
    assert "U 12 .. u 13 does not hold lastUpdateId 10 + 1" in events[1][5]
    assert k.snapshot_requests == asked + 1 and k.machines[BTC].desyncs == 1
    k.close()


def okx(symbol: str, seq: int, prev: int, snapshot: bool = False) -> BookMessage:
    return BookMessage(symbol, seq, seq, snapshot, [("100.0", str(seq))], [("101.0", "1")],
                       seq=seq, prev_seq=-1 if snapshot else prev)


def test_an_okx_book_moved_skips_the_new_subscriptions_older_snapshot_and_chains_on():
    k = keeper("okx")
    feed(k, [okx(BTC, 10, -1, True), okx(BTC, 15, 10), okx(BTC, 20, 15)], connection=1)
    # connection 2 subscribed later (a handover): its snapshot at 15, then 20 and 25
    feed(k, [okx(BTC, 15, -1, True), okx(BTC, 20, 15), okx(BTC, 25, 20)], connection=2)
    k.connection_closed(1, 50, "source connection closed (handed over)")
    machine = k.machines[BTC]
    assert (machine.state, machine.last.seq, machine.loads) == ("live", 25, 1)
    # a snapshot newer than the book replaces it (no resync); then it chains on
    k2 = keeper("okx")
    feed(k2, [okx(BTC, 10, -1, True)], connection=1)
    feed(k2, [okx(BTC, 30, -1, True), okx(BTC, 35, 30)], connection=2)
    k2.connection_closed(1, 50, "source connection closed (handed over)")
    assert k2.machines[BTC].last.seq == 35 and k2.read(BTC, lambda b: b.levels("bid", 1)) \
        == [("100.0", "35")]
    for kk in (k, k2):
        s = kk.stats()
        assert (s["book_resyncs"], s["book_desyncs"]) == (0, 0)


def kraken(symbol: str, snapshot: bool, size: str) -> BookMessage:
    return BookMessage(symbol, 1, 1, snapshot, [("100.0", size)], [("101.0", "1")])


def test_a_kraken_book_goes_on_from_the_other_connections_own_snapshot_else_resyncs():
    """No sequence: the book moved is rebuilt from the other connection's snapshot and
    the updates after it (its checksums the proof), without a resubscribe; when that
    snapshot was pushed out of the kept tail, it resubscribes there (a resync)."""
    k = keeper("kraken")
    feed(k, [kraken(BTC, True, "1"), kraken(BTC, False, "2")], connection=1)
    feed(k, [kraken(BTC, True, "2"), kraken(BTC, False, "3")], connection=2)
    events = k.connection_closed(1, 50, "source connection lost").events
    assert [(e[3], e[4]) for e in events] == [("live", "live")]
    assert k.read(BTC, lambda b: b.levels("bid", 1)) == [("100.0", "3")]
    assert k.take_resubscribes_by_connection() == {}
    # connection 3 brings more than the tail keeps: its snapshot goes, nothing proves it
    feed(k, [kraken(BTC, True, "4")] + [kraken(BTC, False, "5")] * HANDOVER_TAIL,
         connection=3)
    events = k.connection_closed(2, 60, "source connection lost").events
    assert [(e[3], e[4]) for e in events] == [("live", "resyncing")]
    assert k.take_resubscribes_by_connection() == {3: [BTC]}
    s = k.stats()
    assert (s["book_desyncs"], s["book_source_switches"]) == (0, 2)


def test_a_source_that_ends_before_the_other_brought_anything_hands_over_at_its_first_message():
    k = keeper()
    feed(k, [bybit(BTC, 1, True)], connection=1)
    assert k.connection_closed(1, 50, "source connection closed (handed over)").events == []
    # connection 2's first message is its own snapshot: it replaces the book at once
    events = feed(k, [bybit(BTC, 5, True), bybit(BTC, 6)], connection=2)
    assert [(e[3], e[4], e[5]) for e in events] == [
        ("live", "live", "source connection closed (handed over)")]
    assert k.take_resubscribes_by_connection() == {}  # its snapshot came: nothing to ask
    s = k.stats()
    assert (s["book_desyncs"], s["book_resyncs"]) == (0, 0) and k.machines[BTC].last.seq == 6


def test_a_bitstamp_book_moved_resyncs_from_rest_nothing_proves_it_goes_on():
    """No sequence, no snapshot on the socket: the move is a resync from REST, as before."""
    k = BookKeeper("bitstamp", [BTC], lambda: rule_for("bitstamp"), clock=lambda: 0)
    machine = k.machines[BTC]
    machine.feed(BookMessage(BTC, 5, 5, False, [("100.0", "1")], []))
    machine.snapshot(BookMessage(BTC, 4, 4, True, [("100.0", "1")], [("101.0", "1")],
                                 source="rest"))
    assert machine.state == "unverified"
    k.sources.seen(1)
    k.sources.admit(BTC, 1)
    feed(k, [BookMessage(BTC, 6, 6, False, [("100.0", "2")], [])], connection=2)
    events = k.connection_closed(1, 50, "source connection lost").events
    assert [(e[3], e[4]) for e in events] == [("unverified", "resyncing")]
    assert machine.feed(BookMessage(BTC, 7, 7, False, [("100.0", "3")], [])).action \
        == "fetch_snapshot"


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


def test_a_new_connection_overlaps_the_books_once_it_brought_what_they_hold():
    """A handover closes the old connection only then: the new one's first message may
    come after updates the old one still has on the way (unread, they would be lost)."""
    k = keeper()
    feed(k, [bybit(BTC, 1, True), bybit(BTC, 2), bybit(ETH, 1, True)], connection=1)
    feed(k, [bybit(BTC, 4), bybit(ETH, 2)], connection=2)  # ahead: 3 is on connection 1's way
    assert not k.books_overlap(2)
    feed(k, [bybit(BTC, 3), bybit(BTC, 4)], connection=1)
    assert not k.books_overlap(2)  # ETH: nothing of connection 2 the book holds yet
    feed(k, [bybit(ETH, 2)], connection=1)
    assert k.books_overlap(2) and not k.books_overlap(3)
    feed(k, [bybit(BTC, 5)], connection=2)
    k.connection_closed(1, 50, "source connection closed (handed over)")
    s = k.stats()
    assert (s["book_desyncs"], s["book_resyncs"]) == (0, 0) and k.machines[BTC].last.seq == 5
    # a venue where nothing can prove it (Bitstamp) never holds a handover back
    bitstamp = BookKeeper("bitstamp", [BTC], lambda: rule_for("bitstamp"), clock=lambda: 0)
    bitstamp.machines[BTC].state = "unverified"
    bitstamp.sources.seen(1)
    bitstamp.sources.admit(BTC, 1)
    assert bitstamp.books_overlap(2)


def test_what_a_moved_books_kept_messages_do_is_dated_after_the_move():
    """The tail was received before the move but is applied at it: its desync rows come
    after the move's row in ``book_events`` (ordered by time, as analysis reads them)."""
    k = keeper()
    feed(k, [bybit(BTC, 1, True, at=100), bybit(BTC, 2, at=110)], connection=1)
    feed(k, [bybit(BTC, 4, at=120)], connection=2)  # 3 never comes
    events = k.connection_closed(1, 500, "source connection lost").events
    assert [(e[2], e[4]) for e in events] == [(500, "live"), (501, "desynced"),
                                              (501, "resyncing")]
