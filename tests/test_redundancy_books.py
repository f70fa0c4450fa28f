"""Order books with two connections on the same streams (``redundancy=2``, and the
overlap of a make-before-break handover): each book is fed by one connection, its
source; the other's copies are counted and left out. Against the simulator sending
one book stream to both connections (``broadcast``): a clean run has no desync and
ends with the simulator's books, each quote kept once; when the source connection
drops, or is handed over, each book moves to the other connection and goes on from
its stream without a resync (the venue's sequence, or that connection's own snapshot,
proves it), and ends right too.

Bybit (sequence, snapshot on the socket), Binance (REST snapshot) and Kraken
(checksum, snapshot on the socket) cover the three ways a book starts and proves
itself; Coinbase Advanced numbers every frame of a connection (``sequence_num``), so
each connection's count is followed apart."""

from __future__ import annotations

import socket
import sqlite3
import threading
from collections.abc import Callable

import pytest

import rtkit
from rtkit.sim import Faults, Simulator, get_dialect
from rtkit.sim.rest import SimRest
from tests.books_over_socket import books_equal
from tests.conftest import wait_for
from tests.test_books_kraken import caught_up as kraken_caught_up
from tests.test_make_before_break import CASES as HANDOVER_CASES

pytestmark = pytest.mark.usefixtures("no_thread_leak")

VENUES = ("bybit", "binance", "kraken", "coinbase")
BOOK_COUNT = 4_000  # book messages the simulator makes, at BOOK_RATE
BOOK_RATE = 1_000.0
TRADE_RATE = 200  # trades/s, sent to both connections too
KRAKEN_DEPTH = 10


def in_step(venue: str, c, sim, symbols) -> bool:
    """Every book good and equal to the simulator's (Kraken: at the subscribed depth)."""
    if venue == "kraken":
        return kraken_caught_up(c, sim, symbols, KRAKEN_DEPTH)
    return books_equal(c, sim, symbols)


def book_events(db) -> list[tuple]:
    return sqlite3.connect(db).execute(
        "SELECT symbol, from_state, to_state, reason FROM book_events ORDER BY at").fetchall()


def quote_rows(db) -> list[tuple]:
    return sqlite3.connect(db).execute("SELECT * FROM quotes").fetchall()


class Run:
    """A broadcast simulator (and its REST side), a collector on it with books."""

    def __init__(self, venue: str, db, faults: Faults, redundancy: int = 2,
                 kinds=("trades", "book"), **options) -> None:
        self.venue = venue
        self.symbols = list(get_dialect(venue).example_symbols)
        kraken = venue == "kraken"
        self.sim = Simulator(venue, rate=TRADE_RATE, count=100_000, seed=5, faults=faults,
                             broadcast=True, book_rate=BOOK_RATE, book_count=BOOK_COUNT,
                             book_levels=KRAKEN_DEPTH if kraken else 50,
                             keep_book_history=True).start()
        self.rest = SimRest(self.sim).start() if venue == "binance" else None
        self.c = rtkit.Collector(venue, self.symbols, url=self.sim.url, db=db,
                                 kinds=list(kinds), redundancy=redundancy,
                                 depth=KRAKEN_DEPTH if kraken else None,
                                 backoff_initial_s=0.05, flush_interval_s=0.2, **options)
        if self.rest is not None:
            assert self.c.rest_url == self.rest.url  # the simulator's, never the venue's

    def to_the_end(self, midway: Callable[[], None] | None = None,
                   timeout_s: float = 60) -> dict:
        """Until the simulator made every book message and each local book equals its
        own (bounded; ``midway`` is done on the way); then stops. Returns the stopped
        collector's stats."""
        c, sim = self.c, self.sim
        c.start()
        try:
            if midway is not None:
                midway()
            wait_for(lambda: sim.books.messages >= BOOK_COUNT
                     and in_step(self.venue, c, sim, self.symbols), timeout_s)
        finally:
            c.stop()
            if self.rest is not None:
                self.rest.stop()
            sim.stop()
        return c.stats


@pytest.mark.parametrize("venue", VENUES)
def test_a_clean_run_on_two_connections_has_no_desync_and_ends_with_the_venues_books(
        venue, db):
    run = Run(venue, db, Faults(), kinds=("trades", "quotes", "book"))
    s = run.to_the_end()
    assert run.sim.connections == 2 and s["connections"] == 2
    # each quote the venue sent (to both connections) kept once: those of one connection
    sent = sum(entry.quote is not None for entry in run.sim._book_tape)
    assert 0 < s["quotes"] <= sent and s["quotes_ignored"] > sent // 4
    numbered = [(q[1], q[-1]) for q in quote_rows(db) if q[-1]]
    assert len(numbered) == len(set(numbered))  # no (symbol, venue update id) twice
    assert s["book_desyncs"] == 0 and s["book_resyncs"] == 0
    # the second connection's copies were counted and left out, none fed a book
    assert s["book_ignored"] > BOOK_COUNT // 4 and s["book_messages"] > BOOK_COUNT // 4
    events = book_events(db)
    assert not [e for e in events if e[2] == "desynced"]
    # each book went good once (its first snapshot), from one connection only
    good = "live"
    assert sorted(e[0] for e in events if e[2] == good) == sorted(run.symbols)


