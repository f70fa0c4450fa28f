"""OKX books and quotes: the adapter's channels and frames, then end to end over a real
loopback socket against the simulator's books — every fault OKX's rule can see is
detected and healed (``prevSeqId`` chaining, a crossed book, the legacy checksum when
sent), a sequence reset after maintenance is no desync, each resync leaves the local
book equal to the simulator's level by level, and trades are collected as without books."""

from __future__ import annotations

import orjson
import pytest

from rtkit.books.keeper import keeper_for
from rtkit.sim import Faults, get_dialect
from rtkit.sim.dialects.okx import SEQ_ID_STEP, seq_id
from rtkit.venues import get_adapter
from tests.books_over_socket import (
    books_equal,
    clean_run_to_the_end,
    each_close_started_the_book_over,
    events,
    every_fault_detected_and_resynced,
    frames_quotes_and_deltas_add_up,
    run_to_the_end,
    start,
    trades_as_without_books,
)

pytestmark = pytest.mark.usefixtures("no_thread_leak")
SYMBOL = "BTC-USDT"


def sim_seq(sim, okx_seq_id: int) -> int:
    return (okx_seq_id - seq_id(0)) // SEQ_ID_STEP


def adapter(kinds=("trades", "quotes", "book"), depth=None):
    a = get_adapter("okx")
    a.configure(kinds, depth)
    return a


# --- the adapter ---------------------------------------------------------------------------
def test_subscribes_the_public_books_and_bbo_channels_of_the_collected_kinds():
    sent = [orjson.loads(m) for m in adapter().subscribe_messages(["BTC-USDT"])]
    assert [a["channel"] for m in sent for a in m["args"]] == ["trades", "bbo-tbt", "books"]
    only_trades = [orjson.loads(m) for m in adapter(("trades",)).subscribe_messages(["BTC-USDT"])]
    assert [a["channel"] for m in only_trades for a in m["args"]] == ["trades"]


def test_depth_is_the_public_channels_400_levels_or_an_error_naming_it():
    assert adapter(depth=400).book_max_levels() == 400 == adapter().book_max_levels()
    with pytest.raises(ValueError, match="depth 400 only"):
        adapter(depth=50)


def test_a_resync_unsubscribes_then_subscribes_the_book_only():
    sent = [orjson.loads(m) for m in adapter().book_resubscribe_messages(["BTC-USDT", "ETH-USDT"])]
    assert [m["op"] for m in sent] == ["unsubscribe", "subscribe"]
    assert all(a == {"channel": "books", "instId": s}
               for m in sent for a, s in zip(m["args"], ["BTC-USDT", "ETH-USDT"], strict=True))


def _push(action, seq, prev, bids=(), asks=(), checksum=0):
    return orjson.dumps({"arg": {"channel": "books", "instId": SYMBOL}, "action": action,
                         "data": [{"asks": [[p, s, "0", "1"] for p, s in asks],
                                   "bids": [[p, s, "0", "1"] for p, s in bids],
                                   "ts": "1597026383085", "checksum": checksum,
                                   "prevSeqId": prev, "seqId": seq}]})


def test_no_change_pushes_a_reset_and_a_second_snapshot_keep_the_book_live():
    """OKX's three special cases (its docs and real captures): ``seqId == prevSeqId``
    with no levels, ``seqId`` dropping below ``prevSeqId`` after maintenance, and a
    snapshot mid-stream that replaces the book: none is a desync."""
    a = adapter()
    keeper = keeper_for(a, [SYMBOL])
    frames = [
        _push("snapshot", 10, -1, [("100.0", "1")], [("101.0", "2")]),
        _push("update", 12, 10, [("100.5", "3")]),
        _push("update", 12, 12),  # nothing changed
        _push("update", 3, 12, [], [("101.0", "0"), ("102.0", "1")]),  # the reset
        _push("update", 5, 3, [("99.0", "4")]),
        _push("snapshot", 40, -1, [("98.0", "1")], [("99.5", "1")]),  # a repeated subscribe
        _push("update", 41, 40, [], [("99.6", "2")]),
    ]
    for frame in frames:
        keeper.feed(a.parse(frame, 1)["book"])
    machine = keeper.machines[SYMBOL]
    assert machine.desyncs == 0 and machine.state == "live" and machine.last.seq == 41
    assert keeper.read(SYMBOL, lambda b: (b.levels("bid", 9), b.levels("ask", 9))) == (
        [("98.0", "1")], [("99.5", "1"), ("99.6", "2")])
    keeper.feed(a.parse(_push("update", 45, 42, [("97.0", "1")]), 1)["book"])
    assert machine.desyncs == 1 and machine.state == "resyncing"


