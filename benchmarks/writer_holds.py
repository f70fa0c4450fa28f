"""How long a flush keeps the interpreter lock from the receive thread, per writer.

``python -m benchmarks.writer_holds [FLUSHES]``: a probe thread, standing in for the
receive thread of a 20k frames/s feed, sleeps 0.2 ms in a loop while the sink writes
flushes of 20k trades (a second of that feed each), and records how late each
wake-up is: a wake-up waits for the lock as a frame does. Each sink runs twice in
this process, its flushes taken for a slow feed's, in small parts (as rtkit writes a
feed's below ``SLOW_FEED_TICKS_PER_S``), and for a fast one's, in one go (as every
flush was written before); the p99 of the
lateness is what the receive → ``.df`` p99 of ``make bench``'s latency row follows.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from rtkit.kinds.trades import TradeRows
from rtkit.runtime.writer_process import ProcessSink
from rtkit.sinks import RunInfo
from rtkit.sinks import sqlite as sqlite_sink

N = 20_000
T0 = 1_764_000_000_000_000_000
PROBE_SLEEP_S = 0.0002


def flushes(k: int) -> list[TradeRows]:
    return [TradeRows("binance", [
        (T0 + (f * N + i) * 3000 + 5,
         [("BTC-USDT", 10_000_000 + f * N + i, T0 + (f * N + i) * 3000,
           50_000.0 + (i % 100) * 0.01, 0.001 * (i % 7 + 1), i % 2)])
        for i in range(N)]) for f in range(k)]


def lateness(sink, batches: list[TradeRows]) -> dict:
    late: list[float] = []
    stop = threading.Event()

    def probe() -> None:
        while not stop.is_set():
            t = time.perf_counter()
            time.sleep(PROBE_SLEEP_S)
            late.append(time.perf_counter() - t - PROBE_SLEEP_S)

    thread = threading.Thread(target=probe)
    thread.start()
    t = time.perf_counter()
    for ticks in batches:
        sink.write((ticks, [], [], None), [])
    elapsed = time.perf_counter() - t
    stop.set()
    thread.join()
    ms = sorted(x * 1e3 for x in late)
    return {"write_ms_per_flush": round(elapsed / len(batches) * 1e3, 1),
            "late_p50_ms": round(statistics.median(ms), 2),
            "late_p99_ms": round(ms[int(len(ms) * 0.99)], 2),
            "late_max_ms": round(ms[-1], 2),
            "late_over_1ms_total_ms": round(sum(x for x in ms if x > 1), 1)}


def run(k: int = 6) -> dict:
    run_info = RunInfo("bench", "binance", ["BTC-USDT"], "ws://127.0.0.1:1/ws", {}, T0)
    out: dict = {}
    for small, label in ((True, "in_parts"), (False, "in_one_go")):
        threshold = 10**12 if small else 0  # every flush a slow feed's, or a fast one's
        for name, make in (("thread", sqlite_sink.SQLiteSink), ("process", ProcessSink)):
            with tempfile.TemporaryDirectory() as d:
                sink = make(Path(d) / "holds.sqlite")
                saved = sqlite_sink.SLOW_FEED_TICKS_PER_S
                sqlite_sink.SLOW_FEED_TICKS_PER_S = threshold
                try:
                    sink.probe()
                    sink.open(run_info)
                    deadline = time.monotonic() + 30
                    while name == "process" and not (sink.check() is None and sink.in_child):
                        if time.monotonic() > deadline:
                            raise RuntimeError("the writer process did not take over")
                        time.sleep(0.01)
                    for key, value in lateness(sink, flushes(k)).items():
                        out[f"holds_{name}_{label}_{key}"] = value
                finally:
                    sink.close()
                    sqlite_sink.SLOW_FEED_TICKS_PER_S = saved
    for name in ("thread", "process"):
        out[f"holds_{name}_p99_late_in_parts_vs_one_go"] = round(
            out[f"holds_{name}_in_parts_late_p99_ms"] / out[f"holds_{name}_in_one_go_late_p99_ms"],
            2)
    return out


if __name__ == "__main__":
    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else 6), indent=2))
