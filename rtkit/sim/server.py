"""The local exchange simulator: a WebSocket server on 127.0.0.1 speaking a venue's dialect.

It answers subscribe messages with the venue's acks, streams random-walk trades
for the subscribed symbols (at a rate, or as fast as the socket takes them with
pre-encoded frames), answers pings, stops after ``count`` trades, and injects
faults on request. It runs its own asyncio loop in a daemon thread, so it is
used the same way from a test, a notebook or the command line::

    with Simulator("binance", rate=2_000, count=10_000, seed=7) as sim:
        c = rtkit.collect("binance", ["BTC-USDT"], url=sim.url)

It counts what it sent by category (``sent``), so a test can hold a
collector's counters against it category by category.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass, field, fields
from http import HTTPStatus

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from rtkit.sim.dialects import Dialect, Session, get_dialect
from rtkit.sim.hostile import HostileFrame, hostile_frames
from rtkit.sim.market import CommonFactor, Market, SimTrade

log = logging.getLogger("rtkit.sim")

#: trades generated per step when sending as fast as possible
_FAST_STEP = 2_000
#: most trades generated per step at a rate: a fault that cuts a step short cuts off
#: at most this many (fewer than the default overlap re-sends)
_RATE_STEP = 50
#: bytes the server lets queue in its transport before it waits for the client
_HIGH_WATER = 1 << 20
#: longest wait for the transport to empty before an abrupt drop
_DRAIN_TIMEOUT_S = 1.0


def _fault(default, help: str, kind: type | None = int):
    """A Faults field; ``kind`` is its command-line type (None: not on the command line)."""
    return field(default=default, metadata={"help": help, "kind": kind})


@dataclass
class Faults:
    """Misbehaviour to inject; every field off by default.

    Counts of trade frames are per connection for ``drop_every``,
    ``close_every`` and ``stall_every`` (each connection carries that many),
    and over the whole run for the others. Frames re-sent on a (re)subscribe
    (the ``overlap``) are sent clean. ``rtkit sim`` has a flag per field.
    """

    drop_every: int | None = _fault(
        None, "abort the TCP connection (no close frame) after this many trade frames")
    close_every: int | None = _fault(
        None, "send a close frame with close_code after this many trade frames")
    close_code: int = _fault(1001, "the code of those close frames")
    stall_every: int | None = _fault(
        None, "after this many trade frames, send nothing more but keep the socket open")
    refuse_for_s: float = _fault(
        0.0, "answer every connection attempt with HTTP 503 for this many seconds", float)
    reject_symbols: tuple[str, ...] = _fault(
        (), "answer subscriptions to these BASE-QUOTE symbols with the venue's error", tuple)
    ignore_pings: bool = _fault(
        False, "leave unanswered every client message that subscribes nothing new "
        "(pings, keep-alives)", bool)
    skip_id_every: int | None = _fault(
        None, "every Nth trade takes one id more than it should: a gap of one")
    duplicate_every: int | None = _fault(None, "send every Nth trade frame twice")
    reorder_every: int | None = _fault(
        None, "send every Nth trade frame after the one that follows it")
    bad_frame_every: int | None = _fault(
        None, "after every Nth trade frame, send the next hostile frame (rtkit.sim.hostile)")
    bad_frames: tuple[HostileFrame, ...] | None = _fault(
        None, "the hostile frames to cycle through (default: the venue's list)", None)
    throttle_frames_per_s: float | None = _fault(
        None, "send at most this many trade frames per second, whatever the rate", float)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.metadata["kind"] in (int, float) and value is not None and not value >= 0:
                raise ValueError(f"Faults.{f.name} must be a number >= 0 (or None), not {value!r}")
            if f.name.endswith("_every") and value == 0:
                raise ValueError(f"Faults.{f.name} counts frames: give N >= 1, or None for off")
        self.reject_symbols = tuple(self.reject_symbols)

    @property
    def per_frame(self) -> bool:
        """Whether sending must go frame by frame (no pre-encoded fast path)."""
        return any((self.drop_every, self.close_every, self.stall_every, self.duplicate_every,
                    self.reorder_every, self.bad_frame_every, self.throttle_frames_per_s))


def ws_frame(payload: bytes) -> bytes:
    """An unmasked server→client text frame with exactly these payload bytes."""
    n = len(payload)
    if n < 126:
        return b"\x81" + bytes((n,)) + payload
    if n < 65536:
        return b"\x81\x7e" + struct.pack("!H", n) + payload
    return b"\x81\x7f" + struct.pack("!Q", n) + payload


@dataclass
class Link:
    """One connection's fault state."""

    trade_frames: int = 0
    held: str | None = None  # a frame held back by reorder_every
    next_send: float = 0.0  # throttle clock (monotonic s)


