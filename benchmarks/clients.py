"""Benchmark clients, each run in a fresh process; each prints one JSON line.

``rate`` is (N - 1) / (time of the Nth message - time of the 1st), measured in
the client: the clock starts at the first message, so connecting and subscribing are
not part of the rate. The rtkit clients, which also
persist, report two rates from the same first tick: ``received_rate`` until the
Nth tick is in the ring, and ``stored_rate`` until ``stats["stored"] == N`` (the
data is in SQLite); ``store_lag_s`` is the time between the two. The baselines
store nothing, so they have one ``rate``.
"""

from __future__ import annotations

import json
import os
import ssl
import sys
import tempfile
import threading
import time
from pathlib import Path

SUBSCRIBE = '{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":1}'
BYBIT_SUBSCRIBE = '{"op":"subscribe","args":["publicTrade.BTCUSDT"],"req_id":"1"}'
#: the benchmark's self-signed certificate, trusted (and verified) like a real one
CA = os.environ.get("SSL_CERT_FILE")
SSLOPT = {"ca_certs": CA} if CA else None
#: how often the rtkit clients read ``stats`` while they wait: short, so the stored
#: figure is not rounded up by much, and not so short that polling steals the receive loop
POLL_RECEIVED_S = 0.005
POLL_STORED_S = 0.002
TIMEOUT_S = 120


def wait_for(c, counter: str, n: int, poll_s: float, deadline: float) -> None:
    """Poll ``c.stats[counter]`` until it reaches ``n``; a run that never gets there fails."""
    while (got := c.stats[counter]) < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {got:,} of {n:,} ticks {counter} after {TIMEOUT_S} s: "
                               f"{c.stats}")
        time.sleep(poll_s)


def _cpu_s(pid: int | None) -> float:
    """CPU seconds (user + system) a process has used so far (Linux; 0.0 elsewhere)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def received_and_stored(c, n: int, intervals: int) -> dict:
    """Wait until ``n`` ticks are received, then until they are stored; both rates from
    the first tick's ``received_at`` (``intervals`` ticks counted over each span).

    Beside the rates, which a busy machine lowers, the CPU time per tick from
    ``start()`` until stored, which it hardly changes: of this process (receiving,
    and writing unless the writer is a process) and of the writer process, if any
    (its start-up included)."""
    deadline = time.monotonic() + TIMEOUT_S
    cpu0 = time.process_time()
    wait_for(c, "ticks", n, POLL_RECEIVED_S, deadline)
    wait_for(c, "stored", n, POLL_STORED_S, deadline)
    stored_at = time.time_ns()  # the same clock as received_at
    cpu = time.process_time() - cpu0
    writer_cpu = _cpu_s(getattr(c.sink, "pid", None))
    recv = c.df["received_at"].astype("int64").to_numpy()
    first, last = int(recv[0]), int(recv[n - 1])
    return {"received_rate": intervals / ((last - first) / 1e9),
            "stored_rate": intervals / ((stored_at - first) / 1e9),
            "store_lag_s": (stored_at - last) / 1e9,
            "cpu_us_per_tick": cpu / n * 1e6,
            "writer_process_cpu_us_per_tick": writer_cpu / n * 1e6}


def websocket_app(url: str, n: int) -> dict:
    """websocket-client WebSocketApp.run_forever with default settings, counting."""
    import websocket

    state = {"count": 0, "t0": 0.0, "t1": 0.0}
    done = threading.Event()

    def on_message(app, message):
        state["count"] += 1
        if state["count"] == 1:
            state["t0"] = time.perf_counter()
        elif state["count"] == n:
            state["t1"] = time.perf_counter()
            done.set()
            app.close()

    app = websocket.WebSocketApp(url, on_open=lambda a: a.send(SUBSCRIBE), on_message=on_message)
    t = threading.Thread(target=app.run_forever, kwargs={"sslopt": SSLOPT}, daemon=True)
    t.start()
    done.wait(120)
    return {"rate": (n - 1) / (state["t1"] - state["t0"])}


def websocket_app_json_batches(url: str, n: int) -> dict:
    """WebSocketApp (defaults) parsing batched frames with the stdlib json, counting trades."""
    import json as stdjson

    import websocket

    state = {"count": 0, "t0": 0.0, "t1": 0.0}
    done = threading.Event()

    def on_message(app, message):
        data = stdjson.loads(message).get("data")
        if not isinstance(data, list):
            return
        if state["count"] == 0:
            state["t0"] = time.perf_counter()
        state["count"] += len(data)
        if state["count"] >= n:
            state["t1"] = time.perf_counter()
            done.set()
            app.close()

    app = websocket.WebSocketApp(url, on_open=lambda a: a.send(BYBIT_SUBSCRIBE),
                                 on_message=on_message)
    threading.Thread(target=app.run_forever, kwargs={"sslopt": SSLOPT}, daemon=True).start()
    done.wait(120)
    return {"rate": n / (state["t1"] - state["t0"])}


def websockets_asyncio_json_batches(url: str, n: int) -> dict:
    """websockets' asyncio client parsing batched frames with the stdlib json."""
    import asyncio
    import json as stdjson

    from websockets.asyncio.client import connect

    async def run():
        async with connect(url, compression=None, max_size=None) as ws:
            await ws.send(BYBIT_SUBSCRIBE)
            count, t0 = 0, 0.0
            async for message in ws:
                data = stdjson.loads(message).get("data")
                if not isinstance(data, list):
                    continue
                if count == 0:
                    t0 = time.perf_counter()
                count += len(data)
                if count >= n:
                    return n / (time.perf_counter() - t0)

    return {"rate": asyncio.run(run())}


