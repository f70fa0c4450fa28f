"""Review of the idle wake (a pause of the feed wakes the writer): a trickle feed pauses
after every frame, so waking the writer at each pause flushed every frame on its own: a
transaction and, with ``lake=``, a Parquet file per symbol for each trade (measured 90
files in 3 s at 30 trades/s, against 3 before). A trickle keeps its flush interval."""

from __future__ import annotations

import time

import pytest

import rtkit
from rtkit.sim import Simulator
from tests.conftest import wait_for

pytestmark = pytest.mark.usefixtures("no_thread_leak")
RATE = 30  # trades/s, one a frame: ~33 ms apart, each gap longer than IDLE_FLUSH_S
INTERVAL_S = 1.0


def test_a_trickle_feed_is_flushed_by_its_interval_not_by_every_pause(db, tmp_path):
    lake = tmp_path / "lake"
    with Simulator("binance", rate=RATE, seed=8) as sim:
        c = rtkit.collect("binance", ["BTC-USDT"], url=sim.url, db=db, lake=lake,
                          flush_interval_s=INTERVAL_S, backfill=False)
        try:
            wait_for(lambda: c.stats["stored"] > 0, 20)
            files_before, ticks_before = len(list(lake.rglob("*.parquet"))), c.stats["ticks"]
            started = time.monotonic()
            wait_for(lambda: c.stats["ticks"] >= ticks_before + 2 * RATE, 20)  # ~2 s of it
            files = len(list(lake.rglob("*.parquet"))) - files_before
            intervals = (time.monotonic() - started) / INTERVAL_S
            assert files <= intervals + 2  # one file a flush: about one flush an interval
        finally:
            c.stop()
