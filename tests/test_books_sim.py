"""Bybit books end to end over a real loopback socket against the simulator's books:
every fault Bybit's rule can see is detected and healed, a clean run has no false
desync, each resync leaves the local book equal to the simulator's level by level,
and trades are collected exactly as without books."""

from __future__ import annotations

import sqlite3

import pytest

import rtkit
from rtkit.sim import Faults, Simulator, get_dialect
from tests.conftest import wait_for

pytestmark = pytest.mark.usefixtures("no_thread_leak")
SYMBOL = "BTC-USDT"


def watch_resyncs(c, sim):
    """After every message that brought a book (back) to live: its book and the
    simulator's at that sequence, to compare level by level."""
    keeper = c.pipeline.books
    feed, seen = keeper.feed, []

    def watched(messages):
        step = feed(messages)
        for event in step.events:
            if event[4] == "live":
                machine = keeper.machines[event[1]]
                history = sim.books.book(event[1]).history
                seq = machine.last.seq
                local = (machine.book.levels("bid", 10_000), machine.book.levels("ask", 10_000))
                seen.append((event[1], seq, local, history.get(seq)))
        return step

    keeper.feed = watched
    return seen


def caught_up(c, sim, symbols):
    """Every book live and at the simulator's last sequence."""
    keeper = c.pipeline.books
    for symbol in symbols:
        machine = keeper.machines[symbol]
        if machine.state != "live" or machine.last is None or \
                machine.last.seq != sim.books.book(symbol).seq:
            return False
    return True


def assert_books_equal(c, sim, symbols):
    for symbol in symbols:
        bids, asks, _ = sim.books.book(symbol).snapshot()
        assert c.pipeline.books.read(symbol, lambda b: (b.levels("bid", 10_000),
                                                         b.levels("ask", 10_000))) == (bids, asks)


def run(db, faults, count, symbols=(SYMBOL,), kinds=("book",), rate=None, book_rate=2_000.0,
        trades=None):
    sim = Simulator("bybit", rate=rate or 100, count=trades, book_rate=book_rate,
                    book_count=count, seed=11, faults=faults, keep_book_history=True)
    sim.start()
    c = rtkit.Collector("bybit", list(symbols), url=sim.url, db=db, kinds=list(kinds),
                        backoff_initial_s=0.05, flush_interval_s=0.2)
    seen = watch_resyncs(c, sim)
    c.start()
    return sim, c, seen


FAULTS = {  # fault → (Faults, what the book's health record says of it)
    "dropped": (Faults(book_drop_every=250), "!= previous u"),
    "duplicated": (Faults(book_duplicate_every=250), "!= previous u"),
    "reordered": (Faults(book_reorder_every=250), "!= previous u"),
    "crossed": (Faults(book_cross_every=250), "crossed book: best bid"),
}


def detected_or_blind(fault_log, events):
    """Each injected fault: ``detected`` when a desync names the message it hit (or,
    for a lost or held delta, the one after it), ``blind`` when it hit a message the
    book was already discarding (sent between an earlier desync and the snapshot that
    healed it: the client's lag behind the simulator decides how many). Returns both
    lists and the desyncs that match no fault (false desyncs)."""
    desyncs = [e for e in events if e[1] == "desynced"]
    heals = [e[4] for e in events if e[0] == "resyncing" and e[1] == "snapshot"]
    windows = list(zip([e[4] for e in desyncs], heals, strict=False))
    detected, blind, matched = [], [], set()
    for _, _, seq in fault_log:
        hit = next((i for i, e in enumerate(desyncs) if e[4] in (seq, seq + 1)
                    and i not in matched), None)
        if hit is not None:
            matched.add(hit)
            detected.append(seq)
        elif any(start <= seq <= end for start, end in windows):
            blind.append(seq)
    false = [e for i, e in enumerate(desyncs) if i not in matched]
    return detected, blind, false


