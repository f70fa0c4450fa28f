"""The ingest rows of ``make bench`` for the writers only, paired in the same rounds.

``python -m benchmarks.writer_ab [N] [ROUNDS] [ws|wss ...]``: each round runs the
baseline and rtkit with the default writer ("auto"), ``writer="thread"`` and
``writer="process"`` (each client in
a fresh process, shuffled) and prints, per client, the medians until received and
until stored, the ratios to the baseline within the same round, the lag, and the
CPU time per tick of the collector's process and of its writer process — the
figure a machine shared with other work changes least.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
from pathlib import Path

from benchmarks import live

CLIENTS = {"ws": ["websocket_app", "rtkit_collector", "rtkit_collector_thread",
                  "rtkit_collector_process"],
           "wss": ["websocket_app", "cryptofeed_binance", "rtkit_collector",
                   "rtkit_collector_thread", "rtkit_collector_process"]}
BASELINE = {"ws": "websocket_app", "wss": "cryptofeed_binance"}


def summary(result: dict) -> dict:
    out = {f: round(result[f]["median"]) for f in ("received", "stored")}
    out.update({f"{f}_ratio": round(result[f]["ratio"], 2) for f in ("received", "stored")})
    if "store_lag_ms" in result:
        out["store_lag_ms"] = round(result["store_lag_ms"]["median"])
    for key in ("cpu_us_per_tick", "writer_process_cpu_us_per_tick"):
        values = [r[key] for r in result["runs"] if r.get(key)]
        if values:
            out[key] = round(statistics.median(values), 2)
    out["stored_each_round"] = [round(live.rate(r)) for r in result["runs"]]
    return out


def main(n: int = 200_000, k: int = 3, schemes: tuple[str, ...] = ("ws", "wss")) -> dict:
    out = {}
    for scheme in schemes:
        if scheme == "ws":
            results = live.rounds(CLIENTS[scheme], lambda: live.feed(n), n, k, BASELINE[scheme])
        else:
            with tempfile.TemporaryDirectory() as d:
                cert = live.self_signed_cert(Path(d))
                path = "/stream?streams=btcusdt@aggTrade"
                results = live.rounds(CLIENTS[scheme],
                                      lambda: live.feed(n, cert=cert, path=path),  # noqa: B023
                                      n, k, BASELINE[scheme], cert)
        for name, result in results.items():
            out[f"{scheme} {name}"] = summary(result)
            print(f"{scheme} {name}", json.dumps(out[f"{scheme} {name}"]), flush=True)
    return out


if __name__ == "__main__":
    args = sys.argv[1:]
    main(int(args[0]) if args else 200_000, int(args[1]) if len(args) > 1 else 3,
         tuple(args[2:]) or ("ws", "wss"))
