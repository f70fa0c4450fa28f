"""Live ingest over loopback: rtkit's Collector against the loops a user would write.

Every client runs in a fresh process against a feed server in its own process
(pre-encoded frames, so the server is not the bottleneck); each round runs all
clients in a shuffled order, and ratios are taken within a round. Every rtkit
row has two figures, until received and until stored; the ratios against the
baselines use the stored one (``*_rtkit_received_vs_*`` keep the received one).
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

PY = sys.executable


@contextmanager
def feed(n: int, rate: float | None = None, cert: str | None = None, venue: str = "binance",
         batch: int = 1, path: str = "/ws"):
    args = [PY, "-m", "benchmarks.feed", "--n", str(n), "--venue", venue, "--batch", str(batch)]
    if rate:
        args += ["--rate", str(rate)]
    if cert:
        args += ["--cert", cert]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline())
        yield f"{'wss' if cert else 'ws'}://127.0.0.1:{port}{path}"
    finally:
        proc.kill()
        proc.wait(10)


def client(name: str, url: str, n: int, cert: str | None = None) -> dict:
    env = dict(os.environ, SSL_CERT_FILE=cert) if cert else None
    out = subprocess.run([PY, "-m", "benchmarks.clients", name, url, str(n)], capture_output=True,
                         text=True, timeout=300, env=env)
    if out.returncode:
        raise RuntimeError(f"benchmark client {name} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def self_signed_cert(folder: Path) -> str:
    pem = folder / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(pem), "-out", str(pem)],
                   check=True, capture_output=True)
    return str(pem)


def rate(run: dict, figure: str = "stored") -> float:
    """A run's rate for ``figure`` (``received`` or ``stored``). rtkit's clients report
    both; a baseline has one ``rate`` for both (it stores nothing, or, the naive plan,
    commits each message before counting it)."""
    return run.get(f"{figure}_rate", run.get("rate"))


def paired_ratio(a_runs: list[dict], b_runs: list[dict], figure: str = "stored") -> float:
    """Median, over rounds, of one client's rate over another's in the same round."""
    return statistics.median(rate(a, figure) / rate(b, figure)
                             for a, b in zip(a_runs, b_runs, strict=True))


def rounds(names: list[str], url_for, n: int, k: int, baseline: str,
           cert: str | None = None) -> dict:
    """``k`` rounds of every client in a shuffled order; per figure, medians, min-max,
    and each client's median ratio to ``baseline`` within the same round."""
    runs: dict[str, list[dict]] = {name: [] for name in names}
    for _ in range(k):
        order = names[:]
        random.shuffle(order)
        for name in order:
            with url_for() as url:
                runs[name].append(client(name, url, n, cert))
    out = {}
    for name in names:
        out[name] = {"runs": runs[name]}
        for figure in ("received", "stored"):
            rates = [rate(r, figure) for r in runs[name]]
            out[name][figure] = {"median": statistics.median(rates), "min": min(rates),
                                 "max": max(rates),
                                 "ratio": paired_ratio(runs[name], runs[baseline], figure)}
        lags = [r["store_lag_s"] * 1e3 for r in runs[name] if "store_lag_s" in r]
        if lags:
            out[name]["store_lag_ms"] = {"median": statistics.median(lags), "min": min(lags),
                                         "max": max(lags)}
    return out


def _add(out: dict, prefix: str, result: dict, unit: str = "frames_per_s") -> None:
    """A baseline's one rate; for rtkit, the received and stored rates and the lag."""
    if "store_lag_ms" not in result:
        out[f"{prefix}_{unit}"] = result["stored"]["median"]
        out[f"{prefix}_min_max"] = [round(result["stored"]["min"]), round(result["stored"]["max"])]
        return
    for figure in ("received", "stored"):
        out[f"{prefix}_{figure}_{unit}"] = result[figure]["median"]
        out[f"{prefix}_{figure}_min_max"] = [round(result[figure]["min"]),
                                             round(result[figure]["max"])]
    lag = result["store_lag_ms"]
    out[f"{prefix}_store_lag_ms"] = lag["median"]
    out[f"{prefix}_store_lag_min_max"] = [round(lag["min"]), round(lag["max"])]
    # CPU per tick, which a busy machine hardly changes: the collector's process, and
    # its writer process (start-up included) when it has one
    for key in ("cpu_us_per_tick", "writer_process_cpu_us_per_tick"):
        values = [r[key] for r in result["runs"] if r.get(key)]
        if values:
            out[f"{prefix}_{key}"] = statistics.median(values)


