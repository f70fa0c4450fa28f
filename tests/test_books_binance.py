"""Binance spot and USD-M books end to end: diffs over a real loopback socket, the
snapshot over real HTTP from the simulator's REST side. Every fault the ``U``/``u``
(spot) and ``pu`` (USD-M) rules can see is detected and healed by a new snapshot,
a stale snapshot is fetched again, each resync leaves the local book equal to the
simulator's level by level, trades keep coming on the same connection, a clean run
has no false desync, and many books start within the REST budget without a 429."""

from __future__ import annotations

import sqlite3

import pytest

import rtkit
from rtkit.rest.budget import Budget
from rtkit.sim import Faults, Simulator, get_dialect
from rtkit.sim.rest import SimRest
from tests.books_over_socket import (
    clean_run_to_the_end,
    detected_or_blind,
    each_close_started_the_book_over,
    frames_quotes_and_deltas_add_up,
    run_to_the_end,
    trades_as_without_books,
)
from tests.books_over_socket import events as book_events
from tests.conftest import wait_for
from tests.test_books_sim import assert_books_equal, caught_up
from tests.unverified_books import stop

pytestmark = pytest.mark.usefixtures("no_thread_leak")
VENUES = ("binance", "binance-futures")
SYMBOL = "BTC-USDT"


def watch_resyncs(c, sim):
    """After every step that brought a book (back) to live (a REST snapshot is
    applied in the keeper's ``poll``, with the diffs buffered meanwhile): its book and
    the simulator's at that sequence, to compare level by level. A book that a
    buffered diff broke again in the same step (a fault among the buffered diffs) is
    not live any more at its end: nothing to compare then."""
    keeper = c.pipeline.books
    poll, seen = keeper.poll, []

    def watched(now=None):
        step = poll(now)
        for event in step.events:
            machine = keeper.machines[event[1]]
            if event[4] == "live" and machine.state == "live":
                history = sim.books.book(event[1]).history
                seq = machine.last.seq
                local = (machine.book.levels("bid", 10_000), machine.book.levels("ask", 10_000))
                seen.append((event[1], seq, local, history.get(seq)))
        return step

    keeper.poll = watched
    return seen


def run(venue, db, faults, count, symbols=(SYMBOL,), kinds=("trades", "book"), rate=100,
        book_rate=1_000.0, trades=None, depth=None):
    sim = Simulator(venue, rate=rate, count=trades, book_rate=book_rate, book_count=count,
                    seed=11, faults=faults, keep_book_history=True)
    sim.start()
    rest = SimRest(sim).start()
    # snapshots take 50 ms as over a real network: a resync lasts long enough for the
    # trades that keep coming meanwhile to be seen
    rest.inject(200, count=1_000, delay_s=0.05)
    c = rtkit.Collector(venue, list(symbols), url=sim.url, db=db, kinds=list(kinds), depth=depth,
                        backoff_initial_s=0.05, flush_interval_s=0.2)
    assert c.rest_url == rest.url  # found beside the simulator, never the venue
    seen = watch_resyncs(c, sim)
    c.start()
    return sim, rest, c, seen