@pytest.mark.parametrize("fault", list(FAULTS))
def test_every_injected_fault_is_detected_and_resynced_to_the_simulators_book(fault, db):
    faults, reason = FAULTS[fault]
    sim, c, seen = run(db, faults, count=2_100, book_rate=1_000.0)
    try:
        wait_for(lambda: sim.books.messages >= 2_100 and caught_up(c, sim, [SYMBOL]), 30)
    finally:
        c.stop()
        sim.stop()
    injected = sim.book_faults[fault]
    assert injected == 8 and len(sim.book_fault_log) == 8
    events = sqlite3.connect(db).execute(
        "SELECT from_state, to_state, reason, not_live_s, seq FROM book_events "
        "ORDER BY at").fetchall()
    detected, blind, false = detected_or_blind(sim.book_fault_log, events)
    assert not false and len(detected) + len(blind) == injected
    assert len(detected) >= injected // 2  # blind ones are the client's lag, not the rule
    s = c.stats
    assert s["book_desyncs"] == len(detected) == s["book_resyncs"]
    desyncs = [e for e in events if e[1] == "desynced"]
    assert all(reason in e[2] for e in desyncs)
    back = [e for e in events if e[1] == "live" and e[0] == "snapshot"]
    assert len(back) == len(detected) + 1 and all(e[3] is not None and e[3] >= 0 for e in back)
    assert len(seen) == len(detected) + 1  # the first snapshot, then each resync
    for symbol, seq, local, simulated in seen:
        assert simulated is not None and local == simulated, (symbol, seq)
    assert_books_equal(c, sim, [SYMBOL])


def test_a_sequence_reset_starts_the_book_again_from_the_restart_snapshot(db):
    sim, c, seen = run(db, Faults(book_reset_every=300), count=1_550)
    try:
        wait_for(lambda: sim.books.messages >= 1_550 and caught_up(c, sim, [SYMBOL]), 30)
    finally:
        c.stop()
        sim.stop()
    resets = sim.book_faults["reset"]
    assert resets >= 4 and c.stats["book_desyncs"] == 0
    restarts = sqlite3.connect(db).execute(
        "SELECT count(*) FROM book_events WHERE reason LIKE '%the venue restarted%'").fetchone()
    assert restarts == (resets,)
    assert all(local == simulated for _, _, local, simulated in seen)
    assert_books_equal(c, sim, [SYMBOL])


def test_a_forced_close_reconnects_and_the_book_starts_over(db):
    sim, c, seen = run(db, Faults(book_close_every=400), count=1_300)
    try:
        wait_for(lambda: sim.books.messages >= 1_300 and caught_up(c, sim, [SYMBOL]), 30)
    finally:
        c.stop()
        sim.stop()
    closes = sim.book_faults["closed"]
    assert closes >= 3 and c.reconnects >= closes
    starts = sqlite3.connect(db).execute(
        "SELECT count(*) FROM book_events WHERE to_state = 'subscribing'").fetchone()
    assert starts == (closes,)
    assert len(seen) == closes + 1 and all(local == sim_ for _, _, local, sim_ in seen)
    assert_books_equal(c, sim, [SYMBOL])


def test_a_clean_run_has_no_desync_and_trades_are_collected_as_without_books(db, tmp_path):
    dialect = get_dialect("bybit")
    symbols = list(dialect.example_symbols)
    sim, c, seen = run(db, Faults(), count=20_000, symbols=symbols,
                       kinds=("trades", "quotes", "book"), rate=3_000, book_rate=None,
                       trades=1_200)
    try:
        wait_for(lambda: sim.books.messages >= 20_000 and caught_up(c, sim, symbols)
                 and c.stats["stored"] >= 1_200, 60)
    finally:
        c.stop()
        sim.stop()
    s = c.stats
    assert s["book_desyncs"] == 0 and s["book_messages"] >= 20_000
    assert_books_equal(c, sim, symbols)
    assert all(local == simulated for _, _, local, simulated in seen)
    # trades: the same rows and the same accounting as a trades-only collector
    rows = sorted(sqlite3.connect(db).execute(
        "SELECT symbol, trade_id, timestamp, price, volume, side FROM ticks").fetchall())
    assert rows == sorted((t.symbol, dialect.expected_trade_id(t), t.ts_ns, float(t.price),
                           float(t.volume), t.side) for t in sim.trades)
    assert s["ticks"] == s["stored"] + s["duplicates"] + s["pending"] + s["dropped_overflow"] \
        + s["unstorable"] and s["stored"] == 1_200 and s["rejected"] == 0
    assert s["frames"] == s["tick_frames"] + s["control"] + s["rejected_frames"]
    assert s["quotes"] == s["quotes_stored"] > 0 and len(c.quotes) == s["quotes"]
    assert s["book_deltas_stored"] == s["book_deltas"]
