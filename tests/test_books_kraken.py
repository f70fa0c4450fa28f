"""Kraken books and quotes, v2 (``kraken``) and v1 (``kraken-v1``), end to end.

No sequence on either: the proof is the CRC32 of the top 10 levels computed from
the venue's own number text, on every v2 message and every v1 update. The
simulator writes Kraken's numbers (fixed decimals) and its checksum; the local
book is cut to the subscribed depth after each update (Kraken sends no removal
for a level pushed out of range). Over a real loopback socket: every fault the
checksum can see is detected and resynced (a resubscribe), the book equals the
simulator's after each resync, and trades keep flowing on the same connection.
What the checksum cannot see (a lost update below the 10th level) is measured
by :mod:`benchmarks.books_kraken` and checked here on a short replay.
"""

from __future__ import annotations

import sqlite3

import orjson
import pytest

import rtkit
from benchmarks.books_kraken import replay_drops
from rtkit.books import Step
from rtkit.books.checksum import kraken_crc32
from rtkit.books.machine import BookMachine
from rtkit.books.rules import rule_for
from rtkit.sim import Faults, Simulator, get_dialect
from rtkit.sim.book import SimBooks
from rtkit.sim.dialects.kraken import QTY_DECIMALS, fixed
from rtkit.validate import Reject
from rtkit.venues import get_adapter
from tests.books_over_socket import (
    each_close_started_the_book_over,
    run_to_the_end,
    trades_as_without_books,
)
from tests.conftest import wait_for

VENUES = ("kraken", "kraken-v1")
SYMBOL = "BTC-USD"


# --- the adapters -------------------------------------------------------------------------
def test_v2_subscribes_ticker_bbo_and_book_at_the_depth_asked():
    adapter = get_adapter("kraken")
    adapter.configure(("trades", "quotes", "book"), 25)
    params = [orjson.loads(m)["params"] for m in adapter.subscribe_messages(["BTC-USD"])]
    assert params == [
        {"channel": "trade", "symbol": ["BTC/USD"], "snapshot": True},
        {"channel": "ticker", "symbol": ["BTC/USD"], "event_trigger": "bbo"},
        {"channel": "book", "symbol": ["BTC/USD"], "depth": 25, "snapshot": True}]
    assert adapter.book_max_levels() == 25
    again = [orjson.loads(m) for m in adapter.book_resubscribe_messages(["BTC-USD"])]
    assert [(m["method"], m["params"]["depth"]) for m in again] == [("unsubscribe", 25),
                                                                     ("subscribe", 25)]
    with pytest.raises(ValueError, match="depth 10, 25, 100, 500, 1000"):
        get_adapter("kraken").configure(("book",), 50)
    plain = get_adapter("kraken")
    assert [orjson.loads(m)["params"]["channel"]
            for m in plain.subscribe_messages(["BTC-USD"])] == ["trade"]
    plain.configure(("book",), None)
    assert plain.book_max_levels() == 10  # Kraken's default depth, the book cut to it


def test_v1_subscribes_spread_and_book_and_reads_book_arrays_of_two_objects():
    adapter = get_adapter("kraken-v1")
    adapter.configure(("trades", "quotes", "book"), 100)
    subs = [orjson.loads(m) for m in adapter.subscribe_messages(["BTC-USD"])]
    assert [(m["pair"], m["subscription"]) for m in subs] == [
        (["XBT/USD"], {"name": "trade"}), (["XBT/USD"], {"name": "spread"}),
        (["XBT/USD"], {"name": "book", "depth": 100})]
    assert [orjson.loads(m)["event"] for m in adapter.book_resubscribe_messages(["BTC-USD"])] \
        == ["unsubscribe", "subscribe"]
    frame = ('[336,{"a":[["5541.30000","2.50700000","1534614248.123678"]]},'
             '{"b":[["5541.20000","1.52900000","1534614248.765567","r"],'
             '["5541.20000","1.60000000","1534614248.765568"]],"c":"974947235"},'
             '"book-100","XBT/USD"]')
    [msg] = adapter.parse(frame, 1)["book"]
    assert msg.asks == [("5541.30000", "2.50700000")]
    assert msg.bids == [("5541.20000", "1.52900000"), ("5541.20000", "1.60000000")]
    assert msg.checksum == 974947235 and not msg.is_snapshot
    spread = '[0,["5698.40000","5700.00000","1542057299.545897","1.01234567","0.98765432"],' \
        '"spread","XBT/USD"]'
    [quote] = adapter.parse(spread, 1)["quotes"]
    assert quote[4:8] == (5698.4, 1.01234567, 5700.0, 0.98765432)


