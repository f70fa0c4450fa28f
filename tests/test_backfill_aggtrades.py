"""Backfill of Binance spot's ``aggTrade`` channel (issue 14): its ids are aggregate ids
(``a``, contiguous per symbol), so a gap is filled from ``GET /api/v3/aggTrades?fromId=``
(weight 4), not from ``historicalTrades``. Against the simulator streaming ``aggTrade``
events and serving ``aggTrades`` with its real pagination, on loopback."""

from __future__ import annotations

import sqlite3

import pytest

import rtkit
from rtkit.sim import Faults, Simulator
from rtkit.sim.rest import SimRest
from tests.conftest import wait_for
from tests.test_make_before_break import expected, stored

pytestmark = pytest.mark.usefixtures("no_thread_leak")

RATE = 4_000
COUNT = 4_000
SYMBOL = "BTC-USDT"


def ledger(db) -> list[tuple]:
    return sqlite3.connect(db).execute(
        "SELECT status, why, missing, filled FROM gaps WHERE missing IS NOT NULL "
        "ORDER BY id").fetchall()


def test_aggtrade_gaps_are_filled_from_aggtrades_each_trade_once(db):
    def done(c, sim):
        return (c.stats["reconnects"] >= 1 and c.stats["gaps_open"] == 0
                and c.stats["pending"] == 0 and c.stats["stored"] >= len(sim.trades))

    # frames lost on a connection that stays up, and a dropped connection while the market
    # goes on (a skipped range of ids across the reconnect)
    faults = Faults(lose_every=97, drop_every=1500, faulty_connections=(1,))
    with Simulator("binance", rate=RATE, count=COUNT, seed=41, broadcast=True, faults=faults,
                   channel="aggTrade") as sim, SimRest(sim) as rest:
        c = rtkit.collect("binance", [SYMBOL], url=sim.url, db=db, flush_interval_s=0.05,
                          backoff_initial_s=0.2, channel="aggTrade")
        try:
            wait_for(lambda: sim.all_sent, 20)
            wait_for(lambda: done(c, sim), 30)
        finally:
            c.stop()
        trades = [t for t in sim.trades if t.symbol == SYMBOL]
    assert sim.lost_frames >= 10
    assert stored(db) == expected(sim.dialect, trades)  # every trade, with its values, once
    rows = ledger(db)
    assert len(rows) >= 10 and {r[0] for r in rows} == {"filled"}, rows[:3]
    assert any(r[2] > 1 for r in rows)  # the reconnect's range, not only single frames
    assert all(r[2] == r[3] for r in rows)
    s = c.stats
    assert s["backfilled"] == sum(r[3] for r in rows) == s["missing_trades"]
    assert s["gaps_open"] == 0
    assert s["ticks"] == (s["stored"] + s["duplicates"] + s["pending"] + s["dropped_overflow"]
                          + s["unstorable"])
    # filled from aggTrades (aggregate ids), never from historicalTrades (trade ids)
    assert rest.requests["/api/v3/aggTrades"] >= 1
    assert rest.requests["/api/v3/historicalTrades"] == 0


def test_the_simulator_streams_aggtrade_events_when_asked():
    from rtkit.sim import get_dialect
    from rtkit.sim.market import Market

    trade = Market(3).trade(SYMBOL, 1_700_000_000_123_000_000)
    frame = get_dialect("binance", channel="aggTrade").encode([trade])[0]
    assert '"e":"aggTrade"' in frame and f'"a":{trade.trade_id},' in frame
    assert '"e":"trade"' in get_dialect("binance").encode([trade])[0]
    with pytest.raises(ValueError, match="'trade' or 'aggTrade'"):
        get_dialect("binance", channel="bookTicker")
