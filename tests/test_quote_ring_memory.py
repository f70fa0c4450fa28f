"""The quotes ring costs ``QUOTE_BYTES`` (62 B) × its capacity, as the README says, and
not one byte more however many quotes pass through it: filled ten times over in a child
process, its peak RSS grows by the formula and stops growing once the ring is full."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from rtkit.books.quote_ring import QUOTE_BYTES

ROOT = Path(__file__).resolve().parents[1]
MIB = 1024 * 1024
CAPACITY = 100_000
#: the batch of rows being appended, the symbols' codes, numpy's first use
SLACK = 3 * MIB

# CAPACITY quotes, then 10 × CAPACITY in all, 1,000 rows a batch as the receive thread
# hands them over; the peak after the first fill and after the last
FILL = textwrap.dedent("""
    import json, sys
    from rtkit.books.quote_ring import QuoteRing
    from tests.conftest import peak_rss_kib

    capacity = int(sys.argv[1])
    ring = QuoteRing(1)
    ring.append([("bybit", "BTC-USDT", 1, 1, 1.0, 1.0, 2.0, 1.0, 1)])  # numpy warmed up
    before = peak_rss_kib()
    ring, n, peaks = QuoteRing(capacity), 0, []
    for upto in (2 * capacity, 10 * capacity):
        while n < upto:
            ring.append([("bybit", f"S{i % 7}-USDT", n + i, n + i + 5, 100.0 + i % 13, 1.5,
                          101.0 + i % 11, 2.5, n + i) for i in range(1000)])
            n += 1000
        peaks.append(peak_rss_kib())
    frame = ring.snapshot(last=3)
    print(json.dumps({"before_kib": before, "full_kib": peaks[0], "end_kib": peaks[1],
                      "rows": len(ring), "total": ring.total, "nbytes": ring.nbytes,
                      "last_seq": frame["seq"].tolist()}))
""")


def test_a_quotes_ring_filled_ten_times_over_stays_within_62_bytes_a_quote():
    done = subprocess.run([sys.executable, "-c", FILL, str(CAPACITY)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.splitlines()[-1])
    assert QUOTE_BYTES == 62  # the README's figure
    assert out["rows"] == CAPACITY and out["total"] == 10 * CAPACITY
    assert out["nbytes"] == QUOTE_BYTES * CAPACITY
    last = 10 * CAPACITY
    assert out["last_seq"] == [last - 3, last - 2, last - 1]  # the newest are kept
    grown = (out["end_kib"] - out["before_kib"]) * 1024
    assert grown < QUOTE_BYTES * CAPACITY + SLACK, (
        f"grew {grown / MIB:.1f} MiB for {CAPACITY:,} quotes (62 B each: "
        f"{QUOTE_BYTES * CAPACITY / MIB:.1f} MiB)")
    # the eight fills after the second cost nothing: a ring that kept what it overwrote
    # would take 8 × 62 B × CAPACITY more
    later = (out["end_kib"] - out["full_kib"]) * 1024
    assert later < QUOTE_BYTES * CAPACITY / 8, f"grew {later / MIB:.1f} MiB once full"
