"""Scheduled and announced connection ends, many in a row: trades lost per close with
the make-before-break handover and without it (the receiver as it was).

Against the simulator over loopback, one market sent to every connection
(``broadcast``), a close every ``LIFETIME_S`` (Binance's 24 h compressed; OKX and
Bitstamp announce it ``NOTICE_S`` before). ``RTKIT_CLOSES`` sets how many closes the
handover run goes through (default 100); the run without it needs only a few to show
its loss per close. Run alone: ``python -m benchmarks.handover``; prints JSON.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
import time
from pathlib import Path

import rtkit
from rtkit.sim import Faults, Simulator, get_dialect

RATE = 2_000  # trades/s
LIFETIME_S = 1.0
NOTICE_S = 0.4
OVERLAP = 20  # trades re-sent on a subscribe
BASELINE_CLOSES = 10


def _case(venue: str) -> tuple[Faults, dict]:
    if venue.startswith("binance"):
        return Faults(lifetime_s=LIFETIME_S), {"connection_lifetime_s": LIFETIME_S}
    return Faults(lifetime_s=LIFETIME_S, notice_s=NOTICE_S), {}


def measure(venue: str, closes: int, handover: bool) -> dict:
    """One run through about ``closes`` connection ends; what was lost and stored."""
    dialect = get_dialect(venue)
    faults, options = _case(venue)
    count = int(RATE * LIFETIME_S * closes)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "ticks.sqlite"
        with Simulator(venue, rate=RATE, count=count, seed=5, overlap=OVERLAP, faults=faults,
                       broadcast=True) as sim:
            c = rtkit.Collector(venue, list(dialect.example_symbols), url=sim.url, db=db,
                                flush_interval_s=0.2, backoff_initial_s=0.2, **options)
            c.receiver.handover = handover
            c.start()
            deadline = time.monotonic() + closes * LIFETIME_S * 2 + 30
            while not sim.all_sent and time.monotonic() < deadline:
                time.sleep(0.05)
            # the client reads on until it has every trade, or makes no progress for 2 s
            seen, still_since = -1, time.monotonic()
            while time.monotonic() - still_since < 2.0:
                s = c.stats
                if s["ticks"] - s["duplicates"] >= len(sim.trades) and not s["pending"]:
                    break
                if s["ticks"] != seen:
                    seen, still_since = s["ticks"], time.monotonic()
                time.sleep(0.05)
            c.stop()
            made = len(sim.trades)
        conn = sqlite3.connect(db)
        rows, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT symbol || ':' || trade_id) FROM ticks").fetchone()
        gap_rows = conn.execute("SELECT count(*) FROM gaps").fetchone()[0]
        conn.close()
    ends = c.receiver.handovers if handover else c.stats["reconnects"]
    return {"venue": venue, "handover": handover, "connection_ends": ends,
            "trades": made, "stored": rows, "stored_twice": rows - distinct,
            "lost": made - rows, "lost_per_end": round((made - rows) / max(1, ends), 1),
            "gap_rows": gap_rows, "duplicates_dropped": c.stats["duplicates"]}


def run(closes: int | None = None, venues=("binance", "okx", "bitstamp")) -> list[dict]:
    closes = closes or int(os.environ.get("RTKIT_CLOSES", "100"))
    out = []
    for venue in venues:
        out.append(measure(venue, BASELINE_CLOSES, handover=False))
        out.append(measure(venue, closes, handover=True))
    return out


if __name__ == "__main__":
    import sys

    for line in run(venues=tuple(sys.argv[1:]) or ("binance", "okx", "bitstamp")):
        print(json.dumps(line), flush=True)