@pytest.mark.parametrize("venue", VENUES)
def test_the_source_connection_dropped_moves_each_book_to_the_other_once(venue, db):
    run = Run(venue, db, Faults())
    c = run.c
    fed: list[str] = []  # the books of the connection cut

    def cut_a_source() -> None:
        """Once both connections bring the books (the other one's copies are counted)
        and every book is good: the source of the first symbol's book is cut."""
        sources = c.pipeline.books.sources.of
        wait_for(lambda: c.stats["book_ignored"] > 200 and c.stats["books_good"] == 2, 20)
        number = sources[run.symbols[0]]
        fed.extend(symbol for symbol, source in sources.items() if source == number)
        ws = c.receiver._sockets[number - 1]  # open sockets, oldest first: none ended yet
        ws.sock.shutdown(socket.SHUT_RDWR)  # lost: the receiver reads its end

    s = run.to_the_end(cut_a_source)
    assert run.sim.connections >= 3  # one cut, a third took its place
    assert s["book_messages"] + s["book_ignored"] > BOOK_COUNT  # the cut came mid-run
    events = book_events(db)
    moved = [e for e in events if e[3] == "source connection lost"]
    assert sorted(e[0] for e in moved) == sorted(fed)  # each of its books, once
    # each went on from the other connection's messages: its state stayed good
    assert all(e[1] == e[2] == "live" for e in moved)
    assert s["book_source_switches"] == len(fed)
    assert s["book_desyncs"] == 0 and s["book_resyncs"] == 0
    assert not [e for e in events if e[2] in ("desynced", "resyncing")]


@pytest.mark.parametrize("venue", ["binance", "okx"])
def test_a_handover_moves_each_book_to_the_new_connection_without_a_desync(venue, db):
    """One connection (``redundancy=1``) closed by the venue every second (Binance's
    24 h compressed; OKX announces it): in each make-before-break overlap the new
    connection's copies are left out, and at the old one's close each book moves to
    the new one and goes on from its stream: no resync (Binance: no REST snapshot
    after the first ones), never a desync, and the books end right."""
    faults, options = HANDOVER_CASES[venue]
    run = Run(venue, db, faults, redundancy=1, **options)
    s = run.to_the_end()
    assert s["handovers"] >= 2
    events = book_events(db)
    moved = [e for e in events if e[3] == "source connection closed (handed over)"]
    assert len(moved) == s["book_source_switches"] >= 2 * len(run.symbols)
    assert all(e[1] == e[2] == "live" for e in moved)  # each book went on, never stopped
    assert s["book_desyncs"] == 0 and s["book_resyncs"] == 0
    assert not [e for e in events if e[2] in ("desynced", "resyncing")]
    if venue == "binance":  # the first snapshot of each book, none at a handover
        assert s["book_snapshot_requests"] == len(run.symbols)


@pytest.mark.parametrize("venue", ["bybit", "binance"])
def test_a_message_lost_on_the_new_source_at_the_move_is_still_a_desync(venue, db):
    """The source connection is cut and the other one loses the first message of the
    first symbol's book that the book does not hold yet (as a connection may lose one):
    the book cannot go on, so it desyncs and resyncs, once, and ends right."""
    run = Run(venue, db, Faults())
    c = run.c
    symbol = run.symbols[0]
    lost: list = []

    def cut_and_lose_one() -> None:
        keeper = c.pipeline.books
        sources = keeper.sources.of
        wait_for(lambda: c.stats["book_ignored"] > 200 and c.stats["books_good"] == 2, 20)
        machine = keeper.machines[symbol]
        admit, closed = keeper.admit, keeper.connection_closed
        moved = threading.Event()

        def closed_then_lose(connection, at, why):
            step = closed(connection, at, why)
            moved.set()
            return step

        def admit_losing_one(messages, connection):
            if moved.is_set() and not lost and machine.state == "live":
                for msg in messages:
                    if msg.symbol == symbol and connection == sources.get(symbol) \
                            and not machine.held(msg):
                        lost.append(msg.seq)
                        messages = [m for m in messages if m is not msg]
                        break
            return admit(messages, connection)

        keeper.admit, keeper.connection_closed = admit_losing_one, closed_then_lose
        ws = c.receiver._sockets[sources[symbol] - 1]
        ws.sock.shutdown(socket.SHUT_RDWR)

    s = run.to_the_end(cut_and_lose_one)
    assert len(lost) == 1
    events = book_events(db)
    desynced = [e for e in events if e[2] == "desynced"]
    assert [e[0] for e in desynced] == [symbol]
    assert s["book_desyncs"] == 1 and s["book_resyncs"] == 1