def test_v2_book_frames_keep_the_venues_digits_whatever_the_key_order():
    adapter = get_adapter("kraken")
    adapter.configure(("book",), 10)
    levels = '"bids":[{"price":45283.5,"qty":0.10000000}],"asks":[{"price":45285.2,' \
        '"qty":0.00100000}]'
    first = '{"channel":"book","type":"snapshot","data":[{"symbol":"BTC/USD",%s,' \
        '"checksum":1}]}' % levels
    other = '{"type":"snapshot","channel":"book","data":[{"symbol":"BTC/USD",%s,' \
        '"checksum":1}]}' % levels
    for frame in (first, other.encode()):
        [msg] = adapter.parse(frame, 1)["book"]
        assert msg.bids == [("45283.5", "0.10000000")] and msg.asks == [("45285.2",
                                                                         "0.00100000")]
    with pytest.raises(Reject):  # a book frame where no book nor quote is collected
        get_adapter("kraken").parse(first, 1)


# --- the simulator's Kraken frames, replayed without a socket -------------------------------
@pytest.mark.parametrize("venue", VENUES)
def test_the_simulators_numbers_and_checksums_are_krakens(venue):
    dialect = get_dialect(venue)
    book = SimBooks(3).book(SYMBOL)
    bids, asks, seq = book.snapshot(10)
    frame = dialect.encode_book(SYMBOL, True, bids, asks, seq, 0, book.ts_ns, book, 10)
    adapter = get_adapter(venue)
    adapter.configure(("book",), 10)
    [msg] = adapter.parse(frame, 1)["book"]
    assert all(len(q.partition(".")[2]) == QTY_DECIMALS for _, q in msg.bids + msg.asks)
    assert (msg.bids, msg.asks) == dialect.book_text(book, 10)
    if venue == "kraken":  # v2 snapshots carry the checksum, v1 snapshots none
        assert msg.checksum == kraken_crc32(msg.asks, msg.bids)
    else:
        assert msg.checksum is None
        assert all(len(p.partition(".")[2]) == 5 for p, _ in msg.bids + msg.asks)
    assert fixed("12.345", 8) == "12.34500000" and fixed("0", 8) == "0.00000000"


def replay(venue: str, depth: int, updates: int, max_levels: int | None, levels: int = 50):
    """The simulator's updates of one book at ``depth`` into a machine keeping at most
    ``max_levels`` a side: (desyncs, the machine, the simulated book, the dialect,
    how many v1 levels were republished)."""
    dialect, adapter = get_dialect(venue), get_adapter(venue)
    adapter.configure(("book",), depth)
    book = SimBooks(5, levels).book(SYMBOL)
    machine = BookMachine(venue, SYMBOL, rule_for(venue), max_levels=max_levels)
    bids, asks, seq = book.snapshot(depth)
    frames = [dialect.encode_book(SYMBOL, True, bids, asks, seq, 0, book.ts_ns, book, depth)]
    republished = 0
    while len(frames) <= updates:
        prev = book.seq
        bids, asks = book.step()
        frame = dialect.encode_book(SYMBOL, False, bids, asks, book.seq, prev, book.ts_ns, book,
                                    depth)
        if frame is not None:
            frames.append(frame)
            republished += frame.count('"r"]')
    for frame in frames:
        for msg in adapter.parse(frame, 1)["book"]:
            machine.feed(msg)
    return machine.desyncs, machine, book, dialect, republished


@pytest.mark.parametrize("venue", VENUES)
def test_the_book_cut_to_the_subscribed_depth_stays_right_and_without_the_cut_it_does_not(
        venue):
    desyncs, machine, book, dialect, republished = replay(venue, 10, 3_000, 10)
    assert desyncs == 0 and machine.state == "live"
    assert (machine.book.levels("bid", 99), machine.book.levels("ask", 99)) == \
        dialect.book_text(book, 10)
    if venue == "kraken-v1":
        assert republished > 0  # levels coming back into view carry "r"
    uncut, *_ = replay(venue, 10, 3_000, None)
    assert uncut > 0  # a book that keeps the levels pushed out goes wrong: Kraken needs the cut


@pytest.mark.parametrize("venue", VENUES)
@pytest.mark.parametrize("depth", [10, 25])
def test_every_lost_update_the_top_10_shows_is_detected_at_once(venue, depth):
    report = replay_drops(venue, depth, 3_000, 60)
    assert report.drops == 50
    assert report.missed == 0 and report.false_desyncs == 0
    assert report.detected + report.healed + report.hidden_long + report.hidden_at_end == 50
    assert report.detected >= 40
    if depth == 10:  # the checksum covers the whole book: seen on the next update
        assert report.hidden_long == 0 and set(report.latency) == {1}


