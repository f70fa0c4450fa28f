"""The local exchange simulator: a WebSocket server on 127.0.0.1 speaking a venue's dialect.

It answers subscribe messages with the venue's acks, streams random-walk trades
for the subscribed symbols (at a rate, or as fast as the socket takes them with
pre-encoded frames), answers pings, stops after ``count`` trades, and injects
faults on request. It runs its own asyncio loop in a daemon thread, so it is
used the same way from a test, a notebook or the command line::

    with Simulator("binance", rate=2_000, count=10_000, seed=7) as sim:
        c = rtkit.collect("binance", ["BTC-USDT"], url=sim.url)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import threading
import time
from dataclasses import dataclass

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from rtkit.sim.dialects import Session, get_dialect
from rtkit.sim.market import Market, SimTrade

log = logging.getLogger("rtkit.sim")

#: trades generated per step when sending as fast as possible
_FAST_STEP = 2_000
#: bytes the server lets queue in its transport before it waits for the client
_HIGH_WATER = 1 << 20


@dataclass
class Faults:
    """Misbehaviour to inject; every field off by default.

    ``drop_every``: abort the TCP connection (no close frame) after this many
    trade frames on a connection. ``close_every``: send a close frame with
    ``close_code`` after this many. ``reject_symbols``: answer subscriptions to
    these (BASE-QUOTE) symbols with the venue's error instead of an ack.
    ``skip_id_every``: every Nth trade takes one trade id more than it should,
    so the collector sees a gap of one.
    """

    drop_every: int | None = None
    close_every: int | None = None
    close_code: int = 1001
    reject_symbols: tuple[str, ...] = ()
    skip_id_every: int | None = None


def _ws_frame(payload: bytes) -> bytes:
    """An unmasked server→client text frame, for the pre-encoded fast path."""
    n = len(payload)
    if n < 126:
        return b"\x81" + bytes((n,)) + payload
    if n < 65536:
        return b"\x81\x7e" + struct.pack("!H", n) + payload
    return b"\x81\x7f" + struct.pack("!Q", n) + payload


class Simulator:
    """A venue simulator bound to 127.0.0.1; a context manager that stops itself."""

    def __init__(
        self,
        venue: str = "binance",
        *,
        port: int = 0,
        rate: float | None = 1_000.0,
        count: int | None = None,
        seed: int | None = None,
        overlap: int = 100,
        faults: Faults | None = None,
        **dialect_options,
    ) -> None:
        if rate is not None and not rate > 0:
            raise ValueError(f"rate must be > 0 trades/s, or None for as fast as possible, "
                             f"not {rate!r}")
        if count is not None and count < 0:
            raise ValueError(f"count must be >= 0, not {count!r}")
        self.venue = venue
        self.dialect = get_dialect(venue, **dialect_options)
        self.host = "127.0.0.1"  # never anything but loopback
        self.port = port
        self.rate = rate
        self.count = count
        self.overlap = overlap
        self.faults = faults or Faults()
        self.market = Market(seed, skip_id_every=self.faults.skip_id_every)
        self.connections = 0
        self.frames_sent = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    # --- lifecycle (caller's thread) ------------------------------------------------
    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}{self.dialect.path}"

    @property
    def trades(self) -> list[SimTrade]:
        """Every trade generated so far, in order."""
        return self.market.trades

    def start(self, timeout_s: float = 10.0) -> Simulator:
        if self._thread is not None:
            return self
        self._thread = threading.Thread(target=self._run, name=f"rtkit-sim-{self.venue}",
                                        daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s) or self._error is not None:
            self.stop()
            raise RuntimeError(f"the simulator did not start: {self._error!r}")
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        if self._loop is not None and self._stopping is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed
                self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def wait_generated(self, n: int | None = None, timeout_s: float = 30.0) -> bool:
        """Wait until ``n`` (default: ``count``) trades were generated."""
        n = self.count if n is None else n
        deadline = time.monotonic() + timeout_s
        while len(self.market.trades) < n:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def run_for(self, duration_s: float | None) -> None:
        """Serve until ``duration_s`` passed (None: until interrupted), then stop."""
        try:
            deadline = None if duration_s is None else time.monotonic() + duration_s
            while self._thread is not None and self._thread.is_alive():
                if deadline is not None and time.monotonic() >= deadline:
                    break
                time.sleep(0.1)
        finally:
            self.stop()

    # --- server (simulator thread) ----------------------------------------------------
    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(self._main())
        except BaseException as exc:  # reported by start()
            self._error = exc
            self._ready.set()
        finally:
            self._loop.close()

    async def _main(self) -> None:
        self._stopping = asyncio.Event()
        async with serve(self._handle, self.host, self.port, compression=None,
                         ping_interval=None, max_size=None, close_timeout=1) as server:
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._stopping.wait()
            server.close(close_connections=True)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 2.0)

    async def _handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        session = Session(path=ws.request.path if ws.request else "/")
        subscribed = asyncio.Event()
        reader = asyncio.create_task(self._read(ws, session, subscribed))
        try:
            for frame in self.dialect.greeting(session):
                await ws.send(frame)
            if session.symbols:  # a feed that streams without being asked
                subscribed.set()
            await self._stream(ws, session, subscribed)
        except ConnectionClosed:
            pass
        finally:
            reader.cancel()

    async def _read(self, ws: ServerConnection, session: Session, subscribed: asyncio.Event):
        with contextlib.suppress(ConnectionClosed):
            async for message in ws:
                if not isinstance(message, str):
                    continue
                rejected = self.faults.reject_symbols
                before = list(session.symbols)
                replies = self.dialect.on_message(message, session)
                refused = [s for s in session.symbols if s in rejected and s not in before]
                if refused:
                    session.symbols[:] = [s for s in session.symbols if s not in refused]
                    replies = [self.dialect.subscription_error(s) for s in refused]
                for reply in replies:
                    await ws.send(reply)
                if session.symbols:
                    subscribed.set()

    async def _stream(self, ws: ServerConnection, session: Session, subscribed: asyncio.Event):
        waits = [asyncio.ensure_future(e.wait()) for e in (subscribed, self._stopping)]
        waits.append(asyncio.ensure_future(ws.wait_closed()))
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for w in waits:
            w.cancel()
        if not subscribed.is_set():
            return
        market, dialect = self.market, self.dialect
        replay = [t for t in market.trades[-self.overlap:] if t.symbol in session.symbols]
        if replay and self.overlap:
            await self._send(ws, dialect.encode_overlap(replay))
        sent_here = 0
        next_beat = time.monotonic() + (dialect.heartbeat_interval_s or 0)
        start, generated_here = time.monotonic(), 0
        while not self._stopping.is_set():
            if dialect.heartbeat_interval_s and time.monotonic() >= next_beat:
                beat = dialect.heartbeat(session)
                if beat:
                    await ws.send(beat)
                next_beat = time.monotonic() + dialect.heartbeat_interval_s
            remaining = None if self.count is None else self.count - len(market.trades)
            if remaining is not None and remaining <= 0:
                await asyncio.sleep(0.02)
                continue
            if self.rate is None:
                n = _FAST_STEP
            else:
                n = int((time.monotonic() - start) * self.rate) - generated_here
                if n <= 0:
                    await asyncio.sleep(0.002)
                    continue
            if remaining is not None:
                n = min(n, remaining)
            trades = market.trades_for(session.symbols, n)
            generated_here += n
            frames = dialect.encode(trades)
            sent_here = await self._send(ws, frames, sent_here)
            if sent_here < 0:
                return

    async def _send(self, ws: ServerConnection, frames: list[str], sent_here: int = 0) -> int:
        """Send frames, applying faults; returns frames sent on this connection, -1 if cut."""
        faults = self.faults
        if self.rate is None and not (faults.drop_every or faults.close_every):
            blob = b"".join(_ws_frame(f.encode()) for f in frames)
            ws.transport.write(blob)
            self.frames_sent += len(frames)
            while ws.transport.get_write_buffer_size() > _HIGH_WATER:
                if ws.transport.is_closing():
                    raise ConnectionClosed(None, None)
                await asyncio.sleep(0.001)
            return sent_here + len(frames)
        for frame in frames:
            await ws.send(frame)
            self.frames_sent += 1
            sent_here += 1
            if faults.drop_every and sent_here % faults.drop_every == 0:
                ws.transport.abort()
                return -1
            if faults.close_every and sent_here % faults.close_every == 0:
                await ws.close(faults.close_code, "simulated close")
                return -1
        return sent_here
