"""Crash safety: ``kill -9`` of a running ``rtkit collect`` leaves a sound SQLite
file holding every tick flushed before the kill; the loss window is the flush
interval, and the raw recording, flushed line by line, holds at least as much."""

from __future__ import annotations

import contextlib
import random
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

import rtkit
from rtkit.recording import Frame, read_recording
from rtkit.sim import Simulator
from tests.conftest import wait_for

pytestmark = pytest.mark.usefixtures("no_thread_leak")
FLUSH_INTERVAL_S = 0.2
RATE = 2000


def flushed(db) -> int:
    """Ticks another process can see in ``db`` right now."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            return conn.execute("SELECT count(*) FROM ticks").fetchone()[0]
    except sqlite3.Error:
        return 0  # not created yet


def collect_then_kill(tmp_path, record_name: str) -> dict:
    """Run ``rtkit collect`` against a simulator, ``kill -9`` it once several
    flushes are visible, and say what was visible and when."""
    db, record = tmp_path / "ticks.sqlite", tmp_path / record_name
    with Simulator("binance", rate=RATE, seed=6) as sim:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rtkit", "collect", "binance", "BTC-USDT", "--url", sim.url,
             "--db", str(db), "--flush-interval", str(FLUSH_INTERVAL_S), "--record", str(record)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: flushed(db) >= 1500, 30)
            # kill at a random point of the flush cycle: the wait is the measurement
            time.sleep(random.uniform(0, FLUSH_INTERVAL_S))
            visible = flushed(db)
            killed_at_ns = time.time_ns()
            proc.send_signal(signal.SIGKILL)
            assert proc.wait(5) == -signal.SIGKILL
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
        trades = list(sim.trades)
    return {"db": db, "record": record, "visible": visible, "killed_at_ns": killed_at_ns,
            "trades": trades}


def test_kill_9_leaves_a_sound_file_with_every_flushed_tick(tmp_path):
    run = collect_then_kill(tmp_path, "raw.jsonl")
    with contextlib.closing(sqlite3.connect(run["db"])) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        ids = [int(i) for (i,) in conn.execute("SELECT trade_id FROM ticks")]
        newest_received = conn.execute("SELECT max(received_at) FROM ticks").fetchone()[0]
        rows = conn.execute("SELECT trade_id, timestamp, price, volume, side FROM ticks "
                            "ORDER BY CAST(trade_id AS INTEGER)").fetchall()
        runs = conn.execute("SELECT status, stopped_at FROM runs").fetchall()
    assert len(ids) >= run["visible"]  # nothing that was flushed is gone
    assert sorted(ids) == list(range(1, len(ids) + 1))  # and no hole before the last one
    sent = {str(t.trade_id): (t.ts_ns, float(t.price), float(t.volume), t.side)
            for t in run["trades"]}
    assert all(sent[tid] == tuple(rest) for tid, *rest in rows)  # no torn or garbled row
    assert runs == [("running", None)]  # the run's row shows it never finished
    # the loss window: ticks received before the kill but never flushed
    window_s = (run["killed_at_ns"] - newest_received) / 1e9
    assert window_s < FLUSH_INTERVAL_S + 0.8, f"loss window {window_s:.3f}s"
    # the raw recording, flushed line by line, has every stored tick and more
    recorded = [f for f in read_recording(run["record"]) if isinstance(f, Frame)]
    assert len(recorded) >= len(ids)
    assert len(recorded) - len(ids) <= RATE * (window_s + 0.5)  # received, not flushed


def test_a_gzip_recording_cut_by_kill_9_replays(tmp_path):
    run = collect_then_kill(tmp_path, "raw.jsonl.gz")
    summary = rtkit.replay(run["record"], db=tmp_path / "replayed.sqlite")
    assert summary["stored"] >= run["visible"]