# --- over a real socket ------------------------------------------------------------------------
def formatted(dialect, levels, depth):
    price = dialect.price_text(None)
    return [(price(p), fixed(q, QTY_DECIMALS)) for p, q in levels[:depth]]


def run(venue, db, faults, count, depth=10, book_levels=10, kinds=("trades", "book"),
        trades=300, rate=200, book_rate=1_000.0, symbols=(SYMBOL,)):
    """A simulator and a collector on it. Kraken's messages carry no sequence, so the
    simulator's encoder is watched: each update's (symbol, time, checksum) → the
    simulator's sequence, to tell which message a desync came on."""
    sim = Simulator(venue, rate=rate, count=trades, book_rate=book_rate, book_count=count,
                    book_levels=book_levels, seed=11, faults=faults, keep_book_history=True)
    reader = get_adapter(venue)
    reader.configure(("book",), depth)
    encode, sequences = sim.dialect.encode_book, {}

    def encode_watched(symbol, snapshot, bids, asks, seq, *rest):
        frame = encode(symbol, snapshot, bids, asks, seq, *rest)
        if frame is not None and not snapshot:
            [msg] = reader.parse(frame, 1)["book"]
            sequences[(msg.symbol, msg.timestamp, msg.checksum)] = seq
        return frame

    sim.dialect.encode_book = encode_watched
    sim.start()
    c = rtkit.Collector(venue, list(symbols), url=sim.url, db=db, kinds=list(kinds),
                        depth=depth, backoff_initial_s=0.05, flush_interval_s=0.2)
    keeper = c.pipeline.books
    feed, seen, arrivals = keeper.feed, [], []

    def watched(messages):  # one message at a time: the book right after its snapshot
        out = Step()
        for msg in messages:
            machine = keeper.machines.get(msg.symbol)
            live = machine is not None and machine.state == "live"
            step = feed([msg])
            out.deltas += step.deltas
            out.events += step.events
            out.quotes += step.quotes
            seq = sequences.get((msg.symbol, msg.timestamp, msg.checksum))
            desynced = any(event[4] == "desynced" for event in step.events)
            arrivals.append((seq, live, desynced))
            if any(event[4] == "live" for event in step.events):
                book = keeper.machines[msg.symbol].book
                seen.append((msg.symbol, book.levels("bid", 10_000), book.levels("ask", 10_000)))
        return out

    keeper.feed = watched
    c.start()
    return sim, c, seen, arrivals


def caught_up(c, sim, symbols, depth):
    for symbol in symbols:
        state, _ = c.pipeline.books.state(symbol)
        local = c.pipeline.books.read(symbol, lambda b: (b.levels("bid", 10_000),
                                                         b.levels("ask", 10_000)))
        with sim.books.lock:
            truth = sim.dialect.book_text(sim.books.book(symbol), depth)
        if state != "live" or local != truth:
            return False
    return True


def classify(fault_log, arrivals):
    """Each injected fault (at the simulator's sequence ``s``): ``detected`` when the
    message ``s`` or ``s + 1`` (the one after a lost or held update) desynced the book,
    ``blind`` when those arrived while the book was already resyncing, else
    ``unseen``. Returns the three lists and the desyncs on no faulty message."""
    by_seq: dict[int, list[tuple[bool, bool]]] = {}
    for seq, live, desynced in arrivals:
        if seq is not None:
            by_seq.setdefault(seq, []).append((live, desynced))
    detected, blind, unseen, faulty = [], [], [], set()
    for _, _, s in fault_log:
        hits = by_seq.get(s, []) + by_seq.get(s + 1, [])
        faulty |= {s, s + 1}
        if any(desynced for _, desynced in hits):
            detected.append(s)
        elif hits and not any(live for live, _ in hits):
            blind.append(s)
        else:
            unseen.append(s)
    false = [a for a in arrivals if a[2] and a[0] not in faulty]
    return detected, blind, unseen, false


FAULTS = {  # fault → Faults; on a 10-level simulated book at depth 10 the checksum sees all
    "dropped": Faults(book_drop_every=250),
    "reordered": Faults(book_reorder_every=250),
    "corrupted": Faults(book_corrupt_every=250),
    "crossed": Faults(book_cross_every=250),
}


