"""What naming connections costs a recording: bytes of ``"conn"`` fields.

``python -m benchmarks.recording_connections``: a Bybit run (trades, quotes, books) on
the local simulator sending one market to every connection, recorded on one connection
and on two (``redundancy=2``); for each, the recording's bytes, plain and gzip, against
the same lines without their ``conn`` fields. Prints one JSON object:
``conn_overhead_<n>_frames`` (bytes of ``conn`` on frame lines), ``…_bytes`` (on every
line, the open and close events' included) and ``…_share`` / ``…_gz_share`` (of the
file, plain and compressed).
"""

from __future__ import annotations

import gzip
import json
import re
import tempfile
from pathlib import Path

import rtkit
from rtkit.sim import Simulator
from tests.conftest import wait_for

_CONN = re.compile(rb',"conn":\d+')
BOOK_COUNT = 6_000


def _record(tmp: Path, redundancy: int) -> Path:
    recording = tmp / f"r{redundancy}.jsonl"
    sim = Simulator("bybit", rate=500, count=100_000, seed=5, broadcast=True,
                    book_rate=2_000.0, book_count=BOOK_COUNT).start()
    c = rtkit.Collector("bybit", ["BTC-USDT", "ETH-USDT"], url=sim.url,
                        db=tmp / f"r{redundancy}.sqlite", kinds=["trades", "quotes", "book"],
                        redundancy=redundancy, record_raw=recording, flush_interval_s=0.2)
    try:
        c.start()
        wait_for(lambda: sim.books.messages >= BOOK_COUNT, 60)
    finally:
        c.stop()
        sim.stop()
    return recording


def measure(tmp: Path) -> dict:
    out: dict = {}
    for redundancy in (1, 2):
        data = _record(tmp, redundancy).read_bytes()
        lines = data.splitlines(keepends=True)
        stripped = b"".join(_CONN.sub(b"", line) for line in lines)
        on_frames = sum(len(line) - len(_CONN.sub(b"", line)) for line in lines
                        if not line.startswith(b'{"event"'))
        gz, gz_stripped = len(gzip.compress(data)), len(gzip.compress(stripped))
        key = f"conn_overhead_{redundancy}"
        out[f"{key}_lines"] = len(lines)
        out[f"{key}_file_bytes"] = len(data)
        out[f"{key}_frames"] = on_frames
        out[f"{key}_bytes"] = len(data) - len(stripped)
        out[f"{key}_share"] = round((len(data) - len(stripped)) / len(stripped), 5)
        out[f"{key}_gz_share"] = round((gz - gz_stripped) / gz_stripped, 5)
    return out


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(measure(Path(tmp))))
