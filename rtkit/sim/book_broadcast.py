"""``broadcast`` books: one book stream made once and sent to every connection.

Without ``broadcast`` each connection's book stream makes its own messages
(:mod:`rtkit.sim.book_sending`), so two connections of one client would each see a
part of the sequence. A real venue sends the same messages to every connection: here
:meth:`BookBroadcast._generate_books` makes them once, at ``book_rate``, encoded for
every depth a connection subscribed, onto a tape; each connection sends the tape from
its own place (:meth:`BookBroadcast._stream_book_tape`). A (re)subscribed book gets
its snapshot taken at the tape's end, under the books' lock, and the tape's messages
of that book before that point are skipped on that connection: its stream continues
the snapshot exactly. The book faults (``Faults.book_*``) are not applied here; the
per-connection trade faults (``drop_every`` on ``faulty_connections``) cut a
connection with its books.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from websockets.asyncio.server import ServerConnection

from rtkit.sim.book import SimBooks
from rtkit.sim.book_sending import IDLE_S
from rtkit.sim.dialects import Dialect, Session

#: book messages made per step of the broadcast generator, at most
_TAPE_STEP = 50


@dataclass
class TapeEntry:
    """One book message of the tape: its frame per subscribed depth, and the quote frame
    when it changed the top of the book."""

    symbol: str
    frames: dict[int, str] = field(default_factory=dict)
    quote: str | None = None


class BookBroadcast:
    """The broadcast side of a simulator's books (on the simulator's loop)."""

    # set by the Simulator this is part of
    dialect: Dialect
    books: SimBooks
    book_rate: float | None
    book_count: int | None
    _stopping: asyncio.Event
    _book_tape: list[TapeEntry]
    _book_sessions: dict[int, Session]

    async def _emit(self, ws: ServerConnection, frame: str | bytes, category: str,
                    binary: bool = False) -> None:
        raise NotImplementedError  # FrameSender's, in the Simulator

    async def _generate_books(self) -> None:
        """Make book messages at ``book_rate`` (or as fast as 50 a step) for every book a
        connection subscribed, onto the tape, whether or not a connection is open."""
        started, made = None, 0
        tops: dict[str, tuple] = {}
        while not self._stopping.is_set():
            sessions = list(self._book_sessions.values())
            depths: dict[str, set[int]] = {}
            for session in sessions:
                for symbol, depth in session.books.items():
                    depths.setdefault(symbol, set()).add(depth)
            quoted = {s for session in sessions for s in session.quotes}
            symbols = sorted(set(depths) | quoted)
            remaining = None if self.book_count is None else self.book_count - self.books.messages
            if not symbols or (remaining is not None and remaining <= 0):
                await asyncio.sleep(IDLE_S if not symbols else 0.005)
                continue
            now = time.monotonic()
            if started is None:
                started = now
            n = _TAPE_STEP if self.book_rate is None else \
                min(_TAPE_STEP, int((now - started) * self.book_rate) - made)
            if remaining is not None:
                n = min(n, remaining)
            if n <= 0:
                await asyncio.sleep(0.002)
                continue
            made += n
            self._tape_step(n, symbols, depths, quoted, tops)
            await asyncio.sleep(0)

    def _tape_step(self, n: int, symbols: list[str], depths: dict[str, set[int]],
                   quoted: set[str], tops: dict[str, tuple]) -> None:
        dialect, books = self.dialect, self.books
        with books.lock:
            pick = books.rng.choice
            for _ in range(n):
                symbol = pick(symbols)
                book = books.book(symbol)
                prev = book.seq
                bids, asks = book.step()
                books.messages += 1
                entry = TapeEntry(symbol)
                for depth in sorted(depths.get(symbol, ())):
                    frame = dialect.encode_book(symbol, False, bids, asks, book.seq, prev,
                                                book.ts_ns, book, depth)
                    if frame is not None:
                        entry.frames[depth] = frame
                if symbol in quoted:
                    top = book.top()
                    if top != tops.get(symbol):
                        tops[symbol] = top
                        entry.quote = dialect.encode_quote(symbol, *top, book.seq, book.ts_ns)
                self._book_tape.append(entry)

    async def _stream_book_tape(self, ws: ServerConnection, session: Session) -> None:
        """Send this connection the tape from where it subscribed: each book's snapshot
        when it is (re)subscribed, then that book's messages after it, and the quotes."""
        key = id(session)
        cursor = len(self._book_tape)
        #: symbol → the tape index its socket snapshot holds up to (none: a REST venue)
        starts: dict[str, int] = {}
        try:
            while not self._stopping.is_set():
                if not session.books and not session.quotes:
                    self._book_sessions.pop(key, None)
                    # looked at 20 times a second until it asks for a book; at once
                    # between a resubscribe's unsubscribe and its subscribe
                    await asyncio.sleep(0.002 if starts else IDLE_S)
                    continue
                self._book_sessions[key] = session
                if session.book_fresh:
                    for frame in self._tape_snapshots(session, starts):
                        await self._emit(ws, frame, "book_snapshots")
                tape = self._book_tape
                end = len(tape)
                if cursor >= end:
                    await asyncio.sleep(0.002)
                    continue
                for index in range(cursor, end):
                    entry = tape[index]
                    symbol = entry.symbol
                    depth = session.books.get(symbol)
                    if depth is not None and index >= starts.get(symbol, 0):
                        delta = entry.frames.get(depth)
                        if delta is not None:
                            await self._emit(ws, delta, "book")
                    if entry.quote is not None and symbol in session.quotes:
                        await self._emit(ws, entry.quote, "quotes")
                cursor = end
        finally:
            self._book_sessions.pop(key, None)

    def _tape_snapshots(self, session: Session, starts: dict[str, int]) -> list[str]:
        """The snapshots owed, each at the tape's end (taken under the books' lock)."""
        with self.books.lock:
            frames = []
            at = len(self._book_tape)
            for symbol in sorted(session.book_fresh):
                book = self.books.book(symbol)
                depth = session.books.get(symbol, book.levels)
                bids, asks, seq = book.snapshot(depth)
                frame = self.dialect.encode_book(symbol, True, bids, asks, seq, 0, book.ts_ns,
                                                 book, depth)
                if frame is not None:
                    frames.append(frame)
                starts[symbol] = at
            session.book_fresh.clear()
        return frames
