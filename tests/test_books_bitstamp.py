"""Bitstamp books end to end over a real loopback socket and real HTTP: the
``diff_order_book`` diffs start from the simulator's REST ``/api/v2/order_book/<pair>/``
(the diffs older than its ``microtimestamp`` dropped), the book (no sequence, no
checksum: ``unverified``) is audited against the same endpoint; an injected corruption
is caught by the audit asked after it and resynced from a new REST snapshot, a crossed
book at once, a forced close by the reconnect; the book equals the simulator's after each
(re)sync and at the end; trades flow on the same connection meanwhile; a clean run under
a fast-moving book has no false audit failure although a naive comparison of the same
snapshots would have flapped; quotes are derived from the book (no BBO channel)."""

from __future__ import annotations

import sqlite3

import pytest

import rtkit
from tests.conftest import wait_for
from tests.unverified_books import (
    INVISIBLE,
    SYMBOL,
    audit_catches_the_corruption_within_one_period,
    clean_run_never_fails_an_audit_where_a_naive_one_flaps,
    corruptions_caught_or_healed,
    crossed_book_desyncs_at_once_and_a_close_starts_over,
    events,
    invisible_fault_is_left_to_the_audit,
    run_three_corruptions,
    settled,
    stop,
)

pytestmark = pytest.mark.usefixtures("no_thread_leak")
VENUE = "bitstamp"


def test_the_book_starts_from_the_rest_snapshot_and_a_corruption_is_caught_and_resynced(db):
    """Three corrupted levels, the last after the stream's last diff (nothing heals it):
    each is overwritten by the stream before an audit sees it or caught by an audit;
    every audit failure is a real one, and each resync is a REST snapshot."""
    sim, rest, c, seen = run_three_corruptions(VENUE, db)
    try:
        wait_for(lambda: sim.book_faults["corrupted"] == 3 and c.stats["book_desyncs"] >= 1, 30)
        wait_for(lambda: settled(c, sim) and c.stats["stored"] == 300, 30)
    finally:
        stop(sim, rest, c)
    rows = events(db)
    assert rows[0][1:3] == ("subscribing", "buffering")
    assert "REST snapshot" in rows[1][3]
    desyncs = corruptions_caught_or_healed(c, sim, seen, rows)
    s = c.stats
    assert s["book_snapshot_requests"] >= len(desyncs) + 1 + s["book_audits"]
    assert c.reconnects == 0 and s["stored"] == 300 and s["rejected"] == 0


def test_the_audit_catches_the_corruption_within_one_period_of_its_arrival(db):
    audit_catches_the_corruption_within_one_period(VENUE, db)


def test_a_crossed_book_is_a_desync_at_once_and_a_close_starts_the_book_over(db):
    crossed_book_desyncs_at_once_and_a_close_starts_over(VENUE, db)


def test_a_clean_run_with_frequent_audits_never_fails_one_where_a_naive_audit_flaps(db):
    """Derived quotes: one per change of the top, never crossed, from the book itself."""
    clean_run_never_fails_an_audit_where_a_naive_one_flaps(VENUE, db)
    quotes = sqlite3.connect(db).execute("SELECT bid_price < ask_price FROM quotes")
    assert set(quotes.fetchall()) == {(1,)}


def test_quotes_without_the_book_and_a_depth_are_refused_with_what_to_pass(db):
    with pytest.raises(ValueError, match="quotes come from the order book"):
        rtkit.Collector(VENUE, [SYMBOL], db=db, kinds=["quotes"])
    with pytest.raises(ValueError, match="leave depth= out"):
        rtkit.Collector(VENUE, [SYMBOL], db=db, kinds=["book"], depth=10)


@pytest.mark.parametrize("fault", list(INVISIBLE))
def test_a_fault_the_rule_cannot_see_is_left_to_the_audit(db, fault):
    invisible_fault_is_left_to_the_audit(VENUE, db, fault)
