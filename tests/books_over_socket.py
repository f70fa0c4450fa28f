"""What the venue book suites over a real loopback socket share: a collector against
the simulator's books, the book's health record read back, each injected fault
matched with the desync that names it, and the local books compared with the
simulator's level by level.

A venue whose sequence is not the simulated book's own (OKX's ``seqId``, Coinbase's
connection-wide ``sequence_num``) passes ``to_seq`` (the simulated ``seq`` → the
sequence its frames carry) and ``from_seq`` (the other way, given the simulator).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import rtkit
from rtkit.sim import Faults, Simulator
from tests.conftest import wait_for

EVENTS_SQL = ("SELECT from_state, to_state, reason, not_live_s, seq FROM book_events "
              "ORDER BY at")


def start(venue: str, db, faults: Faults, count: int, symbols, kinds=("book",), rate=None,
          book_rate: float | None = 1_000.0, trades=None,
          from_seq: Callable[[Simulator, int], int] = lambda sim, s: s, **sim_options):
    """A started simulator with book history and a started collector on it, with the
    books that came (back) to good watched (:func:`watch_lives`)."""
    sim = Simulator(venue, rate=rate or 100, count=trades, book_rate=book_rate,
                    book_count=count, seed=11, faults=faults, keep_book_history=True,
                    **sim_options)
    sim.start()
    c = rtkit.Collector(venue, list(symbols), url=sim.url, db=db, kinds=list(kinds),
                        backoff_initial_s=0.05, flush_interval_s=0.2)
    seen = watch_lives(c, sim, from_seq)
    c.start()
    return sim, c, seen


def local_levels(c, symbol: str):
    return c.pipeline.books.read(symbol, lambda b: (b.levels("bid", 10_000),
                                                    b.levels("ask", 10_000)))


def books_equal(c, sim, symbols) -> bool:
    """Every book live (or the venue's good state) and equal to the simulator's."""
    keeper = c.pipeline.books
    for symbol in symbols:
        machine = keeper.machines[symbol]
        if machine.state != machine.good:
            return False
        bids, asks, _ = sim.books.book(symbol).snapshot()
        if local_levels(c, symbol) != (bids, asks):
            return False
    return True


def events(db) -> list[tuple]:
    return sqlite3.connect(db).execute(EVENTS_SQL).fetchall()


def detected_or_blind(fault_log, book_events, to_seq: Callable[[int], int] = lambda s: s):
    """Each injected fault: ``detected`` when a desync names the message it hit (or,
    for a lost or held message, the one after it), ``blind`` when it hit a message the
    book was already discarding (between an earlier desync and the snapshot that
    healed it). Returns both lists and the desyncs that match no fault (false ones)."""
    desyncs = [e for e in book_events if e[1] == "desynced"]
    heals = [e[4] for e in book_events if e[0] == "resyncing" and e[1] == "snapshot"]
    windows = list(zip([e[4] for e in desyncs], heals, strict=False))
    detected, blind, matched = [], [], set()
    for _, _, seq in fault_log:
        hit = next((i for i, e in enumerate(desyncs)
                    if e[4] in (to_seq(seq), to_seq(seq + 1)) and i not in matched), None)
        if hit is not None:
            matched.add(hit)
            detected.append(seq)
        elif any(begin <= to_seq(seq) <= end for begin, end in windows):
            blind.append(seq)
    false = [e for i, e in enumerate(desyncs) if i not in matched]
    return detected, blind, false


def watch_lives(c, sim, from_seq: Callable[[Simulator, int], int] = lambda sim, s: s) -> list:
    """After every message that brought a book (back) to good: its book and the
    simulator's at that sequence (``from_seq``: the frame's sequence → the simulated
    one), to compare level by level."""
    keeper = c.pipeline.books
    feed, seen = keeper.feed, []

    def watched(messages):
        step = feed(messages)
        for event in step.events:
            machine = keeper.machines[event[1]]
            if event[4] == machine.good:
                if machine.state != machine.good or machine.last is None:
                    # good, then broken again by a later message of the same read (a
                    # crossed update right after the snapshot): that book is gone
                    seen.append((event[1], None, None, None))
                    continue
                history = sim.books.book(event[1]).history
                local = (machine.book.levels("bid", 10_000), machine.book.levels("ask", 10_000))
                seen.append((event[1], machine.last.seq, local,
                             history.get(from_seq(sim, machine.last.seq))))
        return step

    keeper.feed = watched
    return seen


def every_fault_detected_and_resynced(c, sim, db, seen, fault: str, reason: str,
                                      to_seq: Callable[[int], int] = lambda s: s) -> list:
    """The checks of a run with one kind of fault injected 8 times: every desync is a
    real one, named ``reason``; at least half the faults are detected (the blind ones
    are the client's lag, not the rule); each detected one resynced once, and each
    (re)sync left the local book equal to the simulator's at that sequence. Returns the
    detected faults."""
    injected = sim.book_faults[fault]
    assert injected == 8 and len(sim.book_fault_log) == 8
    record = events(db)
    detected, blind, false = detected_or_blind(sim.book_fault_log, record, to_seq)
    assert not false and len(detected) + len(blind) == injected
    assert len(detected) >= injected // 2  # blind ones are the client's lag, not the rule
    s = c.stats
    assert s["book_desyncs"] == len(detected) == s["book_resyncs"]
    assert all(reason in e[2] for e in record if e[1] == "desynced")
    back = [e for e in record if e[1] == "live" and e[0] == "snapshot"]
    assert len(back) == len(detected) + 1 and all(e[3] is not None and e[3] >= 0 for e in back)
    assert len(seen) == len(detected) + 1  # the first snapshot, then each resync
    compared = [entry for entry in seen if entry[1] is not None]
    assert len(compared) >= len(seen) // 2  # most books are still good when looked at
    for symbol, seq, local, simulated in compared:
        assert simulated is not None and local == simulated, (symbol, seq)
    return detected


def each_close_started_the_book_over(c, sim, db) -> int:
    """At least three forced closes, each one reconnected and recorded as one new start
    of the book. Returns the number of closes."""
    closes = sim.book_faults["closed"]
    assert closes >= 3 and c.reconnects >= closes
    starts = sqlite3.connect(db).execute(
        "SELECT count(*) FROM book_events WHERE to_state = 'subscribing'").fetchone()
    assert starts == (closes,)
    return closes


def trades_as_without_books(db, sim, dialect, stats, trades: int = 1_200) -> None:
    """Trades collected beside books: the same rows and the same accounting as a
    trades-only collector."""
    rows = sorted(sqlite3.connect(db).execute(
        "SELECT symbol, trade_id, timestamp, price, volume, side FROM ticks").fetchall())
    assert rows == sorted((t.symbol, dialect.expected_trade_id(t), t.ts_ns, float(t.price),
                           float(t.volume), t.side) for t in sim.trades)
    s = stats
    assert s["ticks"] == s["stored"] + s["duplicates"] + s["pending"] + s["dropped_overflow"] \
        + s["unstorable"] and s["stored"] == trades and s["rejected"] == 0


def frames_quotes_and_deltas_add_up(c, s) -> None:
    """Every frame counted once; every quote and book delta stored (``s``: the stopped
    collector's stats)."""
    assert s["frames"] == s["tick_frames"] + s["control"] + s["rejected_frames"]
    assert s["quotes"] == s["quotes_stored"] > 0 and len(c.quotes) == s["quotes"]
    assert s["book_deltas_stored"] == s["book_deltas"]


def run_to_the_end(c, sim, count: int, done: Callable[[], bool], timeout_s: float = 30,
                   stop: Callable[[], None] | None = None) -> None:
    """Waits (at most ``timeout_s``) until the simulator sent ``count`` book messages
    and ``done()``, then stops, whatever happened (``stop``, else the collector then
    the simulator)."""
    try:
        wait_for(lambda: sim.books.messages >= count and done(), timeout_s)
    finally:
        if stop is None:
            c.stop()
            sim.stop()
        else:
            stop()


def clean_run_to_the_end(c, sim, symbols, in_step, count: int = 20_000, trades: int = 1_200,
                         stop: Callable[[], None] | None = None) -> dict:
    """Waits (bounded) until the simulator sent all ``count`` book messages, every book is
    ``in_step(c, sim, symbols)`` with the simulator's and all ``trades`` are stored, stops
    (``stop``, else the collector then the simulator), and checks that the run had no
    desync. Returns the collector's stats."""
    run_to_the_end(c, sim, count, lambda: in_step(c, sim, symbols)
                   and c.stats["stored"] >= trades, 60, stop)
    s = c.stats
    assert s["book_desyncs"] == 0 and s["book_messages"] >= count
    return s
