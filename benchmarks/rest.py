"""Start-up of 200 Binance USD-M books against the simulator's REST side (issue 13):
time, peak budget use, HTTP 429s.

Depth 100 (weight 5; 1,000 weight in all) fits in half the venue's 2,400 a minute:
the start-up is bound by HTTP alone, measured in real time. Depth 1,000 (weight 20;
4,000 in all) needs four of the budget's windows (1,200 each): measured with the
simulator's and the budget's window compressed from 60 s to 3 s, and given in
windows (elapsed / window) and in seconds at the venue (windows × 60 s).
``peak_budget_share``: the most the client's budget spent in one window, as a share of
the venue's limit; ``venue_peak_share``: the same as the simulated venue counted it
(on arrival, in fixed windows).
"""

from __future__ import annotations

import time

from rtkit.rest import Budget, RestClient
from rtkit.sim import Market
from rtkit.sim.rest import SimRest

BOOKS = 200
WORKERS = 8


def _start(limit: int, window_s: float) -> dict:
    symbols = [f"S{i:03d}-USDT" for i in range(BOOKS)]
    with SimRest(venue="binance-futures", market=Market(1), window_s=window_s) as rest:
        budget = Budget.for_venue("binance-futures", window_s=window_s)
        with RestClient("binance-futures", rest.url, budget=budget) as client:
            started = time.perf_counter()
            books = client.depths(symbols, limit=limit, workers=WORKERS)
            elapsed = time.perf_counter() - started
        failed = sum(isinstance(b, Exception) for b in books.values())
        if failed:
            raise RuntimeError(f"{failed} of {BOOKS} snapshots failed")
        return {"elapsed_s": elapsed, "peak_share": budget.peak / budget.limit,
                "venue_peak_share": rest.used_peak / budget.limit,
                "429s": rest.statuses[429], "connections": rest.connections}


def run() -> dict:
    fits = _start(100, 60.0)
    window = 3.0
    spread = _start(1000, window)
    return {
        "rest_200_usdm_depth100_startup_s": round(fits["elapsed_s"], 3),
        "rest_200_usdm_depth100_peak_budget_share": round(fits["peak_share"], 3),
        "rest_200_usdm_depth100_429s": fits["429s"],
        "rest_200_usdm_depth100_connections": fits["connections"],
        "rest_200_usdm_depth1000_startup_windows": round(spread["elapsed_s"] / window, 2),
        "rest_200_usdm_depth1000_startup_venue_s": round(spread["elapsed_s"] / window * 60, 1),
        "rest_200_usdm_depth1000_peak_budget_share": round(spread["peak_share"], 3),
        "rest_200_usdm_depth1000_venue_peak_share": round(spread["venue_peak_share"], 3),
        "rest_200_usdm_depth1000_429s": spread["429s"],
    }


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key:<48} {value}")
