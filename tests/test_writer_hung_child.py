"""A writer process that never answers its take-over (hung before its imports: a
broken interpreter, a stalled disk) is ended after START_TIMEOUT_S, a refused
take-over like one that died; after MAX_REFUSED_HANDOVERS the collector's own process
writes for good, and its flushes no longer wait an interval for a child that never
comes."""

from __future__ import annotations

import logging

import rtkit
from rtkit.runtime import writer_child, writer_process
from rtkit.sim import Simulator
from tests.conftest import wait_for
from tests.test_writer_process import SYMBOLS, assert_accounted, gone


def test_a_child_that_never_answers_is_ended_and_this_process_writes(db, held_child,
                                                                     monkeypatch, caplog):
    monkeypatch.setattr(writer_process, "START_TIMEOUT_S", 0.3)
    started: list[int] = []
    init = writer_child.WriterChild.__init__

    def counted(self, *args, **kwargs):
        init(self, *args, **kwargs)
        started.append(self.pid)

    monkeypatch.setattr(writer_child.WriterChild, "__init__", counted)
    caplog.set_level(logging.WARNING, logger="rtkit")
    with Simulator("binance", rate=2000, count=100_000, seed=23) as sim:  # never released
        c = rtkit.Collector("binance", SYMBOLS, url=sim.url, db=db, flush_interval_s=0.2,
                            writer="process")
        c.start()
        try:
            most = writer_process.MAX_REFUSED_HANDOVERS
            wait_for(lambda: len(started) == most and gone(started[-1]), 20)
            assert all(gone(pid) for pid in started)  # each hung one was ended
            received = c.stats["ticks"]
            wait_for(lambda: c.stats["stored"] >= received + 200, 20)  # written here
            assert c.stats["sqlite_writer"] == "thread" and len(started) == most  # for good
        finally:
            c.stop()
    assert_accounted(c.stats)
    assert "did not answer within 0.3 s" in caplog.text
