"""The backfill thread writes into the run's recording too (fetched trades, the gaps it
ends) and can end after the receive thread: the recording stays open until the last of
them is done, or those lines are lost and the replay ends the gaps differently."""

from __future__ import annotations

import orjson
import pytest

import rtkit
from rtkit.backfill import Backfiller
from rtkit.recording import LastCloses, RecordingWriter
from rtkit.sim import Simulator
from rtkit.sim.rest import SimRest
from tests.conftest import wait_for

pytestmark = pytest.mark.usefixtures("no_thread_leak")

TRADE = ["1", 1_700_000_000_000_000_000, 1.5, 2.0, "buy"]  # a page's trade, as recorded


def events(path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_the_last_party_closes_the_recording(tmp_path):
    path = tmp_path / "run.jsonl"
    closing, recorder = LastCloses(2), RecordingWriter(path)
    closing.done(recorder)  # the receive thread ends first
    recorder.rest_trades(1, "binance", "BTC-USDT", [TRADE])
    assert recorder.failed is None and not recorder._fh.closed
    closing.done()  # then the backfill thread
    assert recorder._fh.closed
    assert [e["event"] for e in events(path)] == ["rest_trades"]


def test_a_line_the_backfill_writes_after_the_receive_thread_ended_is_kept(
        tmp_path, db, monkeypatch):
    path = tmp_path / "run.jsonl"
    run = Backfiller.run
    written = []

    def run_then_write(self):
        run(self)  # returns once stop() aborts it, after the receive thread ended
        recorder = self.recorder()
        recorder.rest_trades(123, "binance", "BTC-USDT", [TRADE])
        written.append(recorder.failed)

    monkeypatch.setattr(Backfiller, "run", run_then_write)
    with Simulator("binance", rate=2_000, count=200, seed=3) as sim, SimRest(sim):
        c = rtkit.collect("binance", ["BTC-USDT"], url=sim.url, db=db, record_raw=path,
                          flush_interval_s=0.05)
        try:
            wait_for(lambda: c.stats["stored"] >= 200, 20)
        finally:
            c.stop()
    assert c.backfiller is not None and written == [None]  # the write did not fail
    assert any(e.get("event") == "rest_trades" and e["received_at"] == 123
               for e in events(path))