class Simulator:
    """A venue simulator bound to 127.0.0.1; a context manager that stops itself.

    ``sent`` counts frames by category: ``trades`` (live trade frames),
    ``overlap`` (trade frames re-sent on a (re)subscribe), ``duplicates``
    (injected second copies), ``control`` (acks, errors, pongs, heartbeats,
    hostile frames meant to be control messages) and ``bad:<reason>`` (hostile
    frames by the reject reason they must get). ``attempts`` holds the
    monotonic time of every connection attempt, refused ones included.
    ``tls`` (a server ``ssl.SSLContext``) makes it a ``wss://`` endpoint.

    ``common``: a :class:`~rtkit.sim.market.CommonFactor` shared with other
    simulators, so that their prices move together (cross-venue spreads).
    """

    def __init__(
        self,
        venue: str | Dialect = "binance",
        *,
        port: int = 0,
        rate: float | None = 1_000.0,
        count: int | None = None,
        seed: int | None = None,
        overlap: int = 100,
        faults: Faults | None = None,
        common: CommonFactor | None = None,
        tls: ssl.SSLContext | None = None,
        **dialect_options,
    ) -> None:
        if rate is not None and not rate > 0:
            raise ValueError(f"rate must be > 0 trades/s, or None for as fast as possible, "
                             f"not {rate!r}")
        if count is not None and count < 0:
            raise ValueError(f"count must be >= 0, not {count!r}")
        if isinstance(venue, Dialect):  # a dialect outside the registry (rtkit.sim.node)
            self.dialect, venue = venue, venue.venue
        else:
            self.dialect = get_dialect(venue, **dialect_options)
        self.venue = venue
        self.host = "127.0.0.1"  # never anything but loopback
        self.port = port
        self.rate = rate
        self.count = count
        self.overlap = overlap
        self.faults = faults or Faults()
        self.tls = tls
        self._bad_frames: tuple[HostileFrame, ...] = ()
        if self.faults.bad_frame_every:
            self._bad_frames = tuple(self.faults.bad_frames or hostile_frames(venue))
        self.market = Market(seed, skip_id_every=self.faults.skip_id_every, common=common)
        self.connections = 0
        self.refused = 0
        self.pings_ignored = 0
        self.reordered = 0
        self.attempts: list[float] = []
        self.sent: Counter[str] = Counter()
        self._live_frames = 0  # trade frames over the whole run, for the every-N faults
        self._in_hand = 0  # trade frames encoded but not yet sent or cut off
        self._next_bad = 0
        self._refuse_until = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        #: set to end the server; a fresh one each start (an Event binds to its loop on use)
        self._stopping = asyncio.Event()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    # --- lifecycle (caller's thread) ------------------------------------------------
    @property
    def url(self) -> str:
        scheme = "wss" if self.tls else "ws"
        return f"{scheme}://{self.host}:{self.port}{self.dialect.path}"

    @property
    def trades(self) -> list[SimTrade]:
        """Every trade generated so far, in order."""
        return self.market.trades

    @property
    def frames_sent(self) -> int:
        """Every frame sent, all categories."""
        return sum(self.sent.values())

    @property
    def all_sent(self) -> bool:
        """Every one of ``count`` trades was generated and its frame sent (or cut off
        by a fault, to come back in the next connection's overlap)."""
        return self.count is not None and len(self.market.trades) >= self.count and (
            not self._in_hand)

    @property
    def bad_sent(self) -> dict[str, int]:
        """Hostile frames sent, by the reject reason each must get."""
        return {k[4:]: v for k, v in self.sent.items() if k.startswith("bad:")}

    def start(self, timeout_s: float = 10.0) -> Simulator:
        if self._thread is not None:
            return self
        self._refuse_until = time.monotonic() + self.faults.refuse_for_s
        self._thread = threading.Thread(target=self._run, name=f"rtkit-sim-{self.venue}",
                                        daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s) or self._error is not None:
            self.stop()
            raise RuntimeError(f"the simulator did not start: {self._error!r}")
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        if self._loop is not None:
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
        target = self.count if n is None else n
        if target is None:
            raise ValueError("this simulator generates trades without end (count=None): "
                             "say how many to wait for, e.g. wait_generated(1000)")
        deadline = time.monotonic() + timeout_s
        while len(self.market.trades) < target:
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
                         ping_interval=None, max_size=None, close_timeout=1,
                         process_request=self._admit, ssl=self.tls) as server:
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._stopping.wait()
            server.close(close_connections=True)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 2.0)

    def _admit(self, connection: ServerConnection, request):
        """Count the attempt; refuse it with HTTP 503 while ``refuse_for_s`` lasts."""
        now = time.monotonic()
        self.attempts.append(now)
        if now < self._refuse_until:
            self.refused += 1
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE,
                                      "simulated outage, try again later\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        session = Session(path=ws.request.path if ws.request else "/")
        subscribed = asyncio.Event()
        reader = asyncio.create_task(self._read(ws, session, subscribed))
        try:
            for frame in self.dialect.greeting(session):
                await self._emit(ws, frame, "control")
            if session.symbols:  # a feed that streams without being asked
                subscribed.set()
            await self._stream(ws, session, subscribed)
        except ConnectionClosed:
            pass
        finally:
            reader.cancel()

    async def _read(self, ws: ServerConnection, session: Session, subscribed: asyncio.Event):
        faults = self.faults
        with contextlib.suppress(ConnectionClosed):
            async for message in ws:
                if not isinstance(message, str):
                    continue
                before = list(session.symbols)
                replies = self.dialect.on_message(message, session)
                added = [s for s in session.symbols if s not in before]
                refused = [s for s in added if s in faults.reject_symbols]
                if refused:
                    session.symbols[:] = [s for s in session.symbols if s not in refused]
                    replies = [self.dialect.subscription_error(s) for s in refused]
                elif faults.ignore_pings and not added:
                    self.pings_ignored += 1
                    replies = []
                for reply in replies:
                    await self._emit(ws, reply, "control")
                if session.symbols:
                    subscribed.set()

    async def _until_closed(self, ws: ServerConnection, *events: asyncio.Event) -> None:
        """Wait until the connection closes, the simulator stops, or one of ``events``."""
        waits: list[asyncio.Future] = [asyncio.ensure_future(e.wait())
                                       for e in (*events, self._stopping)]
        waits.append(asyncio.ensure_future(ws.wait_closed()))
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for w in waits:
            w.cancel()

    async def _stream(self, ws: ServerConnection, session: Session, subscribed: asyncio.Event):
        await self._until_closed(ws, subscribed)
        if not subscribed.is_set():
            return
        market, dialect = self.market, self.dialect
        link = Link()
        streaming: list[str] = []
        next_beat = time.monotonic() + (dialect.heartbeat_interval_s or 0)
        start, generated_here = time.monotonic(), 0
        while not self._stopping.is_set():
            if streaming != session.symbols:
                # Each symbol's overlap goes out before its first live trade, also
                # when a venue subscribes one symbol per message.
                fresh = [s for s in session.symbols if s not in streaming]
                streaming = list(session.symbols)
                replay = [t for t in market.trades[-self.overlap:] if t.symbol in fresh]
                if replay and self.overlap:
                    for frame in dialect.encode_overlap(replay):
                        await self._emit(ws, frame, "overlap")
            if dialect.heartbeat_interval_s and time.monotonic() >= next_beat:
                beat = dialect.heartbeat(session)
                if beat:
                    await self._emit(ws, beat, "control")
                next_beat = time.monotonic() + dialect.heartbeat_interval_s
            remaining = None if self.count is None else self.count - len(market.trades)
            if remaining is not None and remaining <= 0:
                await self._release_held(ws, link)  # no next frame will come to go before it
                await asyncio.sleep(0.02)
                continue
            if self.rate is None:
                n = _FAST_STEP
            else:
                n = min(_RATE_STEP, int((time.monotonic() - start) * self.rate) - generated_here)
                if n <= 0:
                    await asyncio.sleep(0.002)
                    continue
            if remaining is not None:
                n = min(n, remaining)
            trades = market.trades_for(streaming, n)
            generated_here += n
            frames = dialect.encode(trades)
            self._in_hand += len(frames)
            try:
                if not await self._send_trades(ws, frames, link):
                    return
            finally:
                self._in_hand -= len(frames)

    async def _emit(self, ws: ServerConnection, frame: str | bytes, category: str,
                    binary: bool = False) -> None:
        """Send one frame and count it; ``bytes`` go out as a text frame unless ``binary``."""
        if isinstance(frame, str) or binary:
            await ws.send(frame)
        else:  # a text frame with bytes no library would send: invalid UTF-8 and the like
            if ws.transport.is_closing():
                raise ConnectionClosed(None, None)
            ws.transport.write(ws_frame(frame))
        self.sent[category] += 1

    async def _send_trades(self, ws: ServerConnection, frames: list[str], link: Link) -> bool:
        """Send live trade frames with the faults applied; False once the connection
        was cut, closed or stalled by a fault."""
        faults = self.faults
        if not faults.per_frame:
            if self.rate is None:
                await self._send_blob(ws, frames)
            else:
                for frame in frames:
                    await self._emit(ws, frame, "trades")
            return True
        for frame in frames:
            if faults.throttle_frames_per_s:
                await self._throttle(link, faults.throttle_frames_per_s)
            self._live_frames += 1
            link.trade_frames += 1
            if self._due(faults.reorder_every) and link.held is None:
                link.held = frame  # goes out after the next one
                continue
            await self._emit(ws, frame, "trades")
            await self._release_held(ws, link)
            if self._due(faults.duplicate_every):
                await self._emit(ws, frame, "duplicates")
            if self._due(faults.bad_frame_every):
                await self._send_bad_frame(ws)
            if not await self._connection_fault(ws, link):
                return False
        return True

    async def _release_held(self, ws: ServerConnection, link: Link) -> None:
        if link.held is not None:
            held, link.held = link.held, None
            await self._emit(ws, held, "trades")
            self.reordered += 1

    def _due(self, every: int | None) -> bool:
        return bool(every and self._live_frames % every == 0)

    async def _send_bad_frame(self, ws: ServerConnection) -> None:
        frame, reason, binary = self._bad_frames[self._next_bad % len(self._bad_frames)]
        self._next_bad += 1
        await self._emit(ws, frame, f"bad:{reason}" if reason else "control", binary)

    async def _connection_fault(self, ws: ServerConnection, link: Link) -> bool:
        """Drop, close or stall the connection when its frame count says so; False if it did."""
        faults, n = self.faults, link.trade_frames
        if faults.drop_every and n % faults.drop_every == 0:
            await self._drain(ws)  # what was counted as sent reaches the client's socket
            ws.transport.abort()
            return False
        if faults.close_every and n % faults.close_every == 0:
            await ws.close(faults.close_code, "simulated close")
            return False
        if faults.stall_every and n % faults.stall_every == 0:
            await self._until_closed(ws)
            return False
        return True

    async def _throttle(self, link: Link, frames_per_s: float) -> None:
        now = time.monotonic()
        if link.next_send > now:
            await asyncio.sleep(link.next_send - now)
        link.next_send = max(now, link.next_send) + 1.0 / frames_per_s

    @staticmethod
    async def _drain(ws: ServerConnection) -> None:
        deadline = time.monotonic() + _DRAIN_TIMEOUT_S
        while ws.transport.get_write_buffer_size() and time.monotonic() < deadline:
            await asyncio.sleep(0.001)

    async def _send_blob(self, ws: ServerConnection, frames: list[str]) -> None:
        """The fast path: frames pre-encoded into one write, paced by the transport's buffer."""
        ws.transport.write(b"".join(ws_frame(f.encode()) for f in frames))
        self.sent["trades"] += len(frames)
        while ws.transport.get_write_buffer_size() > _HIGH_WATER:
            if ws.transport.is_closing():
                raise ConnectionClosed(None, None)
            await asyncio.sleep(0.001)
