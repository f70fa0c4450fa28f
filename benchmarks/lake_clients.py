"""The lake's live-ingest client, run in a fresh process like ``benchmarks.clients``.

``rtkit_collector_lake``: the Collector persisting to the Parquet lake alone (its
writer's one sink is the lake, no SQLite): received and stored rates as
``benchmarks.clients.rtkit_collector`` reports them, and the lake's bytes per trade
as the live sink leaves them (one file per flush, before compaction).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from benchmarks.clients import SSLOPT, received_and_stored


def rtkit_collector_lake(url: str, n: int) -> dict:
    import rtkit

    with tempfile.TemporaryDirectory() as d:
        lake = Path(d) / "lake"
        c = rtkit.Collector("binance", ["BTC-USDT"], url=url, db=Path(d) / "unused.sqlite",
                            lake=lake, sslopt=SSLOPT)
        c.writer.sink = c.lake  # the lake is the only sink: no SQLite write at all
        c.start()
        try:
            out = received_and_stored(c, n, n - 1)
        finally:
            c.stop()
        stats = c.stats
        files = list(lake.glob("trades/**/*.parquet"))
        size = sum(f.stat().st_size for f in files)
    return {**out, "stored": stats["stored"], "ticks": stats["ticks"], "files": len(files),
            "bytes_per_trade": size / max(1, stats["stored"])}


CLIENTS = {"rtkit_collector_lake": rtkit_collector_lake}

if __name__ == "__main__":
    name, url, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    print(json.dumps(CLIENTS[name](url, count)))
