"""Bybit books end to end over a real loopback socket against the simulator's books:
every fault Bybit's rule can see is detected and healed, a clean run has no false
desync, each resync leaves the local book equal to the simulator's level by level,
and trades are collected exactly as without books."""

from __future__ import annotations

import sqlite3

import pytest

from rtkit.books import Step
from rtkit.books.keeper import BookKeeper
from rtkit.sim import Faults, get_dialect
from rtkit.sim.book import SimBook
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


def took_every_book_frame(c, sim) -> bool:
    """The client has taken every book frame the simulator sent (one message each)."""
    return c.stats["book_messages"] == sim.sent["book"] + sim.sent["book_snapshots"]


def watch_each_good_book(monkeypatch) -> tuple[list, list]:
    """``(seq, levels)`` of each book made good, taken right after the message that made
    it so (the keeper is given one message at a time, the rows are the same: a lagging
    client may read several resets in one batch), and every ``book_events`` row made."""
    seen: list = []
    events: list = []
    feed = BookKeeper.feed

    def feed_watching_each_message(keeper, messages):
        out = Step()
        for msg in messages:
            step = feed(keeper, [msg])
            out.deltas += step.deltas
            out.events += step.events
            events.extend(step.events)
            out.quotes += step.quotes
            machine = keeper.machines[msg.symbol]
            if any(event[4] == machine.good for event in step.events):
                seen.append((machine.last.seq, (machine.book.levels("bid", 10_000),
                                                machine.book.levels("ask", 10_000))))
        return out

    monkeypatch.setattr(BookKeeper, "feed", feed_watching_each_message)
    return seen, events


def test_a_sequence_reset_starts_the_book_again_from_the_restart_snapshot(db, monkeypatch):
    # each reset starts the simulator's sequence (and its history) again at 1: every
    # epoch's history is kept, so the book made good after the k-th reset is compared with
    # the simulator's of that epoch, however far behind the client runs
    epochs: list[dict] = []
    restart = SimBook.restart

    def restart_keeping_the_history(book):
        epochs.append(dict(book.history))
        restart(book)

    monkeypatch.setattr(SimBook, "restart", restart_keeping_the_history)
    good, made = watch_each_good_book(monkeypatch)
    sim, c, _ = run(db, Faults(book_reset_every=300), count=1_550)
    # caught up by frames, not only by sequence: a client an epoch behind passes the
    # simulator's last u in an earlier epoch too (1,550 is no multiple of 300: no reset
    # comes after the last message)
    run_to_the_end(c, sim, 1_550, lambda: took_every_book_frame(c, sim)
                   and caught_up(c, sim, [SYMBOL]))
    resets = sim.book_faults["reset"]
    assert resets >= 4 and c.stats["book_desyncs"] == 0 and c.reconnects == 0
    # every reset is seen as the venue's restart; each is in the health record, but two
    # read in one batch (a client far behind) share their time, ``at``, and with it the
    # table's key: the second pair of rows is then counted as duplicates, not stored
    restarted = [e[2] for e in made if "the venue restarted" in e[5]]
    assert len(restarted) == resets
    restarts = sqlite3.connect(db).execute(
        "SELECT count(*) FROM book_events WHERE reason LIKE '%the venue restarted%'").fetchone()
    assert restarts == (len(set(restarted)),)
    assert c.stats["book_event_duplicates"] == 2 * (resets - len(set(restarted)))
    # the first snapshot, then the restart snapshot (u 1) of each reset, each equal to
    # the simulator's book of its epoch at that sequence
    epochs.append(sim.books.book(SYMBOL).history)
    assert len(good) == resets + 1 == len(epochs)
    assert [seq for seq, _ in good[1:]] == [1] * resets
    assert all(levels == epoch[seq] for (seq, levels), epoch in zip(good, epochs, strict=True))
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
