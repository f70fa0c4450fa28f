"""The pure core of order books: the local book, the state machine, Bybit's rule."""

from __future__ import annotations

import pytest

from rtkit.books import STATES, BookMessage
from rtkit.books.audit import AUDIT_LEVELS
from rtkit.books.levels import LocalBook
from rtkit.books.machine import BookMachine
from rtkit.books.rules import rule_for
from rtkit.books.rules.bybit import BybitRule

T0 = 1_764_000_000_000_000_000


def msg(seq, bids=(), asks=(), snapshot=False, at=None, source="ws", **more):
    at = T0 + seq * 1_000_000 if at is None else at
    return BookMessage("BTC-USDT", at, at, snapshot, list(bids), list(asks), seq=seq,
                       source=source, **more)


SNAP = msg(100, [("99.5", "1"), ("99.0", "2")], [("100.5", "3"), ("101.0", "4")], True)


# --- the local book -----------------------------------------------------------------
def test_levels_keep_the_venues_strings_best_first_and_a_missing_zero_is_a_no_op():
    book = LocalBook()
    for price, size in [("99.0", "2"), ("99.50", "1.0"), ("98", "5")]:
        book.set_level(False, price, size)
    for price, size in [("101.0", "4"), ("100.5", "3")]:
        book.set_level(True, price, size)
    assert book.levels("bid", 2) == [("99.50", "1.0"), ("99.0", "2")]
    assert book.levels("ask", 5) == [("100.5", "3"), ("101.0", "4")]
    assert book.best_bid() == (99.5, 1.0) and book.best_ask() == (100.5, 3.0)
    book.set_level(False, "97", "0")  # a level it does not hold: nothing happens
    book.set_level(False, "99.5", "0.000")  # removes 99.50 (the same price, other text)
    assert book.levels("bid", 9) == [("99.0", "2"), ("98", "5")] and len(book) == 4
    assert book.float_levels("bid") == [(99.0, 2.0), (98.0, 5.0)]
    assert book.crossed() is None
    book.set_level(False, "100.5", "1")
    assert book.crossed() == (100.5, 100.5)


def test_the_depth_cap_keeps_the_best_levels_only():
    book = LocalBook(max_levels=3)
    for i in range(10):
        book.set_level(False, str(100 - i), "1")
        book.set_level(True, str(101 + i), "1")
    book.trim()
    assert [p for p, _ in book.levels("bid", 10)] == ["100", "99", "98"]
    assert [p for p, _ in book.levels("ask", 10)] == ["101", "102", "103"]
    with pytest.raises(ValueError):
        LocalBook(max_levels=0)
    with pytest.raises(ValueError):
        book.set_level(True, "one", "1")


# --- the machine on a socket-snapshot venue (Bybit) ---------------------------------------
def bybit_machine(**options):
    return BookMachine("bybit", "BTC-USDT", rule_for("bybit"), **options)


def states(events):
    return [(e[3], e[4]) for e in events]


def test_a_socket_snapshot_starts_the_book_and_deltas_chain_on_it():
    m = bybit_machine()
    assert m.feed(msg(99, [("99", "1")])).deltas == [] and m.state == "subscribing"
    step = m.feed(SNAP)
    assert states(step.events) == [("subscribing", "snapshot"), ("snapshot", "live")]
    assert step.events[-1][7] is not None  # seconds not live, on the way to live
    assert len(step.deltas) == 4 and {r[5] for r in step.deltas} == {1}
    assert step.deltas[0] == ("bybit", "BTC-USDT", SNAP.timestamp, SNAP.received_at, 100, 1,
                              "bid", 99.5, 1.0)
    step = m.feed(msg(101, [("99.5", "0"), ("99.2", "7")], [("100.5", "2")]))
    assert step.events == [] and step.action is None
    assert [r[5:] for r in step.deltas] == [(0, "bid", 99.5, 0.0), (0, "bid", 99.2, 7.0),
                                           (0, "ask", 100.5, 2.0)]
    assert m.book.levels("bid", 5) == [("99.2", "7"), ("99.0", "2")]
    assert m.state == "live" and m.skipped == 1


