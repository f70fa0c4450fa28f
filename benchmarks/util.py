"""Helpers for the benchmarks: medians of repeated runs."""

from __future__ import annotations

import statistics


def median_of(fn, runs: int) -> float:
    return statistics.median(fn() for _ in range(runs))
