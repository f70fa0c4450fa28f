"""What one panel refresh costs, with books and quotes collected (issue 13: the panel's bid/ask
lines, depth ladders and book lights must not slow the refresh).

Runs a Bybit simulator (trades, quotes, books) on loopback, a collector of two symbols
and a panel (not displayed; its refresh thread idle), then times ``panel.refresh()``.
Run it against any checkout to compare (before / after)::

    PYTHONPATH=<checkout> python benchmarks/panel_books.py
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import rtkit
from rtkit.sim import Simulator
from rtkit.widgets import Panel

SYMBOLS = ["BTC-USDT", "ETH-USDT"]
WARM_S = 6.0
REFRESHES = 100


def measure(kinds: list[str]) -> dict[str, float]:
    db = Path(tempfile.mkdtemp(prefix="rtkit-panel-bench-")) / "ticks.sqlite"
    with Simulator("bybit", rate=1_000, seed=3, book_rate=400) as sim:
        c = rtkit.Collector("bybit", SYMBOLS, url=sim.url, db=db, kinds=kinds,
                            flush_interval_s=0.2).start()
        try:
            time.sleep(WARM_S)  # a benchmark, not a test: let the rings fill for a while
            panel = Panel(c, refresh_s=3_600)  # its thread waits an hour: we refresh here
            times, cpu = [], []
            for _ in range(REFRESHES):
                t0, c0 = time.perf_counter(), time.thread_time()
                panel.refresh()
                times.append((time.perf_counter() - t0) * 1e3)
                cpu.append((time.thread_time() - c0) * 1e3)  # this thread's CPU: less noisy
            panel.close()
        finally:
            c.stop()
    return {"median_ms": round(statistics.median(times), 2),
            "p90_ms": round(sorted(times)[int(0.9 * REFRESHES)], 2),
            "cpu_median_ms": round(statistics.median(cpu), 2), "ticks": c.stats["ticks"]}


if __name__ == "__main__":
    print("rtkit from", rtkit.__file__)
    for kinds in (["trades"], ["trades", "quotes", "book"]):
        print(",".join(kinds), measure(kinds))