def test_a_sequence_gap_is_a_desync_with_its_numbers_and_asks_a_resubscribe():
    m = bybit_machine()
    m.feed(SNAP)
    step = m.feed(msg(102, [("99.1", "1")]))
    assert states(step.events) == [("live", "desynced"), ("desynced", "resyncing")]
    assert "u 102 != previous u 100 + 1" in step.events[0][5]
    assert step.action == "resubscribe" and step.deltas == [] and m.desyncs == 1
    assert m.feed(msg(103, [("99.1", "1")])).deltas == []  # ignored until the snapshot
    step = m.feed(msg(200, [("98", "1")], [("102", "1")], True, at=T0 + 10**9 + 200_000_000))
    assert states(step.events) == [("resyncing", "snapshot"), ("snapshot", "live")]
    assert step.events[-1][7] == pytest.approx(1.2 - 0.102)  # not live since the gap
    assert m.resyncs == 1 and m.book.levels("bid", 5) == [("98", "1")]


def test_a_duplicate_and_a_reordered_pair_are_desyncs():
    for seqs in ([101, 101], [102, 101]):
        m = bybit_machine()
        m.feed(SNAP)
        actions = [m.feed(msg(s, [("99.3", "1")])).action for s in seqs]
        assert "resubscribe" in actions and m.desyncs == 1


def test_u_1_is_a_restart_whose_snapshot_replaces_the_book():
    m = bybit_machine()
    m.feed(SNAP)
    m.feed(msg(101, [("99.2", "1")]))
    step = m.feed(msg(1, [("50", "1")], [("51", "1")], True))
    assert states(step.events) == [("live", "snapshot"), ("snapshot", "live")]
    assert "u 1 after u 101: the venue restarted" in step.events[0][5]
    assert step.action is None and m.state == "live" and m.desyncs == 0
    assert m.book.levels("bid", 5) == [("50", "1")]
    assert m.feed(msg(2, [("50", "2")])).events == []  # and the count goes on from 1


def test_a_chained_snapshot_replaces_the_book_quietly():
    m = bybit_machine()
    m.feed(SNAP)
    step = m.feed(msg(101, [("90", "1")], [("110", "1")], True))
    assert step.events == [] and m.book.levels("ask", 5) == [("110", "1")]
    assert {r[5] for r in step.deltas} == {1}


def test_a_crossed_book_is_a_desync_even_when_the_sequence_chains():
    m = bybit_machine()
    m.feed(SNAP)
    step = m.feed(msg(101, [("100.7", "1")]))
    assert states(step.events) == [("live", "desynced"), ("desynced", "resyncing")]
    assert "crossed book: best bid 100.7 >= best ask 100.5" in step.events[0][5]
    assert step.action == "resubscribe"


def test_an_unreadable_level_is_a_desync_not_an_exception():
    m = bybit_machine()
    m.feed(SNAP)
    step = m.feed(msg(101, [("abc", "1")]))
    assert step.action == "resubscribe" and "unreadable level" in step.events[0][5]


def test_quotes_are_derived_when_the_top_of_the_book_changes():
    m = bybit_machine(derive_quotes=True)
    step = m.feed(SNAP)
    assert step.quotes == [("bybit", "BTC-USDT", SNAP.timestamp, SNAP.received_at,
                            99.5, 1.0, 100.5, 3.0, 100)]
    assert m.feed(msg(101, [("98", "1")])).quotes == []  # below the top: no new quote
    assert m.feed(msg(102, [("99.5", "2")])).quotes[0][4:9] == (99.5, 2.0, 100.5, 3.0, 102)
    assert bybit_machine().feed(SNAP).quotes == []  # a venue with its own BBO channel


def test_the_bybit_rule_is_found_by_venue_and_an_unknown_venue_is_named():
    assert isinstance(rule_for("bybit"), BybitRule) and "unverified" in STATES
    with pytest.raises(ValueError, match="no order book rule for venue 'nowhere'"):
        rule_for("nowhere")


# --- the machine on a REST-snapshot venue ---------------------------------------------------
class RestRule:
    """Binance spot's rule, written out here so the machine is tested on its own."""

    name, verified, snapshot_from = "rest-test", True, "rest"

    def drop_before_snapshot(self, m, snapshot):
        return m.seq <= snapshot.seq

    def bridges(self, m, snapshot):
        ok = m.first_seq <= snapshot.seq + 1 <= m.seq
        return None if ok else f"U {m.first_seq} u {m.seq} vs lastUpdateId {snapshot.seq}"

    def follows(self, m, previous):
        ok = m.first_seq == previous.seq + 1
        return None if ok else f"U {m.first_seq} != previous u {previous.seq} + 1"

    def verify(self, book, m):
        return None


