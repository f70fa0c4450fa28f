"""Live ingest over loopback: rtkit's Collector against the loops a user would write.

Every client runs in a fresh process against a feed server in its own process
(pre-encoded frames, so the server is not the bottleneck); each round runs all
clients in a shuffled order, and ratios are taken within a round.
"""

from __future__ import annotations

import json
import random
import statistics
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

PY = sys.executable


@contextmanager
def feed(n: int, rate: float | None = None, cert: str | None = None):
    args = [PY, "-m", "benchmarks.feed", "--n", str(n)]
    if rate:
        args += ["--rate", str(rate)]
    if cert:
        args += ["--cert", cert]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline())
        yield f"{'wss' if cert else 'ws'}://127.0.0.1:{port}/ws"
    finally:
        proc.kill()
        proc.wait(10)


def client(name: str, url: str, n: int) -> dict:
    out = subprocess.run([PY, "-m", "benchmarks.clients", name, url, str(n)], capture_output=True,
                         text=True, timeout=300, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def self_signed_cert(folder: Path) -> str:
    pem = folder / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-keyout", str(pem), "-out", str(pem)],
                   check=True, capture_output=True)
    return str(pem)


def rounds(names: list[str], url_for, n: int, k: int, baseline: str) -> dict:
    rates: dict[str, list[float]] = {name: [] for name in names}
    ratios: dict[str, list[float]] = {name: [] for name in names}
    extra: dict[str, list[dict]] = {name: [] for name in names}
    for _ in range(k):
        order = names[:]
        random.shuffle(order)
        got = {}
        for name in order:
            with url_for() as url:
                got[name] = client(name, url, n)
        for name in names:
            rates[name].append(got[name]["rate"])
            ratios[name].append(got[name]["rate"] / got[baseline]["rate"])
            extra[name].append(got[name])
    return {name: {"median": statistics.median(rates[name]), "min": min(rates[name]),
                   "max": max(rates[name]), f"ratio_vs_{baseline}": statistics.median(ratios[name]),
                   "runs": extra[name]} for name in names}


def run(n: int = 200_000, k: int = 3) -> dict:
    out = {}
    names = ["sink", "websocket_app", "websockets_asyncio", "rtkit_collector"]
    plain = rounds(names, lambda: feed(n), n, k, "websocket_app")
    naive = rounds(["naive", "rtkit_collector"], lambda: feed(20_000), 20_000, k,
                   "naive")
    with tempfile.TemporaryDirectory() as d:
        cert = self_signed_cert(Path(d))
        tls = rounds(["websocket_app", "rtkit_collector"], lambda: feed(n, cert=cert), n, k,
                     "websocket_app")
    with feed(20_000, rate=20_000) as url:
        latency = client("rtkit_latency", url, 20_000)
    r = plain["rtkit_collector"]
    out["ws_server_ceiling_frames_per_s"] = plain["sink"]["median"]
    out["ws_bare_websocket_app_frames_per_s"] = plain["websocket_app"]["median"]
    out["ws_bare_websockets_asyncio_frames_per_s"] = plain["websockets_asyncio"]["median"]
    out["ws_rtkit_frames_per_s"] = r["median"]
    out["ws_rtkit_min_max"] = [r["min"], r["max"]]
    out["ws_rtkit_vs_websocket_app"] = r["ratio_vs_websocket_app"]
    out["ws_rtkit_vs_websockets_asyncio"] = statistics.median(
        a["rate"] / b["rate"] for a, b in zip(r["runs"], plain["websockets_asyncio"]["runs"],
                                                strict=True))
    out["wss_bare_websocket_app_frames_per_s"] = tls["websocket_app"]["median"]
    out["wss_rtkit_frames_per_s"] = tls["rtkit_collector"]["median"]
    out["wss_rtkit_vs_websocket_app"] = tls["rtkit_collector"]["ratio_vs_websocket_app"]
    out["naive_plan_frames_per_s"] = naive["naive"]["median"]
    out["rtkit_vs_naive_plan"] = naive["rtkit_collector"]["ratio_vs_naive"]
    out["latency_20k_p50_us"] = latency["p50_us"]
    out["latency_20k_p99_us"] = latency["p99_us"]
    out["stop_ms"] = statistics.median(x["stop_ms"] for x in r["runs"])
    return out


if __name__ == "__main__":
    print(json.dumps(run(k=1), indent=2))
