"""Run every benchmark, print a table, write data/bench.json."""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

from benchmarks import books, foundation, lake, live, rest, soak, writer_holds

TARGETS = {
    # issue 17: the SQLite writer in a process of its own (writer="process"), same rounds
    "ws_rtkit_process_vs_websocket_app": (">=", 2.0),
    "wss_rtkit_process_vs_cryptofeed": (">=", 1.5),
    "stop_process_ms": ("<=", 1000),
    "latency_process_20k_p99_us": ("<=", 2000),
    # issue 17: rtkit until stored (on disk) against baselines that store nothing
    "ws_rtkit_vs_websocket_app": (">=", 2.0),
    "wss_rtkit_vs_cryptofeed": (">=", 1.5),
    "rtkit_vs_naive_plan": (">=", 20.0),
    "batched_rtkit_collector_batches_received_ticks_per_s": (">=", 300_000),
    "latency_20k_p99_us": ("<=", 2000),
    "stop_ms": ("<=", 1000),
    "snapshot_100k_ms": ("<=", 2.0),
    "snapshot_1000k_ms": ("<=", 6.0),
    "snapshot_100k_reused_ms": ("<=", 2.0),
    "snapshot_1000k_reused_ms": ("<=", 6.0),
    "store_ratio": (">=", 0.7),
    # issue 16: a million stored ticks back as a DataFrame "well under a second"
    "ticks_read_1000k_s": ("<=", 1.0),
    "ring_bytes_per_tick": ("<=", 48),
    "soak_frames_unaccounted": ("<=", 0),
    "soak_rss_growth_second_half_mib": ("<=", 8),
    # issue 13: start-up of 200 Binance USD-M books within half the REST budget
    "rest_200_usdm_depth100_429s": ("<=", 0),
    "rest_200_usdm_depth100_peak_budget_share": ("<=", 0.5),
    "rest_200_usdm_depth1000_429s": ("<=", 0),
    "rest_200_usdm_depth1000_peak_budget_share": ("<=", 0.5),
    # issue 13: order books (benchmarks/books.py)
    "book_delta_20_levels_p99_us": ("<=", 30),
    "book_frame_depth25_us": ("<=", 200),
    "book_messages_per_s_stored": (">=", 20_000),
    "book_pipeline_messages": (">=", 1_000_000),
    "book_clean_false_desyncs": ("<=", 0),
    "book_clean_final_books_equal": (">=", 1),
    # issue 15: the Parquet lake (benchmarks/lake.py), against SQLite in the same run
    "lake_append_trades_per_s": (">=", 1_000_000),
    "ws_rtkit_lake_vs_websocket_app": (">=", 2.0),
    "duckdb_vwap_1day_s": ("<=", 1.5),
    "lake_bytes_per_trade": ("<=", 12),
    # issue 13: Kraken v2 and v1 books, every update's checksum checked (benchmarks/books.py)
    "book_kraken_clean_messages_checksummed": (">=", 1_000_000),
    "book_kraken_clean_false_desyncs": ("<=", 0),
    "book_kraken_clean_final_books_equal": (">=", 1),
    "book_kraken_v1_clean_messages_checksummed": (">=", 1_000_000),
    "book_kraken_v1_clean_false_desyncs": ("<=", 0),
    "book_kraken_v1_clean_final_books_equal": (">=", 1),
    # lost updates the top-10 checksum can see, missed (benchmarks/books_kraken.py)
    "kraken_kraken_depth10_missed": ("<=", 0),
    "kraken_kraken_depth25_missed": ("<=", 0),
    "kraken_kraken_v1_depth10_missed": ("<=", 0),
    "kraken_kraken_v1_depth25_missed": ("<=", 0),
    # issue 13: the venues without proof, audited every second under a fast-moving book
    "book_coinbase_exchange_clean_messages": (">=", 1_000_000),
    "book_coinbase_exchange_clean_false_desyncs": ("<=", 0),
    "book_coinbase_exchange_clean_final_books_equal": (">=", 1),
    "book_bitstamp_clean_messages": (">=", 1_000_000),
    "book_bitstamp_clean_false_desyncs": ("<=", 0),
    "book_bitstamp_clean_final_books_equal": (">=", 1),
    "book_okx_clean_messages": (">=", 1_000_000),
    "book_okx_clean_false_desyncs": ("<=", 0),
    "book_okx_clean_final_books_equal": (">=", 1),
    "book_coinbase_clean_messages": (">=", 1_000_000),
    "book_coinbase_clean_false_desyncs": ("<=", 0),
    "book_coinbase_clean_final_books_equal": (">=", 1),
}


def _print(results: dict) -> None:
    for key, value in results.items():
        if isinstance(value, list):
            print(f"{key:<53} {value[0]:>14,} – {value[1]:,}")
            continue
        target = TARGETS.get(key)
        mark = ""
        if target:
            op, bound = target
            ok = value <= bound if op == "<=" else value >= bound
            mark = f"{op} {bound:,}  {'ok' if ok else 'MISSED'}"
        print(f"{key:<53} {value:>14,.2f}  {mark}", flush=True)


def main() -> int:
    """Each part's figures are printed and saved as soon as it ends, so a part
    that fails later loses nothing measured before it."""
    started = time.time()
    results: dict = {}
    failed = []
    out = Path("data") / "bench.json"
    out.parent.mkdir(exist_ok=True)
    print(f"{'figure':<53} {'value':>14}  target")
    for module in (foundation, live, writer_holds, soak, rest, books, lake):
        print(f"running {module.__name__} …", file=sys.stderr, flush=True)
        try:
            part = module.run()
        except Exception as exc:  # report it, keep the other parts' figures
            failed.append(f"{module.__name__}: {type(exc).__name__}: {exc}")
            print(f"{module.__name__} FAILED: {exc!r}", file=sys.stderr, flush=True)
            continue
        _print(part)
        results.update(part)
        out.write_text(json.dumps({"results": results, "failed": failed,
                                   "python": platform.python_version(),
                                   "seconds": round(time.time() - started, 1)}, indent=2))
    print(f"\nwritten to {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
