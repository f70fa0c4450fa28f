"""An outside review's attacks on the gap ledger: a file with many pending gaps (a long
run without backfill, then one with it) costs a claim no more memory than one gap."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CHILD = """
import sqlite3, sys
from tests.conftest import peak_rss_kib
from rtkit.gaps import GapLedger
from rtkit.store import TickStore

db = sys.argv[1]
with TickStore(db) as store:
    pass
conn = sqlite3.connect(db)
with conn:
    conn.executemany(
        "INSERT INTO gaps (venue, symbol, first_missing, last_missing, missing, seen_at, kind, "
        "status) VALUES ('binance', 'BTC-USDT', ?, ?, 1, ?, 'ids', 'pending')",
        ((str(i), str(i), 10**18 + i) for i in range(2, 800_000, 2)))
base = peak_rss_kib()
ledger = GapLedger(conn)
claimed = [ledger.claim("binance", now_ns=2 * 10**18).id for _ in range(3)]
print(claimed == sorted(set(claimed)), (peak_rss_kib() - base) // 1024)
"""


def test_a_claim_among_many_pending_gaps_holds_one_gap(tmp_path):
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "g.sqlite")], cwd=root,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    distinct, grown_mib = result.stdout.split()
    assert distinct == "True"
    assert int(grown_mib) < 20, f"a claim among 400,000 pending gaps grew {grown_mib} MiB"
