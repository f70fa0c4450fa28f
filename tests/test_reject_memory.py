"""Reject rows waiting for a stalled SQLite are bounded in bytes, not only in rows: a
hostile feed of frames made of 4-byte characters must not grow the process by the
hundreds of MiB that 20,000 rows of 4,096 such characters take."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from rtkit.pipeline import MAX_PENDING_REJECT_BYTES

ROOT = Path(__file__).resolve().parents[1]
MIB = 1024 * 1024

# a pipeline with nobody writing (storage stalled for good) fed hostile frames: 16 KiB of
# emoji each, not JSON, so each one is a malformed_json reject keeping 4,096 characters
STALL = textwrap.dedent("""
    import json, sys
    from tests.conftest import peak_rss_kib
    from rtkit.buffer import RingBuffer
    from rtkit.pipeline import Pipeline
    from rtkit.venues import get_adapter

    frames = int(sys.argv[1])
    p = Pipeline(get_adapter("binance"), RingBuffer(1000))
    frame = ("\\U0001F600" * 4096).encode()
    p.process_frames([frame], 0)  # everything a reject touches has been used once
    before = peak_rss_kib()
    for i in range(frames // 100):
        p.process_frames([frame] * 100, i)
    peak = peak_rss_kib()
    print(json.dumps({"before_kib": before, "peak_kib": peak, **p.stats()}))
""")


def run_stall(frames: int) -> dict:
    done = subprocess.run([sys.executable, "-c", STALL, str(frames)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_pending_reject_rows_of_four_byte_characters_stay_within_their_byte_bound():
    s = run_stall(30_000)  # 30,000 x 16 KiB = 470 MiB of reject text offered
    growth = (s["peak_kib"] - s["before_kib"]) * 1024
    assert growth < MAX_PENDING_REJECT_BYTES + 8 * MIB, f"grew {growth / MIB:.0f} MiB"
    # every reject is still counted, by reason; only rows beyond the bound are not kept
    assert s["rejected"] == s["rejected_by_reason"]["malformed_json"] == 30_001
    assert s["rejects_pending"] + s["rejects_dropped"] == 30_001
    assert s["rejects_pending"] * 16 * 1024 <= MAX_PENDING_REJECT_BYTES
    assert s["rejects_pending"] > MAX_PENDING_REJECT_BYTES // (17 * 1024)  # the bound is used


def test_rows_being_written_count_against_the_bound_until_done(monkeypatch):
    import rtkit.pipeline_queue as pipeline_queue
    from rtkit.buffer import RingBuffer
    from rtkit.pipeline import Pipeline
    from rtkit.venues import get_adapter

    frame = ("\U0001F600" * 4096).encode()  # a row of about 16.5 KiB
    monkeypatch.setattr(pipeline_queue, "MAX_PENDING_REJECT_BYTES", 3 * 17 * 1024)
    p = Pipeline(get_adapter("binance"), RingBuffer(10))
    p.process_frames([frame] * 5, 1)
    assert p.stats()["rejects_dropped"] == 2
    batch = p.take()  # being written: still in memory
    p.process(frame, 2)
    assert p.stats()["rejects_dropped"] == 3
    p.give_back()  # the write failed: the rows wait again, nothing more fits
    p.process(frame, 3)
    assert p.stats()["rejects_dropped"] == 4
    batch = p.take()
    p.done(batch, 0)  # written: their memory is free again
    p.process_frames([frame] * 4, 4)
    s = p.stats()
    assert len(batch.rejects) == 3 and s["rejects_dropped"] == 5 and s["rejects_pending"] == 3
