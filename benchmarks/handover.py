"""Scheduled and announced connection ends, many in a row: trades lost per close with
the make-before-break handover and without it (the receiver as it was).

Against the simulator over loopback, one market sent to every connection
(``broadcast``), a close every ``LIFETIME_S`` (Binance's 24 h compressed; OKX and
Bitstamp announce it ``NOTICE_S`` before). ``RTKIT_CLOSES`` sets how many closes the
handover run goes through (default 100); the run without it needs only a few to show
its loss per close. Run alone: ``python -m benchmarks.handover [venue ...]``; prints
JSON, one line per run, with its duration; every wait is bounded (``SLACK_S``,
``QUIET_S``, ``STOP_S``) and a handover run that lost a trade, left a gap row or could
not finish is named on stderr and makes the exit status 1.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
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
#: seconds the client may go without keeping one more trade before the run stops waiting
QUIET_S = 2.0
#: seconds allowed beyond twice the run's length (sending), and for reading on after it
SLACK_S = 30.0
#: seconds the collector has to stop; a benchmark that cannot end says so and fails
STOP_S = 10.0


def _case(venue: str) -> tuple[Faults, dict]:
    if venue.startswith("binance"):
        return Faults(lifetime_s=LIFETIME_S), {"connection_lifetime_s": LIFETIME_S}
    return Faults(lifetime_s=LIFETIME_S, notice_s=NOTICE_S), {}


def _read_on(c, made: int, deadline: float) -> str:
    """Wait until the client has every trade once and nothing pending, or has kept none
    more for ``QUIET_S``, or ``deadline``; "" when complete, else why it stopped waiting.
    Progress is counted in trades kept, not frames read: after the last trade, every
    reconnect of a run that lost some re-sends the overlap, duplicates only."""
    kept_before, still_since = -1, time.monotonic()
    while True:
        s = c.stats
        kept = s["ticks"] - s["duplicates"]
        if kept >= made and not s["pending"]:
            return ""
        now = time.monotonic()
        if kept != kept_before:
            kept_before, still_since = kept, now
        if now - still_since >= QUIET_S:
            return f"the client kept {kept} of {made} trades and no more for {QUIET_S:g}s"
        if now >= deadline:
            return f"the client kept {kept} of {made} trades by the deadline"
        time.sleep(0.05)


def measure(venue: str, closes: int, handover: bool) -> dict:
    """One run through about ``closes`` connection ends; what was lost and stored."""
    dialect = get_dialect(venue)
    faults, options = _case(venue)
    count = int(RATE * LIFETIME_S * closes)
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "ticks.sqlite"
        with Simulator(venue, rate=RATE, count=count, seed=5, overlap=OVERLAP, faults=faults,
                       broadcast=True) as sim:
            c = rtkit.Collector(venue, list(dialect.example_symbols), url=sim.url, db=db,
                                flush_interval_s=0.2, backoff_initial_s=0.2, **options)
            c.receiver.handover = handover
            c.start()
            try:
                deadline = time.monotonic() + count / RATE * 2 + SLACK_S
                while not sim.all_sent and time.monotonic() < deadline:
                    time.sleep(0.05)
                why = "" if sim.all_sent else (
                    f"the simulator sent {len(sim.trades)} of {count} trades in "
                    f"{time.monotonic() - started:.0f}s")
                why = why or _read_on(c, len(sim.trades), time.monotonic() + SLACK_S)
            finally:
                c.stop(STOP_S)
            if c.running:
                raise RuntimeError(f"benchmark {venue}: the collector did not stop within "
                                   f"{STOP_S:g}s (status {c.status!r})")
            made = len(sim.trades)
        conn = sqlite3.connect(db)
        rows, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT symbol || ':' || trade_id) FROM ticks").fetchone()
        gap_rows = conn.execute("SELECT count(*) FROM gaps").fetchone()[0]
        conn.close()
    ends = c.receiver.handovers if handover else c.stats["reconnects"]
    return {"venue": venue, "handover": handover, "connection_ends": ends,
            "reconnects": c.stats["reconnects"],
            "trades": made, "stored": rows, "stored_twice": rows - distinct,
            "lost": made - rows, "lost_per_end": round((made - rows) / max(1, ends), 1),
            "gap_rows": gap_rows, "duplicates_dropped": c.stats["duplicates"],
            "duration_s": round(time.monotonic() - started, 1), "incomplete": why}


def main(venues: tuple[str, ...]) -> int:
    """Print each run as JSON; 1 when a handover run lost a trade, left a gap row or
    could not finish (the baseline runs lose trades by design)."""
    closes = int(os.environ.get("RTKIT_CLOSES", "100"))
    bad = 0
    for venue in venues:
        for line in (measure(venue, BASELINE_CLOSES, handover=False),
                     measure(venue, closes, handover=True)):
            print(json.dumps(line), flush=True)
            if line["handover"] and (line["lost"] or line["gap_rows"] or line["incomplete"]):
                bad += 1
                print(f"FAILED {venue}: {line['lost']} trades lost, {line['gap_rows']} gap "
                      f"rows{'; ' + line['incomplete'] if line['incomplete'] else ''}",
                      file=sys.stderr, flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(tuple(sys.argv[1:]) or ("binance", "okx", "bitstamp")))