def rest_delta(first, last, bids=(), asks=()):
    return msg(last, bids, asks, first_seq=first)


def rest_snapshot(seq, at=None):
    return msg(seq, [("99", "1")], [("101", "1")], True, at=at, source="rest")


def test_a_rest_book_buffers_asks_a_snapshot_drops_what_it_holds_and_applies_the_rest():
    m = BookMachine("x", "BTC-USDT", RestRule())
    step = m.feed(rest_delta(5, 8, [("98", "1")]))
    assert step.action == "fetch_snapshot" and m.state == "buffering"
    m.feed(rest_delta(9, 12, [("97", "1")]))
    m.feed(rest_delta(13, 15, [("96", "1")]))
    step = m.snapshot(rest_snapshot(10))
    assert states(step.events) == [("buffering", "snapshot"), ("snapshot", "live")]
    snapshot_rows = [r for r in step.deltas if r[5] == 1]
    assert len(snapshot_rows) == 2 and step.deltas[:2] == snapshot_rows
    assert [r[4] for r in step.deltas[2:]] == [12, 15]  # 5..8 is in the snapshot
    assert [p for p, _ in m.book.levels("bid", 9)] == ["99", "97", "96"]
    assert m.feed(rest_delta(16, 16, [("95", "1")])).events == []


def test_a_snapshot_older_than_the_buffer_is_fetched_again():
    m = BookMachine("x", "BTC-USDT", RestRule())
    m.feed(rest_delta(20, 25))
    step = m.snapshot(rest_snapshot(10))
    assert step.action == "fetch_snapshot" and m.state == "buffering" and m.refetches == 1
    assert "lastUpdateId 10" in step.events[0][5]
    step = m.snapshot(rest_snapshot(22))
    assert m.state == "live" and step.action is None
    assert m.snapshot(rest_snapshot(30)).events == [] and m.skipped == 1  # nobody waits


def test_a_rest_desync_keeps_the_delta_after_the_hole_for_the_next_snapshot():
    m = BookMachine("x", "BTC-USDT", RestRule())
    m.feed(rest_delta(1, 1))
    m.snapshot(rest_snapshot(1))
    m.feed(rest_delta(2, 3))
    step = m.feed(rest_delta(6, 7, [("90", "1")]))  # 4..5 lost
    assert step.action == "fetch_snapshot" and "U 6 != previous u 3 + 1" in step.events[0][5]
    step = m.snapshot(rest_snapshot(6))
    assert m.state == "live" and [r[4] for r in step.deltas if r[5] == 0] == [7]


def test_the_buffer_is_bounded():
    m = BookMachine("x", "BTC-USDT", RestRule(), max_buffered=3)
    for i in range(10):
        m.feed(rest_delta(i, i))
    assert len(m._buffer) == 3 and m.buffer_overflow == 7


# --- an unverified venue and its audit ------------------------------------------------------
class UnverifiedRule(RestRule):
    name, verified = "unverified-test", False

    def follows(self, m, previous):
        return None

    def bridges(self, m, snapshot):
        return None


def test_an_unverified_book_says_so_and_its_audit_catches_a_wrong_level():
    m = BookMachine("x", "BTC-USDT", UnverifiedRule())
    m.feed(rest_delta(1, 1))
    m.snapshot(rest_snapshot(0))
    assert m.state == "unverified"
    m.feed(rest_delta(2, 2, [("99", "5")]))  # the venue's book says 1: a corruption
    venue = rest_snapshot(3)
    step = m.audit(venue)
    assert states(step.events) == [("unverified", "desynced"), ("desynced", "resyncing")]
    assert f"1 levels differ in the top {AUDIT_LEVELS} (bid 99: local 5 venue 1)" in \
        step.events[0][5]
    assert step.action == "fetch_snapshot"
    m.snapshot(rest_snapshot(4))
    assert m.audit(rest_snapshot(5)).events == [] and m.state == "unverified"


def test_a_reconnect_starts_the_book_over():
    m = bybit_machine()
    m.feed(SNAP)
    step = m.restart(T0 + 5, "reconnected")
    assert states(step.events) == [("live", "subscribing")] and m.last is None
    step = m.feed(msg(7, [("99", "1")], [("100", "1")], True, at=T0 + 10**9 + 5))
    assert step.events[-1][4] == "live" and step.events[-1][7] == pytest.approx(1.0)
