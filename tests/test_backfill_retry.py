"""A venue that fails for a while (5xx, no answer) does not end a gap: the gap stays
``pending`` and is tried again after a doubling wait, never in a tight loop; only a
venue that keeps failing ends it, and says so. Against the simulator on loopback; the
spacing is read from the times the simulator received the requests."""

from __future__ import annotations

import sqlite3

import pytest

import rtkit
from rtkit.sim import Faults, Simulator
from rtkit.sim.rest import SimRest
from tests.conftest import wait_for

pytestmark = pytest.mark.usefixtures("no_thread_leak")

TRADES_PATH = "/api/v3/historicalTrades"
INITIAL_S = 0.2  # the test's first wait (the default is 1 s)


def ledger(db) -> list[tuple]:
    return sqlite3.connect(db).execute(
        "SELECT status, why, missing, filled FROM gaps WHERE missing IS NOT NULL "
        "ORDER BY id").fetchall()


def collect_one_gap(db, failures: int, status: int = 503, *, attempts: int | None = None):
    """Binance with one lost frame (one gap of one trade); the REST side answers ``status``
    to the first ``failures`` requests, then serves normally."""
    def settled(c):
        return c.stats["gaps_open"] == 0 and c.stats["pending"] == 0 and c.stats["gaps"]

    seen = {}
    with Simulator("binance", rate=4000, count=1000, seed=51,
                   faults=Faults(lose_every=600)) as sim, SimRest(sim) as rest:
        rest.inject(status, failures, path=TRADES_PATH)
        c = rtkit.Collector("binance", ["BTC-USDT"], url=sim.url, db=db, flush_interval_s=0.05)
        assert c.backfiller is not None
        c.backfiller.retries.initial_s = INITIAL_S
        if attempts is not None:
            c.backfiller.retries.attempts = attempts
        c.start()
        try:
            wait_for(lambda: sim.all_sent, 20)
            if failures > 1:  # while a retry waits, stats say so
                seen = wait_for(lambda: (s := c.stats)["backfill_retry_waiting"] and s, 20)
            wait_for(lambda: settled(c), 30)
        finally:
            c.stop()
        log = [(at, status) for at, path, status in rest.log if path == TRADES_PATH]
    return c, log, seen


def test_a_venue_that_fails_for_a_while_is_retried_with_backoff_and_the_gap_filled(db):
    failures = 4  # more than the client's own quick retries (3) would absorb
    c, log, seen = collect_one_gap(db, failures)
    rows = ledger(db)
    assert [r[0] for r in rows] == ["filled"] and rows[0][2] == rows[0][3] == 1
    assert c.stats["backfilled"] == 1 and c.stats["gaps_open"] == 0
    # each failure cost one request, then one good answer filled the gap: no tight loop
    assert [s for _, s in log] == [503] * failures + [200]
    waits = [b[0] - a[0] for a, b in zip(log, log[1:], strict=False)]
    for i, waited in enumerate(waits):  # 0.2, 0.4, 0.8, 1.6 s: doubling, as the simulator saw
        assert waited >= INITIAL_S * 2 ** i * 0.9, waits
    assert seen["backfill_retry_waiting"] == 1 and seen["backfill_next_retry_s"] is not None
    assert "503" in seen["backfill_problem"] and "retry" in seen["backfill_problem"]
    assert c.stats["backfill_retry_waiting"] == 0 and c.stats["backfill_retries"] == failures


def test_a_venue_that_keeps_failing_ends_the_gap_and_says_so(db):
    c, log, _ = collect_one_gap(db, 50, 502, attempts=3)
    rows = ledger(db)
    assert [r[0] for r in rows] == ["unfillable"]
    assert rows[0][1].startswith("venue kept failing") and "502" in rows[0][1]
    assert [s for _, s in log] == [502] * 3  # bounded: the attempts, no more
    assert c.stats["gaps_open"] == 0 and c.stats["backfilled"] == 0


def test_no_answer_in_time_is_retried_too(db, monkeypatch):
    monkeypatch.setattr("rtkit.backfill.TIMEOUT_S", 0.3)
    def settled(c):
        return c.stats["gaps_open"] == 0 and c.stats["pending"] == 0 and c.stats["gaps"]

    with Simulator("binance", rate=4000, count=1000, seed=52,
                   faults=Faults(lose_every=600)) as sim, SimRest(sim) as rest:
        rest.inject(200, 2, delay_s=1.0, path=TRADES_PATH)  # slower than the timeout
        c = rtkit.Collector("binance", ["BTC-USDT"], url=sim.url, db=db, flush_interval_s=0.05)
        assert c.backfiller is not None
        c.backfiller.retries.initial_s = INITIAL_S
        c.start()
        try:
            wait_for(lambda: sim.all_sent, 20)
            wait_for(lambda: settled(c), 30)
        finally:
            c.stop()
    assert [r[0] for r in ledger(db)] == ["filled"]
    assert rest.requests[TRADES_PATH] == 3 and c.stats["backfill_retries"] == 2


def test_a_gap_waiting_for_its_retry_does_not_hold_up_the_others(db):
    def settled(c):
        return c.stats["gaps_open"] == 0 and c.stats["pending"] == 0 and c.stats["gaps"] >= 3

    with Simulator("binance", rate=4000, count=1000, seed=53,
                   faults=Faults(lose_every=300)) as sim, SimRest(sim) as rest:
        rest.inject(503, 1, path=TRADES_PATH)  # only the first gap's first request fails
        c = rtkit.Collector("binance", ["BTC-USDT"], url=sim.url, db=db, flush_interval_s=0.05)
        assert c.backfiller is not None
        c.backfiller.retries.initial_s = 1.5  # long enough for the stream's other gaps to open
        c.start()
        try:
            wait_for(lambda: sim.all_sent, 20)
            wait_for(lambda: settled(c), 30)
        finally:
            c.stop()
    rows = sqlite3.connect(db).execute(
        "SELECT status, filled_at FROM gaps WHERE missing IS NOT NULL ORDER BY id").fetchall()
    assert len(rows) == 3 and {r[0] for r in rows} == {"filled"}
    first, *others = (r[1] for r in rows)
    assert all(at < first for at in others)  # filled while the first waited for its retry
    assert [s for _, p, s in rest.log if p == TRADES_PATH] == [503, 200, 200, 200]