FAULTS = {  # fault → Faults; every desync's reason names the sequence that did not chain
    "dropped": Faults(book_drop_every=250),
    "duplicated": Faults(book_duplicate_every=250),
    "reordered": Faults(book_reorder_every=250),
    "crossed": Faults(book_cross_every=250),
}
REASON = {"binance": "!= previous u", "binance-futures": "!= previous u"}


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("venue", VENUES)
def test_every_injected_fault_is_detected_and_resynced_from_a_rest_snapshot(venue, fault, db):
    sim, rest, c, seen = run(venue, db, FAULTS[fault], count=2_100)
    run_to_the_end(c, sim, 2_100, lambda: caught_up(c, sim, [SYMBOL]),
                   stop=lambda: stop(sim, rest, c))
    injected = sim.book_faults[fault]
    assert injected == 8
    events = book_events(db)
    # a fault before the first snapshot is held by it (the snapshot comes after the
    # diff it hit): nothing to detect, as in a resync's window
    first = next(e[4] for e in events if e[1] == "snapshot")
    before = [f for f in sim.book_fault_log if f[2] <= first]
    detected, blind, false = detected_or_blind(
        [f for f in sim.book_fault_log if f[2] > first], events)
    assert not false and len(before) + len(detected) + len(blind) == injected
    assert len(detected) >= injected // 2
    s = c.stats
    assert s["book_desyncs"] == len(detected) == s["book_resyncs"], (events, sim.book_fault_log)
    desyncs = [e for e in events if e[1] == "desynced"]
    reason = "crossed book: best bid" if fault == "crossed" else REASON[venue]
    assert all(reason in e[2] for e in desyncs)
    # each resync came from a REST snapshot over HTTP
    assert rest.requests["/api/v3/depth" if venue == "binance" else "/fapi/v1/depth"] \
        == s["book_snapshot_requests"] >= len(detected) + 1
    assert rest.statuses[429] == 0
    back = [e for e in events if e[1] == "live"]
    assert len(back) == len(detected) + 1 and all(e[3] is not None and e[3] >= 0 for e in back)
    assert len(detected) + 1 >= len(seen) >= len(detected) // 2
    for symbol, seq, local, simulated in seen:
        assert simulated is not None and local == simulated, (symbol, seq)
    assert_books_equal(c, sim, [SYMBOL])
    # trades kept coming on the same connection during the resyncs
    assert c.reconnects == 0 and s["stored"] > 0 and s["rejected"] == 0
    con = sqlite3.connect(db)
    outages = con.execute(
        "SELECT d.at, min(l.at) FROM book_events d JOIN book_events l ON l.at > d.at "
        "AND l.to_state = 'live' WHERE d.to_state = 'desynced' GROUP BY d.at").fetchall()
    during = sum(con.execute("SELECT count(*) FROM ticks WHERE received_at BETWEEN ? AND ?",
                             window).fetchone()[0] for window in outages)
    assert len(outages) == len(detected) and during > 0


@pytest.mark.parametrize("venue", VENUES)
def test_a_sequence_reset_is_a_gap_and_the_book_resyncs(venue, db):
    """Binance sends no restart message: update ids that start again do not chain."""
    sim, rest, c, _ = run(venue, db, Faults(book_reset_every=300), count=1_550)
    run_to_the_end(c, sim, 1_550, lambda: caught_up(c, sim, [SYMBOL]),
                   stop=lambda: stop(sim, rest, c))
    resets = sim.book_faults["reset"]
    assert resets >= 4
    desyncs = [e for e in book_events(db) if e[1] == "desynced"]
    assert len(desyncs) == resets == c.stats["book_resyncs"]
    # each reset is seen as the chain breaking; usually at the reset diff itself (u 1),
    # later when it came while the book was already fetching a snapshot
    assert all(REASON[venue] in e[2] for e in desyncs)
    assert any(e[4] == 1 for e in desyncs)
    assert_books_equal(c, sim, [SYMBOL])


@pytest.mark.parametrize("venue", VENUES)
def test_a_stale_snapshot_is_fetched_again_until_it_bridges_the_buffered_diffs(venue, db):
    sim, rest, c, seen = run(venue, db, Faults(book_drop_every=300, stale_snapshot_every=2),
                             count=2_500)
    run_to_the_end(c, sim, 2_500, lambda: caught_up(c, sim, [SYMBOL]),
                   stop=lambda: stop(sim, rest, c))
    events = book_events(db)
    refetched = [e for e in events if "snapshot does not bridge the buffered deltas" in e[2]]
    assert sim.books.stale_snapshots >= 1 and len(refetched) >= 1
    assert all(e[0] == e[1] in ("buffering", "resyncing") for e in refetched)
    _, _, false = detected_or_blind(sim.book_fault_log, events)
    assert not false  # a stale snapshot is never applied: it costs a refetch, not a desync
    assert c.stats["book_snapshot_requests"] == rest.requests[
        "/api/v3/depth" if venue == "binance" else "/fapi/v1/depth"]
    assert all(simulated is not None and local == simulated for _, _, local, simulated in seen)
    assert_books_equal(c, sim, [SYMBOL])