def test_a_bbo_push_is_a_quotes_row_with_its_seq_id():
    frame = orjson.dumps({"arg": {"channel": "bbo-tbt", "instId": SYMBOL},
                          "data": [{"asks": [["101.5", "2", "0", "1"]],
                                    "bids": [["101.0", "3", "0", "2"]],
                                    "ts": "1597026383085", "seqId": 77}]})
    assert adapter().parse(frame, 5)["quotes"] == [
        ("okx", SYMBOL, 1597026383085_000_000, 5, 101.0, 3.0, 101.5, 2.0, 77)]


# --- end to end over a socket ----------------------------------------------------------------
FAULTS = {  # fault → (Faults, simulator options, what the book's health record says of it)
    "dropped": (Faults(book_drop_every=250), {}, "!= previous seqId"),
    "duplicated": (Faults(book_duplicate_every=250), {}, "!= previous seqId"),
    "reordered": (Faults(book_reorder_every=250), {}, "!= previous seqId"),
    "crossed": (Faults(book_cross_every=250), {}, "crossed book: best bid"),
    # the legacy checksum covers the top 25: a book of 25 levels puts every corruption there
    "corrupted": (Faults(book_corrupt_every=250), {"checksum": True, "book_levels": 25},
                  "crc32 expected"),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_every_injected_fault_is_detected_and_resynced_to_the_simulators_book(fault, db):
    faults, options, reason = FAULTS[fault]
    sim, c, seen = start("okx", db, faults, 2_100, [SYMBOL], from_seq=sim_seq, **options)
    run_to_the_end(c, sim, 2_100, lambda: books_equal(c, sim, [SYMBOL]))
    every_fault_detected_and_resynced(c, sim, db, seen, fault, reason, seq_id)


def test_a_sequence_reset_after_maintenance_is_no_desync(db):
    sim, c, _ = start("okx", db, Faults(book_reset_every=300), 1_550, [SYMBOL],
                      from_seq=sim_seq)
    run_to_the_end(c, sim, 1_550, lambda: books_equal(c, sim, [SYMBOL]))
    assert sim.book_faults["reset"] >= 4 and c.stats["book_desyncs"] == 0
    assert sorted(e[1] for e in events(db)) == ["live", "snapshot"]  # one start, no more


def test_a_forced_close_reconnects_and_the_book_starts_over(db):
    sim, c, seen = start("okx", db, Faults(book_close_every=400), 1_300, [SYMBOL],
                         from_seq=sim_seq)
    run_to_the_end(c, sim, 1_300, lambda: books_equal(c, sim, [SYMBOL]))
    closes = each_close_started_the_book_over(c, sim, db)
    assert len(seen) == closes + 1 and all(local == sim_ for _, _, local, sim_ in seen)


def test_a_clean_run_has_no_desync_and_trades_are_collected_as_without_books(db):
    dialect = get_dialect("okx")
    symbols = list(dialect.example_symbols)
    sim, c, seen = start("okx", db, Faults(), 20_000, symbols,
                         kinds=("trades", "quotes", "book"), rate=3_000, book_rate=None,
                         trades=1_200, from_seq=sim_seq)
    s = clean_run_to_the_end(c, sim, symbols, books_equal)
    assert all(local == simulated for _, _, local, simulated in seen)
    trades_as_without_books(db, sim, dialect, s)
    frames_quotes_and_deltas_add_up(c, s)


def test_the_simulators_book_stream_survives_a_moment_without_subscribed_books():
    """A resync's unsubscribe can reach the simulator while it sends a run of deltas one by
    one (a book fault on): the run's next message had no book to pick, the stream task
    died on ``choice([])`` and the subscribe after it never got its snapshot."""
    from rtkit.sim import Simulator
    from rtkit.sim.dialects import Session

    sim = Simulator("okx", book_rate=1_000.0, faults=Faults(book_drop_every=250))
    assert sim._make(Session(), 5, {}) == ([], [])  # not started: no socket, no thread
