"""A burst is on disk as soon as the feed pauses, not a flush interval later: the
receive loop wakes the writer when its socket has been quiet for ``IDLE_FLUSH_S``
with ticks the writer was not woken for (issue 17)."""

from __future__ import annotations

import sqlite3
import time

import pytest

import rtkit
from rtkit.runtime.chunks import FLUSH_BATCH, IDLE_FLUSH_MIN_TICKS
from rtkit.sim import Simulator
from tests.conftest import wait_for

pytestmark = pytest.mark.usefixtures("no_thread_leak")
COUNT = 600  # far below FLUSH_BATCH: only the pause can wake the writer
# (and at least IDLE_FLUSH_MIN_TICKS: a pause wakes it for a burst, not for a trickle)
INTERVAL_S = 60.0  # the writer's own interval: never reached in this test


@pytest.mark.parametrize("redundancy", [1, 2])  # one socket read blocking, or polled
def test_a_burst_is_stored_when_the_feed_pauses_long_before_the_interval(db, redundancy):
    assert IDLE_FLUSH_MIN_TICKS <= COUNT < FLUSH_BATCH
    with Simulator("binance", rate=20_000, count=COUNT, seed=5, broadcast=True) as sim:
        c = rtkit.collect("binance", ["BTC-USDT", "ETH-USDT"], url=sim.url, db=db,
                          flush_interval_s=INTERVAL_S, redundancy=redundancy, backfill=False)
        try:
            wait_for(lambda: c.stats["connections"] >= redundancy, 10)
            wait_for(lambda: sim.all_sent and c.stats["ticks"] >= COUNT, 20)
            received = time.monotonic()
            wait_for(lambda: c.stats["stored"] == COUNT, 5)
            assert time.monotonic() - received < 5 < INTERVAL_S
            # on disk, for another connection, while the collector still runs
            assert sqlite3.connect(db).execute(
                "SELECT count(*) FROM ticks").fetchone()[0] == COUNT
            assert c.running and c.stats["pending"] == 0
        finally:
            c.stop()


def test_a_quiet_feed_does_not_wake_the_writer_again_and_again(db):
    # once what came is stored, a silent socket waits its full read timeout again: the
    # writer is woken once per pause, not every IDLE_FLUSH_S
    with Simulator("binance", rate=20_000, count=COUNT, seed=6) as sim:
        c = rtkit.collect("binance", ["BTC-USDT"], url=sim.url, db=db,
                          flush_interval_s=INTERVAL_S, backfill=False)
        try:
            wait_for(lambda: c.stats["stored"] == COUNT, 10)
            quiet_from = time.monotonic()
            time.sleep(1.0)  # a second of silence: a wake per 20 ms would be ~50 flushes
            # (the writer keeps the times of its newest 11 flushes)
            assert sum(at > quiet_from for at, _, _ in c.writer.rates) <= 1
        finally:
            c.stop()