def rtkit_collector_batches(url: str, n: int) -> dict:
    """The Collector on Bybit-style frames of ~100 trades: ticks/s received and stored."""
    import rtkit

    with tempfile.TemporaryDirectory() as d:
        c = rtkit.collect("bybit", ["BTC-USDT"], url=url, db=Path(d) / "batches.sqlite")
        try:
            out = received_and_stored(c, n, n)  # as the baseline: n ticks from the 1st frame
        finally:
            c.stop()
        stats = c.stats
    return {**out, "stored": stats["stored"], "ticks": stats["ticks"]}


def websockets_asyncio(url: str, n: int) -> dict:
    """websockets' asyncio client, counting."""
    import asyncio

    from websockets.asyncio.client import connect

    async def run():
        context = ssl.create_default_context(cafile=CA) if url.startswith("wss") else None
        async with connect(url, compression=None, max_size=None, ssl=context) as ws:
            await ws.send(SUBSCRIBE)
            count = 0
            async for _ in ws:
                count += 1
                if count == 1:
                    t0 = time.perf_counter()
                elif count == n:
                    return (n - 1) / (time.perf_counter() - t0)

    return {"rate": asyncio.run(run())}


def naive(url: str, n: int) -> dict:
    """The original plan: json.loads, then one SQLite INSERT and commit per message.

    Each message is committed before it is counted, so its one rate is also its
    stored rate."""
    import json as stdjson
    import sqlite3

    import websocket

    with tempfile.TemporaryDirectory() as d:
        conn = sqlite3.connect(Path(d) / "naive.sqlite")
        conn.execute("CREATE TABLE trades (price REAL, volume REAL, timestamp INTEGER)")
        ws = websocket.create_connection(url, sslopt=SSLOPT)
        ws.send(SUBSCRIBE)
        count, t0 = 0, 0.0
        while count < n:
            msg = stdjson.loads(ws.recv())
            if msg.get("e") != "trade":
                continue
            conn.execute("INSERT INTO trades VALUES (?, ?, ?)",
                         (float(msg["p"]), float(msg["q"]), msg["T"]))
            conn.commit()
            count += 1
            if count == 1:
                t0 = time.perf_counter()
        rate = (n - 1) / (time.perf_counter() - t0)
        ws.close()
    return {"rate": rate}


def rtkit_collector(url: str, n: int, writer: str | None = None) -> dict:
    """The full pipeline: Collector with validation, ring and SQLite persistence, with
    the default writer ("auto": a writer process once rows come fast)."""
    import rtkit

    with tempfile.TemporaryDirectory() as d:
        channel = "aggTrade" if "streams=" in url else "trade"
        c = rtkit.collect("binance", ["BTC-USDT"], url=url, db=Path(d) / "bench.sqlite",
                          sslopt=SSLOPT, channel=channel, writer=writer)
        try:
            out = received_and_stored(c, n, n - 1)
        finally:
            c.stop()
        stats = c.stats
    return {**out, "stored": stats["stored"], "ticks": stats["ticks"]}


def rtkit_collector_thread(url: str, n: int) -> dict:
    """The same with ``writer="thread"``: SQLite written in the collector's process."""
    return rtkit_collector(url, n, writer="thread")


def rtkit_collector_process(url: str, n: int) -> dict:
    """The same with ``writer="process"``: SQLite written by a child process."""
    return rtkit_collector(url, n, writer="process")


def rtkit_collector_stop(url: str, n: int, writer: str | None = None) -> dict:
    """``stop()`` called as soon as a burst of ``n`` ticks is received, with most of
    it not yet written: how long it takes to return (it flushes everything)."""
    import rtkit

    with tempfile.TemporaryDirectory() as d:
        c = rtkit.collect("binance", ["BTC-USDT"], url=url, db=Path(d) / "stop.sqlite",
                          sslopt=SSLOPT, writer=writer)
        try:
            wait_for(c, "ticks", n, POLL_RECEIVED_S, time.monotonic() + TIMEOUT_S)
            pending = c.stats["pending"]
        finally:
            t = time.perf_counter()
            c.stop()
            stop_ms = (time.perf_counter() - t) * 1e3
        stats = c.stats
    if stats["stored"] != n:
        raise RuntimeError(f"stop() returned with {stats['stored']:,} of {n:,} ticks stored")
    return {"stop_ms": stop_ms, "pending_at_stop": pending}


def rtkit_collector_process_stop(url: str, n: int) -> dict:
    """The same with ``writer="process"``."""
    return rtkit_collector_stop(url, n, writer="process")


