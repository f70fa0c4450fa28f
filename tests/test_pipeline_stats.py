"""The accounting identities hold in every read of ``stats()``, even while the
receive thread processes frames and the writer counts what it stored."""

from __future__ import annotations

import sys
import threading

from rtkit.buffer import RingBuffer
from rtkit.pipeline import Pipeline
from rtkit.venues import get_adapter


def trade(tid: int, symbol: str = "BTCUSDT") -> bytes:
    return ('{"e":"trade","E":1,"s":"%s","t":%d,"p":"1.5","q":"0.1","T":1764000000000,'
            '"m":true}' % (symbol, tid)).encode()


def broken(stats: dict) -> str | None:
    """Which identity a reading breaks, if any."""
    if stats["frames"] != stats["tick_frames"] + stats["control"] + stats["rejected_frames"]:
        return "frames"
    if stats["ticks"] != (stats["stored"] + stats["duplicates"] + stats["pending"]
                          + stats["dropped_overflow"]):
        return "ticks"
    return None


def test_every_stats_reading_adds_up_while_frames_flow():
    """A receive thread (batches of trades, repeats, controls and bad frames), a
    writer thread (take/done, some rows found already stored) and a reader in a
    tight loop; the switch interval is shortened so that threads interleave often."""
    p = Pipeline(get_adapter("binance"), RingBuffer(10_000), pending_limit=2_000)
    stop = threading.Event()
    readings: list[dict] = []
    bad: list[tuple[str, dict]] = []

    def receive() -> None:
        tid = 0
        while not stop.is_set():
            batch = []
            for _ in range(20):
                tid += 1
                batch += [trade(tid), trade(tid), b'{"result":null,"id":1}', b"not json"]
            p.process_frames(batch, 1)

    def write() -> None:
        while not stop.is_set():
            batch = p.take()
            p.done(batch, len(batch.ticks) // 2)  # half already stored: duplicates

    def read() -> None:
        for _ in range(20_000):
            s = p.stats()
            readings.append(s)
            reason = broken(s)
            if reason:
                bad.append((reason, s))

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    threads = [threading.Thread(target=f, daemon=True) for f in (receive, write)]
    try:
        for t in threads:
            t.start()
        read()
    finally:
        stop.set()
        for t in threads:
            t.join(10)
        sys.setswitchinterval(interval)
    assert readings[-1]["frames"] > 0 and readings[-1]["duplicates"] > 0
    assert not bad, f"{len(bad)} of {len(readings)} readings broke an identity, e.g. {bad[0]}"
    assert broken(p.stats()) is None
