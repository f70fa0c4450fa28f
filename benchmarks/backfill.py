"""Backfill (issue 14) against the simulator: a connection dropped while the market goes
on (``broadcast``) leaves an id gap of about ``rate × backoff`` trades; measured from the
reconnect to the gap row ``filled``, with the REST requests per 1,000 filled trades and
the share of the venue's published limit the budget used at its peak.

The simulator's REST side enforces each venue's published limit in real time, so the
times are what a venue's limit allows (OKX's 100 trades a page at 10 requests / 2 s
within half its limit bounds a fill to ~250 trades/s there).
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import rtkit
from rtkit.sim import Faults, Simulator, get_dialect
from rtkit.sim.rest import SimRest

RATE = 20_000
BEFORE = 2_000  # trades on the first connection before it drops


def _gap_row(db: Path) -> tuple | None:
    try:
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT status, missing, filled, filled_at, why FROM gaps "
                                "WHERE missing > 100 ORDER BY id LIMIT 1").fetchone()
    except sqlite3.Error:
        return None


def fill(venue: str, gap: int, timeout_s: float = 600.0) -> dict:
    """A gap of 80 to 100 % of ``gap`` trades filled from REST: the simulator's real rate is
    the machine's, so the downtime is scaled until the gap is about the size asked."""
    backoff_s = gap / RATE
    for _ in range(4):
        r = _fill(venue, gap, backoff_s, timeout_s)
        if 0.8 * gap <= r["gap"] <= gap:
            break
        backoff_s *= gap / max(r["gap"], 1)
    return r


def _fill(venue: str, gap: int, backoff_s: float, timeout_s: float) -> dict:
    """One dropped connection, down ``backoff_s``: a gap, filled from REST."""
    symbol = get_dialect(venue).example_symbols[0]
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "bench.sqlite"
        faults = Faults(drop_every=BEFORE, faulty_connections=(1,))
        with Simulator(venue, rate=RATE, count=BEFORE + gap + 5_000, seed=31, broadcast=True,
                       faults=faults) as sim, \
                SimRest(sim, tape_size=max(100_000, 3 * gap)) as rest:
            c = rtkit.collect(venue, [symbol], url=sim.url, db=db, flush_interval_s=0.1,
                              backoff_initial_s=backoff_s, backoff_max_s=max(30.0, backoff_s))
            try:
                deadline = time.monotonic() + timeout_s
                while c.stats["connections"] < 2 and time.monotonic() < deadline:
                    time.sleep(0.002)
                reconnected = time.perf_counter()
                row = None
                while time.monotonic() < deadline:
                    row = _gap_row(db)
                    if row is not None and row[0] != "pending":
                        break
                    time.sleep(0.02)
                elapsed = time.perf_counter() - reconnected
                backfiller = c.backfiller
                assert backfiller is not None and backfiller.client is not None
                budget = backfiller.client.budget
                requests = backfiller.client.stats["requests"]
                peak_share = budget.peak / budget.limit
            finally:
                c.stop()
            venue_peak_share = rest.used_peak / budget.limit
    if row is None:
        raise RuntimeError(f"{venue}: no gap row within {timeout_s} s")
    status, missing, filled, _, why = row
    return {"venue": venue, "gap": missing, "status": status, "filled": filled, "why": why,
            "reconnect_to_filled_s": round(elapsed, 2),
            "requests_per_1000": round(requests / max(filled, 1) * 1000, 2),
            "peak_budget_share": round(peak_share, 3),
            "venue_peak_share": round(venue_peak_share, 3)}


VENUES = ("binance", "binance-futures", "coinbase-exchange", "kraken", "okx")


def run(sizes=(10_000, 50_000), venues=VENUES) -> dict:
    out = {}
    for venue in venues:
        for size in sizes:
            r = fill(venue, size)
            key = f"backfill_{venue}_{size // 1000}k"
            out[f"{key}_s"] = r["reconnect_to_filled_s"]
            out[f"{key}_gap"] = r["gap"]
            out[f"{key}_status"] = r["status"]
            out[f"{key}_requests_per_1000"] = r["requests_per_1000"]
            out[f"{key}_peak_budget_share"] = r["peak_budget_share"]
            if r["why"]:
                out[f"{key}_why"] = r["why"]
            print(r, file=sys.stderr, flush=True)  # a long run shows where it is
    return out


if __name__ == "__main__":
    chosen = tuple(sys.argv[1:]) or VENUES
    for key, value in run(venues=chosen).items():
        print(f"{key:<52} {value}")
