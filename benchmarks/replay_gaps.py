"""Replay of a run's gap ledger: what ``gap_finished`` events cost a replay.

``python -m benchmarks.replay_gaps``: one Binance symbol whose every other id is
missing (50,000 one-trade gaps), replayed without and with a ``gap_finished`` event
per gap; prints the seconds of each (median of the runs) and the cost per event.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import orjson

from benchmarks.util import median_of
from rtkit.replay import replay

T0 = 1_764_000_000_000_000_000


def write(folder: Path, trades: int) -> tuple[Path, Path]:
    """The same recording without (``plain``) and with (``ledger``) the gap events."""
    lines = [b'{"event":"open","received_at":1,"venue":"binance","symbols":["BTC-USDT"]}\n']
    events = []
    for tid in range(1, trades + 1, 2):
        frame = ('{"e":"trade","s":"BTCUSDT","t":%d,"p":"1","q":"1","T":1764000000000,'
                 '"m":true}' % tid)
        lines.append(orjson.dumps({"received_at": T0 + tid, "venue": "binance",
                                   "frame": frame}) + b"\n")
        if tid > 1:
            events.append(orjson.dumps({
                "event": "gap_finished", "received_at": T0 + trades + tid, "venue": "binance",
                "symbol": "BTC-USDT", "first_missing": str(tid - 1),
                "last_missing": str(tid - 1), "seen_at": T0 + tid, "kind": "ids",
                "status": "unfillable", "filled": 0, "why": "older than the venue keeps"})
                + b"\n")
    plain, ledger = folder / "plain.jsonl", folder / "ledger.jsonl"
    plain.write_bytes(b"".join(lines))
    ledger.write_bytes(b"".join(lines + events))
    return plain, ledger


def bench(trades: int = 100_000, runs: int = 3) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        plain, ledger = write(folder, trades)
        out = {}
        for path in (plain, ledger):
            def once(path=path) -> float:
                db = folder / f"{path.stem}-{time.monotonic_ns()}.sqlite"
                t = time.perf_counter()
                summary = replay(path, db=db, progress=False)
                elapsed = time.perf_counter() - t
                assert summary["gaps_unmatched"] == 0
                return elapsed
            out[f"replay_{path.stem}_s"] = round(median_of(once, runs), 3)
        gaps = trades // 2 - 1
        out["replay_gap_events"] = gaps
        out["replay_gap_event_us"] = round(
            (out["replay_ledger_s"] - out["replay_plain_s"]) / gaps * 1e6, 1)
    return out


if __name__ == "__main__":
    print(json.dumps(bench(), indent=2))
