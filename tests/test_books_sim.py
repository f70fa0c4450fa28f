"""Bybit books end to end over a real loopback socket against the simulator's books:
every fault Bybit's rule can see is detected and healed, a clean run has no false
desync, each resync leaves the local book equal to the simulator's level by level,
and trades are collected exactly as without books."""

from __future__ import annotations

import sqlite3

import pytest

from rtkit.sim import Faults, get_dialect
from tests.books_over_socket import (
    clean_run_to_the_end,
    each_close_started_the_book_over,
    every_fault_detected_and_resynced,
    frames_quotes_and_deltas_add_up,
    run_to_the_end,
    start,
    trades_as_without_books,
)

pytestmark = pytest.mark.usefixtures("no_thread_leak")
SYMBOL = "BTC-USDT"


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


def run(db, faults, count, symbols=(SYMBOL,), book_rate=2_000.0, **options):
    """The shared socket run (:func:`tests.books_over_socket.start`) on Bybit, whose
    sequence is the simulated book's own."""
    return start("bybit", db, faults, count, symbols, book_rate=book_rate, **options)


FAULTS = {  # fault → (Faults, what the book's health record says of it)
    "dropped": (Faults(book_drop_every=250), "!= previous u"),
    "duplicated": (Faults(book_duplicate_every=250), "!= previous u"),
    "reordered": (Faults(book_reorder_every=250), "!= previous u"),
    "crossed": (Faults(book_cross_every=250), "crossed book: best bid"),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_every_injected_fault_is_detected_and_resynced_to_the_simulators_book(fault, db):
    faults, reason = FAULTS[fault]
    sim, c, seen = run(db, faults, count=2_100, book_rate=1_000.0)
    run_to_the_end(c, sim, 2_100, lambda: caught_up(c, sim, [SYMBOL]))
    every_fault_detected_and_resynced(c, sim, db, seen, fault, reason)
    assert_books_equal(c, sim, [SYMBOL])


def test_a_sequence_reset_starts_the_book_again_from_the_restart_snapshot(db):
    sim, c, seen = run(db, Faults(book_reset_every=300), count=1_550)
    run_to_the_end(c, sim, 1_550, lambda: caught_up(c, sim, [SYMBOL]))
    resets = sim.book_faults["reset"]
    assert resets >= 4 and c.stats["book_desyncs"] == 0
    restarts = sqlite3.connect(db).execute(
        "SELECT count(*) FROM book_events WHERE reason LIKE '%the venue restarted%'").fetchone()
    assert restarts == (resets,)
    assert all(local == simulated for _, _, local, simulated in seen)
    assert_books_equal(c, sim, [SYMBOL])


def test_a_forced_close_reconnects_and_the_book_starts_over(db):
    sim, c, seen = run(db, Faults(book_close_every=400), count=1_300)
    run_to_the_end(c, sim, 1_300, lambda: caught_up(c, sim, [SYMBOL]))
    closes = each_close_started_the_book_over(c, sim, db)
    assert len(seen) == closes + 1 and all(local == sim_ for _, _, local, sim_ in seen)
    assert_books_equal(c, sim, [SYMBOL])


def test_a_clean_run_has_no_desync_and_trades_are_collected_as_without_books(db, tmp_path):
    dialect = get_dialect("bybit")
    symbols = list(dialect.example_symbols)
    sim, c, seen = run(db, Faults(), count=20_000, symbols=symbols,
                       kinds=("trades", "quotes", "book"), rate=3_000, book_rate=None,
                       trades=1_200)
    s = clean_run_to_the_end(c, sim, symbols, caught_up)
    assert_books_equal(c, sim, symbols)
    assert all(local == simulated for _, _, local, simulated in seen)
    trades_as_without_books(db, sim, dialect, s)
    frames_quotes_and_deltas_add_up(c, s)