@pytest.mark.parametrize("venue", VENUES)
def test_a_forced_close_reconnects_and_each_book_starts_from_a_new_snapshot(venue, db):
    sim, rest, c, seen = run(venue, db, Faults(book_close_every=400), count=1_300)
    run_to_the_end(c, sim, 1_300, lambda: caught_up(c, sim, [SYMBOL]),
                   stop=lambda: stop(sim, rest, c))
    closes = each_close_started_the_book_over(c, sim, db)
    assert c.stats["book_snapshot_requests"] >= closes + 1
    assert len(seen) >= closes and all(local == sim_ for _, _, local, sim_ in seen)
    assert_books_equal(c, sim, [SYMBOL])


@pytest.mark.parametrize("venue", VENUES)
def test_a_clean_run_has_no_desync_and_trades_are_collected_as_without_books(venue, db):
    dialect = get_dialect(venue)
    symbols = list(dialect.example_symbols)
    sim, rest, c, seen = run(venue, db, Faults(), count=20_000, symbols=symbols,
                             kinds=("trades", "quotes", "book"), rate=3_000, book_rate=None,
                             trades=1_200)
    s = clean_run_to_the_end(c, sim, symbols, caught_up,
                             stop=lambda: stop(sim, rest, c))
    assert s["book_snapshot_requests"] == len(symbols)
    assert_books_equal(c, sim, symbols)
    assert all(local == simulated for _, _, local, simulated in seen)
    trades_as_without_books(db, sim, dialect, s)
    frames_quotes_and_deltas_add_up(c, s)


def test_many_usd_m_books_start_within_the_rest_budget_without_a_429(db):
    """Time compressed a hundredfold: the server enforces the published 2,400 weight a
    window, the client spends at most half; 30 books at depth 500 (weight 10) need
    300, so the budget paces the snapshots over about three windows."""
    window_s = 0.6
    symbols = [f"C{i:02d}-USDT".replace("0", "Q") for i in range(30)]
    sim = Simulator("binance-futures", rate=None, count=0, book_rate=3_000.0, seed=4)
    sim.start()
    rest = SimRest(sim, limit=200, window_s=window_s).start()
    budget = Budget.for_venue("binance-futures", window_s=window_s, limit=200)
    c = rtkit.Collector("binance-futures", symbols, url=sim.url, db=db, kinds=["book"],
                        depth=500, flush_interval_s=0.2)
    keeper = c.pipeline.books
    keeper._fetch = c.adapter.book_snapshot_fetch(rest.url, budget=budget)
    c.start()
    try:
        wait_for(lambda: c.stats["books_good"] == len(symbols), 60)
    finally:
        c.stop()
        rest.stop()
        sim.stop()
    assert rest.statuses[429] == 0 and rest.statuses[200] == len(symbols)
    # the client never spent more than half the limit in a window; the server, whose
    # windows do not line up with the client's, never saw the limit reached
    assert budget.peak <= budget.capacity == 100 and rest.used_peak < rest.limit == 200
    assert budget.waited_s > 0  # the budget, not luck, kept the venue's limit
    assert c.stats["book_desyncs"] == 0


def test_depth_picks_the_rest_limit_and_a_depth_the_venue_lacks_is_refused(db):
    with pytest.raises(ValueError, match="5, 10, 20, 50, 100, 500, 1000"):
        rtkit.Collector("binance-futures", [SYMBOL], url="ws://127.0.0.1:9/ws", db=db,
                        kinds=["book"], depth=200)
    with pytest.raises(ValueError, match="depth= 1 to 5000"):
        rtkit.Collector("binance", [SYMBOL], url="ws://127.0.0.1:9/ws", db=db, kinds=["book"],
                        depth=6000)
    with pytest.raises(ValueError, match="separate connections"):
        rtkit.Collector("binance-futures", [SYMBOL], db=db, kinds=["trades", "book"])
    assert rtkit.Collector("binance-futures", [SYMBOL], db=db, kinds=["quotes", "book"]).url \
        == "wss://fstream.binance.com/public/ws"
    sim = Simulator("binance", rate=None, count=0, book_rate=500.0, book_count=50, seed=2)
    with sim, SimRest(sim) as rest:
        fetch = rtkit.Collector("binance", [SYMBOL], url=sim.url, db=db, kinds=["book"],
                                depth=20).adapter.book_snapshot_fetch(rest.url)
        snap = fetch(SYMBOL)
        fetch.client.close()
    assert snap.source == "rest" and snap.is_snapshot and len(snap.bids) == len(snap.asks) == 20
    assert snap.seq == sim.books.book(SYMBOL).seq


