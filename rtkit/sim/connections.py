"""One client connection to the simulator: admission, the greeting, the client's
messages (subscribes, pings) and the stream of trades for what it subscribed."""

from __future__ import annotations

import asyncio
import contextlib
import time
from http import HTTPStatus

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from rtkit.sim.book_broadcast import BookBroadcast
from rtkit.sim.book_sending import BookSender
from rtkit.sim.dialects import Dialect, Session
from rtkit.sim.faults import Link
from rtkit.sim.market import Market
from rtkit.sim.sending import FrameSender

#: trades generated per step when sending as fast as possible
_FAST_STEP = 2_000
#: most trades generated per step at a rate: a fault that cuts a step short cuts off
#: at most this many (fewer than the default overlap re-sends)
_RATE_STEP = 50


class ConnectionHandler(FrameSender, BookSender, BookBroadcast):
    """What the simulator's server does with each connection (on the simulator's loop)."""

    # set by the Simulator that this handler is part of
    dialect: Dialect
    market: Market
    count: int | None
    overlap: int
    connections: int
    refused: int
    pings_ignored: int
    attempts: list[float]
    _in_hand: int
    _refuse_until: float
    broadcast: bool
    lifetime_closes: int
    _streaming: dict[int, list[str]]
    _cursors: dict[int, int]

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
        number, opened = self.connections, time.monotonic()
        session = Session(path=ws.request.path if ws.request else "/")
        subscribed = asyncio.Event()
        reader = asyncio.create_task(self._read(ws, session, subscribed))
        books = (asyncio.create_task(self._stream_books(ws, session))
                 if self.dialect.has_books else None)
        try:
            for frame in self.dialect.greeting(session):
                await self._emit(ws, frame, "control")
            if session.symbols:  # a feed that streams without being asked
                subscribed.set()
            await self._stream(ws, session, subscribed, number, opened)
        except ConnectionClosed:
            pass
        finally:
            reader.cancel()
            if books is not None:
                books.cancel()
            self._streaming.pop(id(session), None)
            self._cursors.pop(id(session), None)

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

    async def _stream(self, ws: ServerConnection, session: Session, subscribed: asyncio.Event,
                      number: int = 1, opened: float = 0.0):
        await self._until_closed(ws, subscribed)
        if not subscribed.is_set():
            return
        market, dialect = self.market, self.dialect
        link = Link(faulty=self.faults.hits(number))
        streaming: list[str] = []
        next_beat = time.monotonic() + (dialect.heartbeat_interval_s or 0)
        start, generated_here = time.monotonic(), 0
        key = id(session)
        while not self._stopping.is_set():
            if await self._lifetime_over(ws, link, opened):
                return
            if streaming != session.symbols:
                # Each symbol's overlap goes out before its first live trade, also
                # when a venue subscribes one symbol per message.
                fresh = [s for s in session.symbols if s not in streaming]
                streaming = list(session.symbols)
                live_from = len(market.trades)
                if self.broadcast:  # live from here on: what the replay does not hold
                    # a symbol subscribed later joins the stream where the connection is:
                    # its replay ends there too, so no trade comes twice on one connection
                    live_from = self._cursors.setdefault(key, live_from)
                    self._streaming[key] = streaming
                replay = [t for t in market.trades[max(0, live_from - self.overlap):live_from]
                          if t.symbol in fresh]
                if replay and self.overlap:
                    for frame in dialect.encode_overlap(replay):
                        await self._emit(ws, frame, "overlap")
            if dialect.heartbeat_interval_s and time.monotonic() >= next_beat:
                beat = dialect.heartbeat(session)
                if beat:
                    await self._emit(ws, beat, "control")
                next_beat = time.monotonic() + dialect.heartbeat_interval_s
            if self.broadcast:
                if not await self._send_from_tape(ws, key, streaming, link):
                    return
                continue
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

    # --- a scheduled end, and one market sent to every connection ------------------------
    async def _lifetime_over(self, ws: ServerConnection, link: Link, opened: float) -> bool:
        """Announce (``notice_s`` before) and make the close at the end of a connection's
        ``lifetime_s``; True once it is closed. The notice is a promise: a loop that was
        late for it (a pause of the process) closes ``notice_s`` after it, not at once,
        so a client always has the notice period the venue gives."""
        lifetime, notice_s = self.faults.lifetime_s, self.faults.notice_s
        if not lifetime:
            return False
        now = time.monotonic()
        age = now - opened
        if not link.noticed and age >= lifetime - notice_s:
            link.noticed = True
            notice = self.dialect.close_notice() if notice_s else None
            if notice:
                await self._emit(ws, notice, "control")
                link.close_at = time.monotonic() + notice_s
        if age >= lifetime and now >= link.close_at:
            await self._release_held(ws, link)
            await ws.close(1001, "connection lifetime reached")
            self.lifetime_closes += 1
            return True
        return False

    async def _send_from_tape(self, ws: ServerConnection, key: int, streaming: list[str],
                              link: Link) -> bool:
        """Send this connection the trades made since its cursor (``broadcast``: one
        market, every connection sees each trade, as on a real venue)."""
        tape = self.market.trades
        cursor = self._cursors.get(key, len(tape))
        if cursor >= len(tape):
            await self._release_held(ws, link)
            await asyncio.sleep(0.002)
            return True
        end = len(tape)
        self._cursors[key] = end
        mine = [t for t in tape[cursor:end] if t.symbol in streaming]
        if not mine:
            return True
        frames = self.dialect.encode(mine)
        self._in_hand += len(frames)
        try:
            return await self._send_trades(ws, frames, link)
        finally:
            self._in_hand -= len(frames)

    async def _generate(self) -> None:
        """``broadcast``: make trades at ``rate`` for every symbol a connection streamed,
        from the first subscription on, whether or not a connection is open: the
        market goes on while a client reconnects."""
        market, started, made = self.market, None, 0
        symbols: list[str] = []
        while not self._stopping.is_set():
            for subscribed in list(self._streaming.values()):
                symbols.extend(s for s in subscribed if s not in symbols)
            remaining = None if self.count is None else self.count - len(market.trades)
            if not symbols or (remaining is not None and remaining <= 0):
                await asyncio.sleep(0.005)
                continue
            now = time.monotonic()
            if started is None:
                started, made = now, 0
            assert self.rate is not None  # broadcast needs a rate (checked on creation)
            n = min(_RATE_STEP, int((now - started) * self.rate) - made)
            if remaining is not None:
                n = min(n, remaining)
            if n <= 0:
                await asyncio.sleep(0.002)
                continue
            market.trades_for(symbols, n)
            made += n
            await asyncio.sleep(0)
