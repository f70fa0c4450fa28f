"""Replay of order books: Bybit book frames per second rebuilt into ``book_deltas``.

``python -m benchmarks.replay_books``: a recording of one Bybit book (its ``books``
event, a 50-level snapshot, then deltas of one level per side) replayed with
``kinds=["book"]``; prints ``replay_book_frames_per_s`` (median of the runs).
The trades replay is ``benchmarks.foundation.bench_replay`` (unchanged by books).
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from pathlib import Path

import orjson

from benchmarks.util import median_of
from rtkit.replay import replay

T0 = 1_764_000_000_000_000_000


def _frame(u: int, kind: str, bids: list, asks: list, ms: int) -> str:
    return orjson.dumps({"topic": "orderbook.50.BTCUSDT", "type": kind, "ts": ms,
                         "data": {"s": "BTCUSDT", "b": bids, "a": asks, "u": u, "seq": u},
                         "cts": ms}).decode()


def write_book_recording(path: Path, frames: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    ms = T0 // 1_000_000
    lines: list[dict] = [
        {"event": "books", "received_at": T0, "venue": "bybit", "symbols": ["BTC-USDT"],
         "max_levels": 50, "derive_quotes": False, "audit_every_ns": 0, "rest": False},
        {"event": "open", "received_at": T0, "venue": "bybit", "symbols": ["BTC-USDT"]},
        {"received_at": T0 + 1, "venue": "bybit", "frame": _frame(
            1, "snapshot", [[f"{100 - i}.0", "1"] for i in range(1, 51)],
            [[f"{100 + i}.0", "1"] for i in range(1, 51)], ms)}]
    for u in range(2, frames + 1):
        bids = [[f"{100 - rng.randint(1, 50)}.0", str(rng.randint(0, 5))]]
        asks = [[f"{100 + rng.randint(1, 50)}.0", str(rng.randint(0, 5))]]
        lines.append({"received_at": T0 + u * 1000, "venue": "bybit",
                      "frame": _frame(u, "delta", bids, asks, ms + u)})
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))


def bench_replay_books(tmp: Path, frames: int = 100_000, runs: int = 3) -> dict:
    rec = tmp / "books.jsonl"
    write_book_recording(rec, frames)

    def once() -> float:
        db = tmp / f"books-{time.monotonic_ns()}.sqlite"
        t = time.perf_counter()
        s = replay(rec, db=db, kinds=["book"], progress=False)
        elapsed = time.perf_counter() - t
        assert s["book_messages"] == frames and s["book_desyncs"] == 0, s
        return frames / elapsed

    return {"replay_book_frames_per_s": median_of(once, runs)}


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as d:
        print(json.dumps(bench_replay_books(Path(d))))
