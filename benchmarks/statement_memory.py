"""What a writing connection's prepared multi-row INSERTs cost in memory.

``python -m benchmarks.statement_memory [MOST_ROWS] [VARIABLE_LIMIT]`` writes, in a
fresh store, one flush of 8,191 rows each of trades, rejects, quotes and book levels
(so every statement size, MOST_ROWS down to 1, is prepared and cached) and prints how
much the process grew (the rows and SQLite's pages included). Run it in a fresh
process per setting: the figure is the growth of this process's resident memory.
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
from pathlib import Path

T0 = 1_764_000_000_000_000_000
N = 8191


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main(most_rows: int | None = None, limit: int | None = None) -> dict:
    import rtkit.store_insert as store_insert
    from rtkit.kinds import get_kind
    from rtkit.store import TickStore

    if most_rows:
        store_insert.MOST_ROWS = most_rows
    book = get_kind("book")

    def level(i: int) -> tuple:
        return tuple(T0 + i if c.sql == "INTEGER" else 1.0 if c.sql == "REAL" else f"x{i}"
                     for c in book.columns)

    ticks = [("okx", "BTC-USDT", str(i), T0 + i, T0 + i, 1.0, 1.0, "buy") for i in range(N)]
    rejects = [(T0 + i, "okx", "malformed_json", "bad", "{", 1) for i in range(N)]
    quotes = [("okx", "BTC-USDT", T0 + i, T0, 1.0, 1.0, 2.0, 1.0, i) for i in range(N)]
    levels = [level(i) for i in range(N)]
    with tempfile.TemporaryDirectory() as folder:
        store = TickStore(Path(folder) / "t.sqlite")
        if limit:
            store.conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, limit)
        before = rss_kib()
        store.write(ticks, rejects, [], {"quotes": quotes, "book": levels}, refused=[])
        grown = rss_kib() - before
        store.close()
    out = {"most_rows": store_insert.MOST_ROWS,
           "variable_limit": limit or sqlite3.connect(":memory:").getlimit(
               sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER),
           "grown_mib": round(grown / 1024, 1)}
    print(out)
    return out


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    main(*args)
