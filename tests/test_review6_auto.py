"""Review of writer="auto": what starts its child, and what must not."""

from __future__ import annotations

import os

import pytest

import rtkit
from rtkit.runtime import writer
from rtkit.sim import Simulator
from rtkit.sim.rest import SimRest
from tests.conftest import wait_for
from tests.test_storage_faults import expected_rows, stored_rows
from tests.test_writer_process import SYMBOLS, assert_accounted, children

pytestmark = pytest.mark.usefixtures("no_thread_leak")


def test_one_deep_book_snapshot_on_a_quiet_feed_starts_no_child(db):
    """A depth-5000 snapshot is 10,000 rows at once, then the book moves 50 times a
    second: a burst, not a fast feed, so no writer process."""
    sim = Simulator("binance", rate=None, count=0, book_rate=50.0, book_levels=5000, seed=3)
    sim.start()
    rest = SimRest(sim).start()
    c = rtkit.Collector("binance", ["BTC-USDT"], url=sim.url, db=db, kinds=["book"],
                        depth=5000, flush_interval_s=0.2)
    c.start()
    try:
        wait_for(lambda: c.stats["books_good"] == 1, 30)
        wait_for(lambda: c.stats["book_deltas_stored"] >= 10_000, 30)
        messages = c.stats["book_messages"]
        wait_for(lambda: c.stats["book_messages"] >= messages + 25, 30)  # half a second on
        assert c.sink.undecided and c.sink.pid is None
        assert children(os.getpid()) == []
    finally:
        c.stop()
        rest.stop()
        sim.stop()


def test_a_fast_feed_with_a_lake_hands_the_sqlite_writing_to_a_child(db, tmp_path, monkeypatch):
    """With lake= the writer's sink is a Fanout of SQLite and the lake: "auto" must still
    see the SQLite sink's rate trigger (here the threshold is below the 2,000/s feed)."""
    monkeypatch.setattr(writer, "AUTO_ROWS_PER_S", 500)
    with Simulator("binance", rate=2000, count=3000, seed=13) as sim:
        c = rtkit.collect("binance", SYMBOLS, url=sim.url, db=db, lake=tmp_path / "lake",
                          flush_interval_s=0.1)
        try:
            wait_for(lambda: c.sink.in_child, 30)
            wait_for(lambda: c.stats["stored"] == 3000, 20)
        finally:
            c.stop()
        assert stored_rows(db) == expected_rows(sim.trades)
    assert_accounted(c.stats)
