"""A feed server for the benchmarks, run in its own process: pre-encoded Binance frames.

On each connection it waits for the client's first message (the subscribe),
then writes every frame as fast as the socket takes them, so the server is
never what limits a client (its own rate is measured with a draining sink).
While the socket is full it waits on flow control: it used to poll with
``sleep(0)``, which kept one of the two cores of the benchmark machine busy
(1.27 s of CPU in a 1.6 s run), as a remote venue's server never is — and took
it from the clients that have a second thread to run, rtkit's writer.
With ``--rate`` it paces frames instead and stamps each with its send time
(``E``, in microseconds) so a client can measure latency.
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import time

from websockets.asyncio.server import serve

from rtkit.sim.dialects import get_dialect
from rtkit.sim.market import Market
from rtkit.sim.sending import ws_frame

CHUNK = 1 << 18


def frames(n: int, seed: int = 1, combined: bool = False, venue: str = "binance",
           batch: int = 1) -> list[bytes]:
    """``n`` trades as frames of ``batch`` trades in ``venue``'s dialect; for
    Binance optionally combined-stream ``aggTrade`` frames (what cryptofeed's
    Binance feed reads)."""
    market = Market(seed)
    trades = [market.trade("BTC-USDT", 1_764_000_000_000_000_000 + i * 1_000_000)
              for i in range(n)]
    dialect = get_dialect(venue)
    encoded = [f.encode() for i in range(0, n, batch)
               for f in dialect.encode(trades[i : i + batch])]
    if not combined:
        return encoded
    return [b'{"stream":"btcusdt@aggTrade","data":' + f.replace(b'"e":"trade"', b'"e":"aggTrade"')
            .replace(b'"t":', b'"a":') + b"}" for f in encoded]


async def main(port: int, n: int, rate: float | None, certfile: str | None, venue: str,
               batch: int) -> None:
    plain = frames(n, venue=venue, batch=batch)
    combined = frames(n, combined=True) if venue == "binance" else plain
    blobs = {False: b"".join(ws_frame(p) for p in plain),
             True: b"".join(ws_frame(p) for p in combined)}

    async def handler(ws):
        is_combined = "streams=" in (ws.request.path if ws.request else "")
        if not is_combined:  # a combined-stream URL subscribes by itself
            await ws.recv()
        payloads, blob = (combined if is_combined else plain), blobs[is_combined]
        transport = ws.transport
        if rate is None:
            for i in range(0, len(blob), CHUNK):
                transport.write(blob[i : i + CHUNK])
                await ws.drain()  # flow control: waits without spinning a core
        else:
            # paced: every millisecond, the frames that are due, each stamped with its
            # send time; sleeping between ticks keeps this process off the client's cores
            start, sent = time.perf_counter(), 0
            while sent < len(payloads):
                due = min(len(payloads), int((time.perf_counter() - start) * rate) + 1)
                for p in payloads[sent:due]:
                    stamp = b'"E":%d,"X":' % (time.time_ns() // 1000)
                    transport.write(ws_frame(p.replace(b'"E":', stamp, 1)))
                sent = due
                await asyncio.sleep(0.001)
        await ws.wait_closed()

    context = None
    if certfile:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certfile)
    async with serve(handler, "127.0.0.1", port, compression=None, ping_interval=None,
                     max_size=None, ssl=context, write_limit=4 * CHUNK) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.sleep(600)  # bounded: the benchmark kills it long before


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--n", type=int, default=200_000)
    p.add_argument("--rate", type=float)
    p.add_argument("--cert")
    p.add_argument("--venue", default="binance")
    p.add_argument("--batch", type=int, default=1, help="trades per frame")
    a = p.parse_args()
    asyncio.run(main(a.port, a.n, a.rate, a.cert, a.venue, a.batch))
