"""``redundancy=2``: two connections on the same streams, each trade kept once. The
simulator sends one market to both (``broadcast``) and loses frames (or the whole
connection) on one of them: the stored run is still complete, without a gap row."""

from __future__ import annotations

import sqlite3

import pytest

import rtkit
from rtkit.sim import Faults, Simulator, get_dialect
from tests.conftest import wait_for
from tests.test_make_before_break import expected, stored

pytestmark = pytest.mark.usefixtures("no_thread_leak")

RATE = 2_000
COUNT = 4_000


def gap_rows(db) -> list[tuple]:
    return sqlite3.connect(db).execute("SELECT kind, missing FROM gaps").fetchall()


def run(venue: str, db, faults: Faults, redundancy: int):
    dialect = get_dialect(venue)
    # the overlap re-sent on a subscribe covers what the first connection lost before
    # the second one was up
    with Simulator(venue, rate=RATE, count=COUNT, seed=8, overlap=500, faults=faults,
                   broadcast=True) as sim:
        c = rtkit.collect(venue, list(dialect.example_symbols), url=sim.url, db=db,
                          flush_interval_s=0.1, backoff_initial_s=0.05, redundancy=redundancy)
        try:
            wait_for(lambda: c.stats["connections"] >= redundancy, 10)
            wait_for(lambda: sim.all_sent, 20)
            if redundancy == 2:
                wait_for(lambda: c.stats["stored"] >= COUNT, 10)
        finally:
            c.stop()
    return c, dialect, sim


@pytest.mark.parametrize("venue", ["binance", "okx", "bybit"])
def test_frames_lost_on_one_connection_come_from_the_other(venue, db):
    faults = Faults(lose_every=7, faulty_connections=(1,))
    c, dialect, sim = run(venue, db, faults, redundancy=2)
    assert sim.lost_frames > 50 and sim.connections == 2
    assert stored(db) == expected(dialect, sim.trades)  # complete, each trade once
    assert gap_rows(db) == []
    s = c.stats
    assert s["stored"] == COUNT and s["duplicates"] >= COUNT - sim.lost_frames * 10
    assert (s["gaps"], s["reconnect_marks"]) == (0, 0)
    assert s["ticks"] == (s["stored"] + s["duplicates"] + s["pending"] + s["dropped_overflow"]
                          + s["unstorable"])  # every copy accounted for


def test_without_redundancy_the_same_losses_are_gaps(db):
    """The baseline: one connection, the same lost frames, trades missing."""
    c, dialect, sim = run("binance", db, Faults(lose_every=7, faulty_connections=(1,)), 1)
    assert sim.lost_frames > 50
    assert c.stats["stored"] == COUNT - sim.lost_frames
    assert c.stats["missing_trades"] == sim.lost_frames and len(gap_rows(db)) > 0


def test_a_connection_that_drops_is_reopened_while_the_other_covers(db):
    faults = Faults(drop_every=600, faulty_connections=(1, 3))
    c, dialect, sim = run("binance", db, faults, redundancy=2)
    assert sim.connections >= 3  # connection 1 dropped (then 3), another took its place
    assert stored(db) == expected(dialect, sim.trades)
    assert gap_rows(db) == [] and c.stats["reconnects"] == 0


def test_redundancy_is_checked_and_reaches_the_cli(db):
    with pytest.raises(ValueError, match="redundancy must be a whole number between 1 and 2"):
        rtkit.Collector("binance", ["BTC-USDT"], db=db, redundancy=3)
    from rtkit.cli import _parser

    args = _parser().parse_args(["collect", "binance", "BTC-USDT", "--redundancy", "2"])
    assert args.redundancy == 2


def test_a_held_gap_is_written_on_time_when_the_stream_goes_quiet(db):
    """Ids missing on both connections are held for GAP_HOLD_S in case the other one
    brings them; the last such gaps must not wait for a frame that never comes (or for
    stop(), when no backfill can fill them any more)."""
    dialect = get_dialect("binance")
    symbol = dialect.example_symbols[0]
    with Simulator("binance", rate=RATE, count=1_000, seed=8, broadcast=True,
                   faults=Faults(skip_id_every=50)) as sim:
        c = rtkit.collect("binance", [symbol], url=sim.url, db=db, flush_interval_s=0.1,
                          backoff_initial_s=0.05, redundancy=2, backfill=False)
        try:
            wait_for(lambda: sim.all_sent, 20)
            ids = sorted(int(dialect.expected_trade_id(t)) for t in sim.trades)
            skipped = ids[-1] - ids[0] + 1 - len(ids)
            assert skipped >= 10
            # the stream is now quiet: every gap still comes out, before stop()
            wait_for(lambda: c.stats["missing_trades"] == skipped, 10)
            assert c.running
        finally:
            c.stop()