@pytest.mark.usefixtures("no_thread_leak")
@pytest.mark.parametrize("venue", VENUES)
@pytest.mark.parametrize("fault", list(FAULTS))
def test_every_fault_the_checksum_sees_is_detected_and_resynced_over_a_socket(venue, fault,
                                                                              db):
    sim, c, seen, arrivals = run(venue, db, FAULTS[fault], count=2_100)
    try:
        wait_for(lambda: sim.books.messages >= 2_100 and caught_up(c, sim, [SYMBOL], 10)
                 and c.stats["stored"] >= 300, 40)
    finally:
        c.stop()
        sim.stop()
    injected = sim.book_faults[fault]
    assert injected == len(sim.book_fault_log) >= 7
    events = sqlite3.connect(db).execute(
        "SELECT from_state, to_state, reason, not_live_s, at FROM book_events "
        "ORDER BY at").fetchall()
    detected, blind, unseen, false = classify(sim.book_fault_log, arrivals)
    assert not false
    # a lost update whose levels the next one overwrote leaves nothing to see (the
    # book stays right, every later checksum says so): only a drop may go unseen
    assert not unseen or (fault == "dropped" and len(unseen) <= 2), (detected, blind, unseen)
    # blind ones came while the book was already resyncing (discarded until the new
    # snapshot): how many depends on how far the client lags the feed, not on the rule
    assert len(detected) >= injected // 4
    s = c.stats
    assert s["book_desyncs"] == len(detected) == s["book_resyncs"]
    assert all("crc32 expected" in e[2] for e in events if e[1] == "desynced")
    back = [e for e in events if e[1] == "live" and e[0] == "snapshot"]
    assert len(back) == len(detected) + 1 and all(e[3] is not None and e[3] >= 0 for e in back)
    # after each resync the local book is one the simulator had, level by level
    history = sim.books.book(SYMBOL).history
    states = {repr((formatted(sim.dialect, b, 10), formatted(sim.dialect, a, 10)))
              for b, a in history.values()}
    assert len(seen) == len(back) and all(repr((b, a)) in states for _, b, a in seen)
    # trades kept flowing on the one connection while the book resynced
    assert s["connections"] == 1 and s["stored"] == 300 and s["gaps"] == 0


@pytest.mark.usefixtures("no_thread_leak")
@pytest.mark.parametrize("venue", VENUES)
def test_a_duplicated_update_leaves_the_book_right(venue, db):
    """Kraken's levels are absolute sizes: an update applied twice changes nothing,
    so a duplicate is no fault of the book (and must not be called one)."""
    sim, c, _, _ = run(venue, db, Faults(book_duplicate_every=100), count=1_000, trades=0)
    run_to_the_end(c, sim, 1_000, lambda: caught_up(c, sim, [SYMBOL], 10))
    assert sim.book_faults["duplicated"] >= 8 and c.stats["book_desyncs"] == 0


@pytest.mark.usefixtures("no_thread_leak")
@pytest.mark.parametrize("venue", VENUES)
def test_a_snapshot_sent_again_mid_stream_replaces_the_book(venue, db):
    """Kraken has no sequence to reset: what a restart sends is a new snapshot, which
    replaces the book without a desync."""
    sim, c, seen, _ = run(venue, db, Faults(book_reset_every=300), count=1_300, trades=0)
    run_to_the_end(c, sim, 1_300, lambda: caught_up(c, sim, [SYMBOL], 10))
    assert sim.book_faults["reset"] >= 4 and c.stats["book_desyncs"] == 0
    assert c.stats["book_messages"] >= 1_000


@pytest.mark.usefixtures("no_thread_leak")
@pytest.mark.parametrize("venue", VENUES)
def test_a_forced_close_reconnects_and_the_book_starts_over(venue, db):
    sim, c, seen, _ = run(venue, db, Faults(book_close_every=400), count=1_300, trades=0)
    run_to_the_end(c, sim, 1_300, lambda: caught_up(c, sim, [SYMBOL], 10))
    closes = each_close_started_the_book_over(c, sim, db)
    assert c.stats["book_desyncs"] == 0 and len(seen) == closes + 1


@pytest.mark.usefixtures("no_thread_leak")
@pytest.mark.parametrize("venue", VENUES)
def test_a_clean_run_at_depth_10_of_a_deeper_book_has_no_desync_and_trades_as_without_books(
        venue, db):
    dialect = get_dialect(venue)
    symbols = list(dialect.example_symbols)
    sim, c, _, _ = run(venue, db, Faults(), count=12_000, book_levels=50, symbols=symbols,
                       kinds=("trades", "quotes", "book"), trades=1_200, rate=3_000,
                       book_rate=None)
    try:
        wait_for(lambda: sim.books.messages >= 12_000 and caught_up(c, sim, symbols, 10)
                 and c.stats["stored"] >= 1_200, 60)
    finally:
        c.stop()
        sim.stop()
    s = c.stats
    assert s["book_desyncs"] == 0 and s["book_messages"] >= 5_000
    trades_as_without_books(db, sim, dialect, s)
    assert s["quotes"] == s["quotes_stored"] > 0 and s["book_deltas_stored"] == s["book_deltas"]
