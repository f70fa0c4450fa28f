"""Backfill (issue 14) against the simulator: a connection dropped while the market goes
on (``broadcast``) leaves an id gap of about ``rate × backoff`` trades; measured from the
reconnect to the gap row ``filled``, with the REST requests per 1,000 filled trades and
the share of the venue's published limit the budget used at its peak.

The simulator's REST side enforces each venue's published limit in real time, so the
times are what a venue's limit allows (OKX's 100 trades a page at 10 requests / 2 s
within half its limit bounds a fill to ~500 trades/s there; Kraken's 1,000 a page at
one request per 2 s, ~500 trades/s). Each size runs at the default budget share (0.5)
and at ``rest_budget_share=0.9``; ``http_429`` counts the simulator's refusals (0: the
budget kept under the venue's limit), ``rate_share`` the units spent from the reconnect
to the fill over what the published limit allows in that time.

    python -m benchmarks.backfill [VENUE …] [--sizes 10000,50000] [--shares 0.5,0.9]
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


def fill(venue: str, gap: int, timeout_s: float = 600.0, share: float = 0.5) -> dict:
    """A gap of 80 to 100 % of ``gap`` trades filled from REST: the simulator's real rate is
    the machine's, so the downtime is scaled until the gap is about the size asked."""
    backoff_s = gap / RATE
    for _ in range(4):
        r = _fill(venue, gap, backoff_s, timeout_s, share)
        if 0.8 * gap <= r["gap"] <= gap:
            break
        backoff_s *= 0.9 * gap / max(r["gap"], 1)  # aim inside the range, not at its edge
    return r


def _fill(venue: str, gap: int, backoff_s: float, timeout_s: float, share: float) -> dict:
    """One dropped connection, down ``backoff_s``: a gap, filled from REST."""
    symbol = get_dialect(venue).example_symbols[0]
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "bench.sqlite"
        faults = Faults(drop_every=BEFORE, faulty_connections=(1,))
        # twice the trades asked for: a downtime too long shows as a gap too large, never
        # as one cut at the end of the simulator's trades
        with Simulator(venue, rate=RATE, count=BEFORE + 2 * gap + 5_000, seed=31,
                       broadcast=True,
                       faults=faults) as sim, \
                SimRest(sim, tape_size=max(100_000, 3 * gap)) as rest:
            c = rtkit.collect(venue, [symbol], url=sim.url, db=db, flush_interval_s=0.1,
                              backoff_initial_s=backoff_s, backoff_max_s=max(30.0, backoff_s),
                              rest_budget_share=share)
            try:
                deadline = time.monotonic() + timeout_s
                while c.stats["connections"] < 2 and time.monotonic() < deadline:
                    time.sleep(0.002)
                reconnected = time.perf_counter()
                refused_before = rest.statuses[429]
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
                spent = _spent_units(rest, venue)
                refused = rest.statuses[429] - refused_before
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
            "venue_peak_share": round(venue_peak_share, 3), "share": share,
            # over a fill shorter than two of the venue's windows a burst says nothing
            "rate_share": round(spent / (elapsed * budget.limit / budget.published_window_s), 3)
            if elapsed >= 2 * budget.published_window_s else None,
            "http_429": refused}


def _spent_units(rest: SimRest, venue: str) -> float:
    """The budget units of the trade-history requests the simulator answered."""
    from rtkit.rest.endpoints import venue_rest

    spec = venue_rest(venue)
    assert spec.trades is not None
    weight = spec.trades(get_dialect(venue).example_symbols[0]).weight
    paths = {path for path in rest.requests if "rade" in path or "ticker" in path}
    return sum(rest.requests[p] for p in paths) * weight


VENUES = ("binance", "binance-futures", "coinbase-exchange", "kraken", "okx")


def run(sizes=(10_000, 50_000), venues=VENUES, shares=(0.5, 0.9)) -> dict:
    out = {}
    for venue in venues:
        for size, share in ((size, share) for size in sizes for share in shares):
            r = fill(venue, size, share=share)
            key = f"backfill_{venue}_{size // 1000}k" + ("" if share == 0.5 else f"_share{share}")
            out[f"{key}_s"] = r["reconnect_to_filled_s"]
            out[f"{key}_gap"] = r["gap"]
            out[f"{key}_status"] = r["status"]
            out[f"{key}_requests_per_1000"] = r["requests_per_1000"]
            out[f"{key}_peak_budget_share"] = r["peak_budget_share"]
            out[f"{key}_rate_share"] = r["rate_share"]
            out[f"{key}_http_429"] = r["http_429"]
            if r["why"]:
                out[f"{key}_why"] = r["why"]
            print(r, file=sys.stderr, flush=True)  # a long run shows where it is
    return out


def _numbers(text: str, kind=float) -> tuple:
    return tuple(kind(x) for x in text.split(",") if x)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("venues", nargs="*", default=list(VENUES))
    parser.add_argument("--sizes", type=lambda t: _numbers(t, int), default=(10_000, 50_000))
    parser.add_argument("--shares", type=_numbers, default=(0.5, 0.9))
    args = parser.parse_args()
    for key, value in run(args.sizes, tuple(args.venues), args.shares).items():
        print(f"{key:<60} {value}")