#: where rtkit_latency's steady state begins, after the first tick sent
STEADY_AFTER_NS = 100_000_000


def rtkit_latency(url: str, n: int, writer: str | None = None) -> dict:
    """Send time (stamped by the paced feed) → tick visible in the ring, per frame."""
    import orjson

    import rtkit
    from rtkit.buffer import RingBuffer

    sent: list[int] = []
    visible: list[int] = []
    original = RingBuffer.append

    def append(self, venue, received_at_ns, ticks):
        original(self, venue, received_at_ns, ticks)
        visible.extend([time.time_ns()] * len(ticks))  # one append may carry several frames

    RingBuffer.append = append
    from rtkit.venues.binance import BinanceAdapter

    parse = BinanceAdapter.parse

    def stamped_parse(self, frame, received_at_ns):
        sent.append(orjson.loads(frame).get("E", 0) * 1000)
        return parse(self, frame, received_at_ns)

    BinanceAdapter.parse = stamped_parse
    with tempfile.TemporaryDirectory() as d:
        c = rtkit.collect("binance", ["BTC-USDT"], url=url, db=Path(d) / "lat.sqlite",
                          sslopt=SSLOPT, writer=writer)
        deadline = time.monotonic() + 120
        while c.stats["ticks"] < n and time.monotonic() < deadline:
            time.sleep(0.01)
        c.stop()
    import numpy as np

    sent_ns = np.array(sent[:n])
    lat_us = (np.array(visible[:n]) - sent_ns) / 1e3
    # the p99 past the first 100 ms is the steady one: the start (threads, the writer
    # process's boot with writer="process") shows in the difference; the first 100 ms held
    # most late ticks while the backfill thread imported httpx at the start
    steady = lat_us[sent_ns >= sent_ns[0] + STEADY_AFTER_NS]
    return {"p50_us": float(np.percentile(lat_us, 50)), "p99_us": float(np.percentile(lat_us, 99)),
            "max_us": float(lat_us.max()),
            "p99_after_100ms_us": float(np.percentile(steady, 99))}


def rtkit_latency_process(url: str, n: int) -> dict:
    """The same with ``writer="process"``."""
    return rtkit_latency(url, n, writer="process")


def sink(url: str, n: int) -> dict:
    """Drain the socket without framing: the server's own ceiling."""
    import socket
    from urllib.parse import urlparse

    import websocket

    ws = websocket.create_connection(url, sslopt=SSLOPT)
    ws.send(SUBSCRIBE)
    total = n * 125  # ~125 bytes per frame
    got, t0 = 0, time.perf_counter()
    sock: socket.socket = ws.sock
    while got < total * 0.98:
        chunk = sock.recv(1 << 20)
        if not chunk:
            break
        got += len(chunk)
    elapsed = time.perf_counter() - t0
    ws.shutdown()
    del urlparse
    return {"rate": got / 125 / elapsed}


def cryptofeed_binance(url: str, n: int) -> dict:
    """cryptofeed's Binance trades feed with a callback that only counts.

    Its endpoint is pointed at the local server and its symbol table is filled
    in advance, so it makes no request to the real exchange.
    """
    import asyncio

    from cryptofeed import FeedHandler
    from cryptofeed.connection import WebsocketEndpoint
    from cryptofeed.defines import TRADES
    from cryptofeed.exchanges import Binance
    from cryptofeed.symbols import Symbols

    class LocalBinance(Binance):
        websocket_endpoints = [WebsocketEndpoint(url.split("/stream")[0])]

    Symbols.set(Binance.id, {"BTC-USDT": "BTCUSDT"},
                {"tick_size": {"BTC-USDT": "0.01"}, "instrument_type": {"BTC-USDT": "spot"}})
    state = {"count": 0, "t0": 0.0, "t1": 0.0}

    async def on_trade(trade, receipt_timestamp):
        state["count"] += 1
        if state["count"] == 1:
            state["t0"] = time.perf_counter()
        elif state["count"] == n:
            state["t1"] = time.perf_counter()
            asyncio.get_running_loop().stop()

    handler = FeedHandler(config={"log": {"disabled": True}, "uvloop": False})
    handler.add_feed(LocalBinance(symbols=["BTC-USDT"], channels=[TRADES],
                                  callbacks={TRADES: on_trade}))
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.call_later(120, loop.stop)
    handler.run(start_loop=False)
    loop.run_forever()
    return {"rate": (n - 1) / (state["t1"] - state["t0"])}


CLIENTS = {f.__name__: f for f in (websocket_app, websockets_asyncio, naive, rtkit_collector,
                                   rtkit_collector_stop, rtkit_latency, sink, cryptofeed_binance,
                                   websocket_app_json_batches, websockets_asyncio_json_batches,
                                   rtkit_collector_batches, rtkit_collector_process,
                                   rtkit_collector_process_stop, rtkit_latency_process,
                                   rtkit_collector_thread)}

if __name__ == "__main__":
    name, url, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    print(json.dumps(CLIENTS[name](url, count)))
