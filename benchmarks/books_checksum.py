"""Kraken's book checksum (issue 13 target: ≤ 20 µs per check).

Times :func:`rtkit.books.checksum.kraken_crc32` on the documented v2 example
(10 asks, 10 bids, as the venue's strings: what ``BookView.levels`` gives), and
the OKX legacy checksum on 25 + 25 levels for comparison. Each figure is the
median over repeats of the mean per call in a batch; ``…_p99_us`` is the 99th
percentile of single calls. Run alone: ``python -m benchmarks.books_checksum``.
"""

from __future__ import annotations

import time

from benchmarks.util import median_of
from rtkit.books.checksum import kraken_crc32, okx_crc32

ASKS = [("45285.2", "0.00100000"), ("45286.4", "1.54571953"), ("45286.6", "1.54571109"),
        ("45289.6", "1.54560911"), ("45290.2", "0.15890660"), ("45291.8", "1.54553491"),
        ("45294.7", "0.04454749"), ("45296.1", "0.35380000"), ("45297.5", "0.09945542"),
        ("45299.5", "0.18772827")]
BIDS = [("45283.5", "0.10000000"), ("45283.4", "1.54582015"), ("45282.1", "0.10000000"),
        ("45281.0", "0.10000000"), ("45280.3", "1.54592586"), ("45279.0", "0.07990000"),
        ("45277.6", "0.03310103"), ("45277.5", "0.30000000"), ("45277.3", "1.54602737"),
        ("45276.6", "0.15445238")]
OKX_BIDS = [(f"{60000 - i * 0.1:.1f}", f"{1 + i / 1000:.3f}") for i in range(25)]
OKX_ASKS = [(f"{60000.1 + i * 0.1:.1f}", f"{2 + i / 1000:.3f}") for i in range(25)]
BATCH = 20_000


def _mean_us(fn, *args) -> float:
    start = time.perf_counter_ns()
    for _ in range(BATCH):
        fn(*args)
    return (time.perf_counter_ns() - start) / BATCH / 1000


def _p99_us(fn, *args, n: int = 20_000) -> float:
    clock = time.perf_counter_ns
    samples = []
    for _ in range(n):
        t0 = clock()
        fn(*args)
        samples.append(clock() - t0)
    samples.sort()
    return samples[int(n * 0.99)] / 1000


def run() -> dict:
    assert kraken_crc32(ASKS, BIDS) == 3310070434  # the documented worked example
    return {
        "kraken_checksum_us": median_of(lambda: _mean_us(kraken_crc32, ASKS, BIDS), 5),
        "kraken_checksum_p99_us": _p99_us(kraken_crc32, ASKS, BIDS),
        "okx_checksum_25_us": median_of(lambda: _mean_us(okx_crc32, OKX_BIDS, OKX_ASKS), 5),
    }


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key:<28} {value:8.2f}")
