"""Review: a backfill whose venue fails forever: stop() ends the thread while retries
wait, and every gap it held goes back to the ledger (a later run takes it up)."""

from __future__ import annotations

import sqlite3

import pytest

import rtkit
from rtkit.sim import Faults, Simulator
from rtkit.sim.rest import SimRest
from tests.conftest import wait_for
from tests.test_backfill_retry import TRADES_PATH

pytestmark = pytest.mark.usefixtures("no_thread_leak")


def test_stop_while_retries_wait_ends_the_thread_and_gives_every_gap_back(db):
    with Simulator("binance", rate=4000, count=1500, seed=61,
                   faults=Faults(lose_every=150)) as sim, SimRest(sim) as rest:
        rest.inject(503, 10_000, path=TRADES_PATH)  # the venue fails forever
        c = rtkit.Collector("binance", ["BTC-USDT"], url=sim.url, db=db, flush_interval_s=0.05)
        assert c.backfiller is not None
        c.backfiller.retries.initial_s = 30.0  # every gap waits long for its retry
        c.start()
        try:
            wait_for(lambda: c.stats["backfill_retry_waiting"] >= 3, 30)
            requests = rest.requests[TRADES_PATH]
        finally:
            c.stop(timeout_s=5)
        assert c._backfill_thread is not None and not c._backfill_thread.is_alive()
    # one request a gap (one more may have been in flight), none repeated while they wait
    assert requests <= c.stats["backfill_retries"] + 1
    held = sqlite3.connect(db).execute(
        "SELECT count(*) FROM gaps WHERE status = 'pending' AND claimed_at IS NOT NULL"
    ).fetchone()[0]
    assert held == 0  # each given back: the next run takes it up at once
    pending = sqlite3.connect(db).execute(
        "SELECT count(*) FROM gaps WHERE status = 'pending' AND missing IS NOT NULL"
    ).fetchone()[0]
    assert pending >= 3  # not ended as unfillable by the stop


def _run(db, seed: int, failing: bool, poll_s: float | None = None):
    """One Binance run with a gap every 600 trades; its REST side fails throughout
    (``failing``: the gaps stay pending for a later run) or serves."""
    with Simulator("binance", rate=4000, count=1300, seed=seed,
                   faults=Faults(lose_every=600)) as sim, SimRest(sim) as rest:
        if failing:
            rest.inject(503, 10_000, path=TRADES_PATH)
        c = rtkit.Collector("binance", ["BTC-USDT"], url=sim.url, db=db, flush_interval_s=0.05)
        assert c.backfiller is not None
        c.backfiller.retries.initial_s = 30.0
        c.start()
        try:
            wait_for(lambda: sim.all_sent and c.stats["pending"] == 0, 30)
            if failing:
                wait_for(lambda: c.stats["backfill_retry_waiting"] == c.stats["gaps_open"] > 0,
                         30)
            else:
                wait_for(lambda: sqlite3.connect(db).execute(
                    "SELECT count(*) FROM gaps WHERE status = 'pending' AND missing IS NOT NULL"
                ).fetchone()[0] == 0, 30)
        finally:
            c.stop()
    return c


def test_a_run_that_fills_an_earlier_runs_gaps_keeps_its_own_gaps_open_right(db):
    """A run stopped with gaps pending; the next run on the file fills them (as the
    README promises): its ``gaps_open`` counts its own gaps, never below zero."""
    first = _run(db, 81, failing=True)
    assert first.stats["gaps_open"] >= 2
    second = _run(db, 82, failing=False)
    s = second.stats
    assert s["backfilled"] >= first.stats["gaps_open"]  # it filled the earlier gaps too
    assert s["gaps_open"] == 0, s["gaps_open"]


@pytest.mark.xfail(strict=True, reason=(
    "gaps_open is a collector's own count (gaps it recorded minus gaps its backfiller "
    "ended); with two collectors of one venue on one file, either backfiller claims "
    "either's gaps, so one keeps gaps_open > 0 for gaps the ledger says are filled and "
    "the other goes below zero. Fix (not small): claim only the gaps this collector "
    "recorded while both run, or count a gap ended by the other in the recorder's stats"))
def test_two_collectors_on_one_file_each_see_their_gaps_closed(db):
    with Simulator("binance", rate=4000, count=1300, seed=91,
                   faults=Faults(lose_every=600), broadcast=True) as sim, SimRest(sim) as rest:
        a, b = (rtkit.Collector("binance", ["BTC-USDT"], url=sim.url, db=db, name=name,
                                flush_interval_s=0.05) for name in ("a", "b"))
        assert a.backfiller is not None
        a.backfiller.poll_s = 5.0  # b's backfiller looks first: it claims a's gaps too
        a.start()
        b.start()
        try:
            wait_for(lambda: sim.all_sent and a.stats["gaps"] and b.stats["gaps"], 30)
            wait_for(lambda: sqlite3.connect(db).execute(
                "SELECT count(*) FROM gaps WHERE status = 'pending' AND missing IS NOT NULL"
            ).fetchone()[0] == 0, 30)
            assert rest.requests[TRADES_PATH] >= 2
        finally:
            a.stop()
            b.stop()
    assert (a.stats["gaps_open"], b.stats["gaps_open"]) == (0, 0)