def _ratios(out: dict, name: str, a: dict, b: dict) -> None:
    """``name`` is rtkit stored / baseline (what the README quotes); the same with
    rtkit's received rate is kept as ``name`` with ``rtkit`` → ``rtkit_received``."""
    out[name] = paired_ratio(a["runs"], b["runs"], "stored")
    out[name.replace("rtkit", "rtkit_received", 1)] = paired_ratio(a["runs"], b["runs"],
                                                                   "received")


def run(n: int = 200_000, k: int = 3) -> dict:
    out: dict = {}
    plain = rounds(["sink", "websocket_app", "websockets_asyncio", "rtkit_collector",
                    "rtkit_collector_thread", "rtkit_collector_process"], lambda: feed(n), n, k,
                   "websocket_app")
    out["ws_feed_server_ceiling_frames_per_s"] = plain["sink"]["stored"]["median"]
    for name in ("websocket_app", "websockets_asyncio", "rtkit_collector",
                 "rtkit_collector_thread", "rtkit_collector_process"):
        _add(out, f"ws_{name}", plain[name])
    _ratios(out, "ws_rtkit_vs_websocket_app", plain["rtkit_collector"], plain["websocket_app"])
    _ratios(out, "ws_rtkit_vs_websockets_asyncio", plain["rtkit_collector"],
            plain["websockets_asyncio"])
    # writer="thread" / "process": SQLite always in this process / always in a child
    _ratios(out, "ws_rtkit_thread_vs_websocket_app", plain["rtkit_collector_thread"],
            plain["websocket_app"])
    _ratios(out, "ws_rtkit_process_vs_websocket_app", plain["rtkit_collector_process"],
            plain["websocket_app"])
    for suffix, name in (("", "rtkit_collector_stop"),
                         ("_process", "rtkit_collector_process_stop")):
        stops = []
        for _ in range(k):
            with feed(n) as url:
                stops.append(client(name, url, n)["stop_ms"])
        out[f"stop{suffix}_ms"] = statistics.median(stops)

    with tempfile.TemporaryDirectory() as d:
        cert = self_signed_cert(Path(d))
        path = "/stream?streams=btcusdt@aggTrade"
        tls = rounds(["websocket_app", "cryptofeed_binance", "rtkit_collector",
                      "rtkit_collector_thread", "rtkit_collector_process"],
                     lambda: feed(n, cert=cert, path=path), n, k, "cryptofeed_binance", cert)
    for name in ("websocket_app", "cryptofeed_binance", "rtkit_collector",
                 "rtkit_collector_thread", "rtkit_collector_process"):
        _add(out, f"wss_{name}", tls[name])
    _ratios(out, "wss_rtkit_vs_cryptofeed", tls["rtkit_collector"], tls["cryptofeed_binance"])
    _ratios(out, "wss_rtkit_vs_websocket_app", tls["rtkit_collector"], tls["websocket_app"])
    _ratios(out, "wss_rtkit_thread_vs_cryptofeed", tls["rtkit_collector_thread"],
            tls["cryptofeed_binance"])
    _ratios(out, "wss_rtkit_process_vs_cryptofeed", tls["rtkit_collector_process"],
            tls["cryptofeed_binance"])

    small = 20_000  # the naive loop commits per message: keep its run short
    naive = rounds(["naive", "rtkit_collector"], lambda: feed(small), small, k, "naive")
    _add(out, "naive_plan", naive["naive"])
    _ratios(out, "rtkit_vs_naive_plan", naive["rtkit_collector"], naive["naive"])

    batched = rounds(["websocket_app_json_batches", "websockets_asyncio_json_batches",
                      "rtkit_collector_batches"],
                     lambda: feed(n, venue="bybit", batch=100, path="/v5/public/spot"), n, k,
                     "websocket_app_json_batches")
    for name in batched:
        _add(out, f"batched_{name}", batched[name], "ticks_per_s")
    _ratios(out, "batched_rtkit_vs_websocket_app_json", batched["rtkit_collector_batches"],
            batched["websocket_app_json_batches"])

    for suffix, name in (("", "rtkit_latency"), ("_process", "rtkit_latency_process")):
        with feed(small, rate=20_000) as url:
            latency = client(name, url, small)
        out[f"latency{suffix}_20k_p50_us"] = latency["p50_us"]
        out[f"latency{suffix}_20k_p99_us"] = latency["p99_us"]
        out[f"latency{suffix}_20k_p99_after_100ms_us"] = latency["p99_after_100ms_us"]
    return out


if __name__ == "__main__":
    print(json.dumps(run(k=1), indent=2))
