"""A symbol the venue refuses shows in ``.status`` at once, over the simulator's sockets."""

import sqlite3

import pytest

import rtkit
from rtkit.sim import Faults, Simulator
from tests.conftest import wait_for

# the venues whose refusal names the symbol (Bitstamp's "Invalid channel provided." does not)
VENUES = ["binance", "okx", "bybit", "kraken"]


@pytest.mark.usefixtures("no_thread_leak")
@pytest.mark.parametrize("venue", VENUES)
def test_one_refused_symbol_is_named_in_the_status_while_the_other_is_stored(venue, db):
    faults = Faults(reject_symbols=("ETH-USD" if venue == "kraken" else "ETH-USDT",))
    quote = "USD" if venue == "kraken" else "USDT"
    good, bad = f"BTC-{quote}", f"ETH-{quote}"
    with (Simulator(venue, rate=2000, count=200, seed=5, faults=faults) as sim,
          rtkit.collect(venue, [good, bad], url=sim.url, db=db, flush_interval_s=0.1) as c):
        # at once: long before the 30 s no-data watchdog of the old code
        wait_for(lambda: f"venue refused {bad}" in c.status.reason, 5)
        assert c.status == "live" and "the rest are live" in c.status.reason
        assert c.stats["venue_error"] and c.stats["venue_error"][:20] in c.status.reason
        assert c.stats["refused_symbols"] == [bad]
        wait_for(lambda: c.stats["stored"] >= 200, 10)
    assert sqlite3.connect(db).execute("SELECT DISTINCT symbol FROM ticks").fetchall() == [
        (good,)]


@pytest.mark.usefixtures("no_thread_leak")
@pytest.mark.parametrize("venue", ["binance", "okx"])
def test_every_symbol_refused_fails_quickly_with_the_venues_message(venue, db):
    symbols = ("BTC-USDT", "ETH-USDT")
    with (Simulator(venue, rate=100, seed=1, faults=Faults(reject_symbols=symbols)) as sim,
          rtkit.collect(venue, list(symbols), url=sim.url, db=db,
                        backoff_initial_s=0.05) as c):
        # the default 30 s no-data watchdog would take 3 x 30 s to get there
        wait_for(lambda: c.status == "failed", 10)
        assert c.stats["venue_error"][:20] in c.status.reason
        assert "venue keeps refusing the subscription" in c.status.reason
        assert c.stats["refused_symbols"] == list(symbols)
        assert c.stats["connections"] == 3 and c.stats["stored"] == 0
