"""Backfill (issue 14): the trades a gap misses come from the venue's REST history, through
the same checks into the ring and SQLite, each once; the gap ledger says what became of
each gap. Against the simulator's WebSocket and REST sides on loopback."""

from __future__ import annotations

import sqlite3

import pytest

import rtkit
from rtkit.sim import Faults, Simulator, get_dialect
from rtkit.sim.rest import SimRest
from tests.conftest import wait_for
from tests.test_redundancy import expected, stored

pytestmark = pytest.mark.usefixtures("no_thread_leak")

RATE = 4_000
COUNT = 3_000


def ledger(db) -> list[tuple]:
    return sqlite3.connect(db).execute(
        "SELECT status, why, missing, filled FROM gaps WHERE missing IS NOT NULL "
        "ORDER BY id").fetchall()


def run(venue: str, db, faults: Faults, *, done, count: int = COUNT, record=None,
        rest_faults=(), **options):
    """Collect ``venue`` from a simulator that loses frames, until ``done(c, sim)``."""
    dialect = get_dialect(venue)
    symbol = dialect.example_symbols[0]
    with Simulator(venue, rate=RATE, count=count, seed=21, faults=faults) as sim, \
            SimRest(sim) as rest:
        for status, n in rest_faults:
            rest.inject(status, n, retry_after_s=60)
        c = rtkit.collect(venue, [symbol], url=sim.url, db=db, flush_interval_s=0.05,
                          record_raw=record, **options)
        try:
            wait_for(lambda: sim.all_sent, 20)
            wait_for(lambda: done(c, sim), 30)
        finally:
            c.stop()
        trades = [t for t in sim.trades if t.symbol == symbol]
    return c, dialect, sim, trades, rest


def all_stored(c, sim) -> bool:
    return c.stats["stored"] >= len(sim.trades) and c.stats["gaps_open"] == 0


@pytest.mark.parametrize("venue", ["binance", "okx"])
def test_every_lost_trade_is_filled_and_stored_once(venue, db):
    c, dialect, sim, trades, rest = run(venue, db, Faults(lose_every=97), done=all_stored)
    assert sim.lost_frames >= 20
    assert stored(db) == expected(dialect, trades)  # every trade, with its values, once
    rows = ledger(db)
    assert len(rows) >= 20 and {r[0] for r in rows} == {"filled"}
    assert all(r[2] == r[3] for r in rows)
    s = c.stats
    assert s["backfilled"] == sum(r[3] for r in rows) == s["missing_trades"]
    assert s["gaps_open"] == 0
    assert s["ticks"] == (s["stored"] + s["duplicates"] + s["pending"] + s["dropped_overflow"]
                          + s["unstorable"])
    # a backfilled row is a live one but for when it was received: after its trade
    times = dict(sqlite3.connect(db).execute("SELECT trade_id, received_at FROM ticks"))
    assert all(times[str(dialect.expected_trade_id(t))] >= t.ts_ns for t in trades)


def test_without_backfill_gaps_stay_pending(db):
    def seen(c, sim):
        return c.stats["ticks"] + sim.lost_frames >= COUNT and c.stats["pending"] == 0

    c, dialect, sim, trades, rest = run("binance", db, Faults(lose_every=97), done=seen,
                                        backfill=False)
    assert c.backfiller is None
    assert {r[0] for r in ledger(db)} == {"pending"} and c.stats["backfilled"] == 0
    assert len(stored(db)) == COUNT - sim.lost_frames
    assert sum(rest.requests.values()) == 0


def test_a_reconnect_gap_over_backfill_max_is_filled_up_to_it(db):
    def closed(c, sim):
        return c.stats["reconnects"] >= 1 and c.stats["gaps_open"] == 0 \
            and c.stats["pending"] == 0

    dialect = get_dialect("binance")
    symbol = dialect.example_symbols[0]
    with Simulator("binance", rate=RATE, count=4000, seed=22, broadcast=True,
                   faults=Faults(drop_every=1000, faulty_connections=(1,))) as sim, SimRest(sim):
        c = rtkit.collect("binance", [symbol], url=sim.url, db=db, flush_interval_s=0.05,
                          backoff_initial_s=0.3, backfill_max=10)
        try:
            wait_for(lambda: sim.all_sent, 20)
            wait_for(lambda: closed(c, sim), 30)
        finally:
            c.stop()
    rows = [r for r in ledger(db) if r[2] > 10]
    assert rows, ledger(db)  # the reconnect lost more than 10 trades
    for status, why, _missing, filled in rows:
        assert (status, filled) == ("partial", 10)
        assert "larger than backfill_max (10)" in why


def test_a_ban_marks_the_gap_unfillable_and_says_so(db):
    def closed(c, sim):
        return c.stats["gaps_open"] == 0 and c.stats["pending"] == 0

    c, dialect, sim, trades, rest = run("binance", db, Faults(lose_every=1000), done=closed,
                                        count=2000, rest_faults=[(418, 1)])
    rows = ledger(db)
    assert rows and {r[0] for r in rows} == {"unfillable"}
    assert all("418" in r[1] and "budget exhausted" in r[1] for r in rows)
    assert c.stats["backfilled"] == 0
    assert rest.statuses[418] == 1  # no request after the ban
    assert sum(rest.requests.values()) == 1


def test_a_replay_of_a_run_that_backfilled_stores_the_same_ticks(db, tmp_path):
    record = tmp_path / "raw.jsonl"
    c, dialect, sim, trades, rest = run("okx", db, Faults(lose_every=97), done=all_stored,
                                        record=record)
    assert c.stats["backfilled"] > 0
    replayed = tmp_path / "replay.sqlite"
    summary = rtkit.replay(record, db=replayed)
    assert stored(replayed) == stored(db) == expected(dialect, trades)
    live = sqlite3.connect(db).execute("SELECT * FROM ticks ORDER BY trade_id").fetchall()
    again = sqlite3.connect(replayed).execute("SELECT * FROM ticks ORDER BY trade_id").fetchall()
    assert live == again  # received_at too: the backfilled ones as fetched
    assert summary["rejected"] == 0


def test_a_venue_that_cannot_fill_starts_no_backfill(db):
    c = rtkit.Collector("bybit", ["BTC-USDT"], db=db, url="ws://127.0.0.1:9/")
    assert c.backfiller is None