def _diff(u, *, first=None, pu=None, bids=(("100.0", "1"),), received_at=0):
    from rtkit.books import BookMessage

    return BookMessage(SYMBOL, received_at, received_at, False, list(bids), [("101.0", "1")],
                       seq=u, first_seq=u if first is None else first, prev_seq=pu)


def _rest_snapshot(last_update_id):
    from rtkit.books import BookMessage

    return BookMessage(SYMBOL, 0, 0, True, [("100.0", "2")], [("101.0", "2")],
                       seq=last_update_id, source="rest")


@pytest.mark.parametrize("venue", VENUES)
def test_a_diff_older_than_a_snapshot_that_came_first_is_dropped_not_a_desync(venue):
    """The REST snapshot may be ahead of the socket: the diffs it holds that arrive
    after it are dropped ("drop any event where u <= lastUpdateId")."""
    from rtkit.books.machine import BookMachine
    from rtkit.books.rules import rule_for

    futures = venue == "binance-futures"
    machine = BookMachine(venue, SYMBOL, rule_for(venue))
    assert machine.feed(_diff(1, pu=0 if futures else None)).action == "fetch_snapshot"
    machine.snapshot(_rest_snapshot(5))  # the socket has only brought diff 1 so far
    assert machine.state == "live"
    for u in (2, 3, 4, 5)[: 3 if futures else 4]:  # USD-M keeps u == lastUpdateId
        machine.feed(_diff(u, pu=u - 1 if futures else None))
    assert machine.state == "live" and machine.desyncs == 0
    for u in (5, 6, 7) if futures else (6, 7):
        machine.feed(_diff(u, pu=u - 1 if futures else None))
    assert machine.state == "live" and machine.desyncs == 0 and machine.last.seq == 7


def test_a_usd_m_diff_held_behind_a_later_one_is_dropped_when_the_snapshot_holds_it():
    from rtkit.books.machine import BookMachine
    from rtkit.books.rules import rule_for

    machine = BookMachine("binance-futures", SYMBOL, rule_for("binance-futures"))
    machine.feed(_diff(10, pu=9))
    machine.feed(_diff(12, pu=11))  # 11 was held back by the network
    machine.feed(_diff(11, pu=10))
    machine.feed(_diff(13, pu=12))
    machine.snapshot(_rest_snapshot(12))  # bridged by 12; 11 is in it, 13 follows 12
    assert machine.state == "live" and machine.desyncs == 0 and machine.last.seq == 13


def test_a_failing_snapshot_request_is_recorded_and_asked_again_without_losing_trades(db):
    sim = Simulator("binance", rate=200, book_rate=500.0, seed=5, keep_book_history=True)
    sim.start()
    rest = SimRest(sim).start()
    rest.inject(400, count=2, path="/api/v3/depth")  # refused twice, then answered
    c = rtkit.Collector("binance", [SYMBOL], url=sim.url, db=db, kinds=["trades", "book"],
                        flush_interval_s=0.2)
    c.start()
    try:
        wait_for(lambda: c.stats["books_good"] == 1, 30)
        assert c.status == "live" and c.stats["book_snapshot_failures"] == 2
    finally:
        stop(sim, rest, c)
    failures = [e for e in book_events(db) if "snapshot request failed" in e[2]]
    assert len(failures) == 2 and all(e[0] == e[1] == "buffering" for e in failures)
    assert "HTTP 400" in failures[0][2] and "asked again in 1 s" in failures[0][2]
    assert "asked again in 2 s" in failures[1][2]
    assert c.stats["book_desyncs"] == 0 and c.stats["stored"] > 0 and c.reconnects == 0
