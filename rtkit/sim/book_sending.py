"""The simulator's book stream on one connection: snapshots, deltas, quotes, book faults.

Beside the trades (:mod:`rtkit.sim.connections`), a connection whose client
subscribed books (``Session.books``) or quotes (``Session.quotes``) gets, in
order: the snapshot of each book it (re)subscribed, then one delta per book
message the simulator's books (:mod:`rtkit.sim.book`) make, and a quote each
time a subscribed symbol's top of book changes. The dialect writes every
frame (``Dialect.encode_book`` / ``encode_restart`` / ``encode_quote``), so
every venue reuses the faults here, counted over the book deltas of the run:
a dropped delta, a duplicate, a reordered pair, a sequence reset, a corrupted
level, a crossed book, a forced close (``rtkit.sim.faults.Faults.book_*``).
``book_faults`` counts each injected one; ``sent`` counts frames as ``book``,
``book_snapshots``, ``quotes`` and ``book_duplicates``.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import TYPE_CHECKING

from websockets.asyncio.server import ServerConnection

from rtkit.sim.book import SimBook, SimBooks
from rtkit.sim.dialects import Dialect, Session
from rtkit.sim.faults import Faults, Link

#: book messages made per step when sending as fast as possible
BOOK_FAST_STEP = 200
#: most book messages made per step at a rate
BOOK_RATE_STEP = 50
#: seconds between two looks at a connection that subscribed no book yet
IDLE_S = 0.05


class BookSender:
    """What a simulator does for a connection's books (on the simulator's loop)."""

    # set by the Simulator this is part of
    dialect: Dialect
    faults: Faults
    books: SimBooks
    book_rate: float | None
    book_count: int | None
    book_faults: Counter[str]
    book_fault_log: list[tuple[str, str, int]]
    sent: Counter[str]
    _book_deltas: int
    _stopping: asyncio.Event

    if TYPE_CHECKING:  # FrameSender's, in the Simulator this is part of
        async def _emit(self, ws: ServerConnection, frame: str | bytes, category: str,
                        binary: bool = False) -> None: ...

        async def _send_blob(self, ws: ServerConnection, frames: list[str],
                             category: str = "trades") -> None: ...

        def _numbered(self, ws: ServerConnection, frame: str) -> str: ...

    async def _stream_books(self, ws: ServerConnection, session: Session) -> None:
        if getattr(self, "broadcast", False):  # one book stream for every connection
            await self._stream_book_tape(ws, session)  # type: ignore[attr-defined]
            return
        link = Link()
        start, made_here = time.monotonic(), 0
        tops: dict[str, tuple] = {}
        while not self._stopping.is_set():
            if not session.books and not session.quotes:
                # a client that never asked for books is looked at 20 times a second; one
                # between an unsubscribe and its subscribe, at once
                await asyncio.sleep(IDLE_S if not tops and made_here == 0 else 0.002)
                continue
            if session.book_fresh:
                for frame in self._snapshots(session):
                    await self._emit(ws, frame, "book_snapshots")
            remaining = None if self.book_count is None else self.book_count - self.books.messages
            if self.book_rate is None:
                n = BOOK_FAST_STEP
            else:
                n = min(BOOK_RATE_STEP, int((time.monotonic() - start) * self.book_rate)
                        - made_here)
            if remaining is not None:
                n = min(n, remaining)
            if n <= 0:
                if link.held_book is not None and remaining is not None and remaining <= 0:
                    # no next delta will come to go before it
                    held, link.held_book = link.held_book, None
                    await self._emit(ws, held, "book")
                await asyncio.sleep(0.002)
                continue
            made_here += n
            # with a book fault, each message is made right before it is sent: a fault's
            # extra message (a restart, a crossed level) takes the sequence in its place
            for size in [1] * n if self.faults.book_per_frame else [n]:
                deltas, quotes = self._make(session, size, tops)
                if not await self._send_book_frames(ws, session, deltas, quotes, link):
                    return

    def _snapshots(self, session: Session) -> list[str]:
        with self.books.lock:
            frames = []
            for symbol in sorted(session.book_fresh):
                book = self.books.book(symbol)
                depth = session.books.get(symbol, book.levels)
                bids, asks, seq = book.snapshot(depth)
                frame = self.dialect.encode_book(symbol, True, bids, asks, seq, 0, book.ts_ns,
                                                 book, depth)
                if frame is not None:
                    frames.append(frame)
            session.book_fresh.clear()
        return frames

    def _make(self, session: Session, n: int, tops: dict
              ) -> tuple[list[tuple[str, str]], list[str]]:
        """``n`` book messages over the session's symbols: ``(symbol, delta frame)`` for
        the subscribed books, and the quote frames of the tops that changed."""
        dialect, books = self.dialect, self.books
        symbols = sorted(set(session.books) | session.quotes)
        deltas: list[tuple[str, str]] = []
        quotes: list[str] = []
        if not symbols:  # a resubscribe's unsubscribe came between two sends
            return deltas, quotes
        with books.lock:
            pick = books.rng.choice
            for _ in range(n):
                symbol = pick(symbols)
                book = books.book(symbol)
                prev = book.seq
                bids, asks = book.step()
                books.messages += 1
                if symbol in session.books:
                    frame = dialect.encode_book(symbol, False, bids, asks, book.seq, prev,
                                                book.ts_ns, book, session.books[symbol])
                    if frame is not None:  # None: nothing the subscribed depth shows
                        deltas.append((symbol, frame))
                if symbol in session.quotes:
                    top = book.top()
                    if top != tops.get(symbol):
                        tops[symbol] = top
                        quote = dialect.encode_quote(symbol, *top, book.seq, book.ts_ns)
                        if quote is not None:
                            quotes.append(quote)
        return deltas, quotes

    async def _send_book_frames(self, ws: ServerConnection, session: Session,
                                deltas: list[tuple[str, str]], quotes: list[str],
                                link: Link) -> bool:
        """Send deltas and quotes with the book faults applied; False once a fault
        closed the connection."""
        faults = self.faults
        if not faults.book_per_frame:
            if self.book_rate is None:
                await self._send_blob(ws, [f for _, f in deltas], "book")
            else:
                for _, frame in deltas:
                    await self._emit(ws, frame, "book")
            for frame in quotes:
                await self._emit(ws, frame, "quotes")
            return True
        for symbol, frame in deltas:
            self._book_deltas += 1
            frame = self._numbered(ws, frame)  # a lost or held frame keeps its number
            seq = self.books.book(symbol).seq  # one message a step: this delta's
            if self._book_due(faults.book_drop_every):
                self._injected("dropped", symbol, seq)
                continue
            if self._book_due(faults.book_reorder_every) and link.held_book is None:
                link.held_book = frame
                self._injected("reordered", symbol, seq)
                continue
            await self._emit(ws, frame, "book")
            if link.held_book is not None:
                held, link.held_book = link.held_book, None
                await self._emit(ws, held, "book")
            if self._book_due(faults.book_duplicate_every):
                self._injected("duplicated", symbol, seq)
                await self._emit(ws, frame, "book_duplicates")
            for extra in self._wrong_frames(symbol, session):
                await self._emit(ws, extra, "book")
            if self._book_due(faults.book_close_every):
                self._injected("closed", symbol, seq)
                await ws.close(faults.close_code, "simulated close")
                return False
        for frame in quotes:
            await self._emit(ws, frame, "quotes")
        return True

    def _wrong_frames(self, symbol: str, session: Session) -> list[str]:
        """The frames a corrupted level, a crossed book or a restart add after a delta."""
        faults, dialect = self.faults, self.dialect
        out: list[str | None] = []
        with self.books.lock:
            book = self.books.book(symbol)
            if self._book_due(faults.book_corrupt_every):
                self._injected("corrupted", symbol, book.seq + 1)
                is_ask, level = book.corrupted_level()
                out.append(self._no_change(symbol, book, [] if is_ask else [level],
                                           [level] if is_ask else [], session))
            if self._book_due(faults.book_cross_every):
                self._injected("crossed", symbol, book.seq + 1)
                out.append(self._no_change(symbol, book, [book.crossing_level()], [], session))
            if self._book_due(faults.book_reset_every):
                self._injected("reset", symbol, 1)
                book.restart()
                out.append(dialect.encode_restart(symbol, book, time.time_ns(),
                                                  session.books.get(symbol, book.levels)))
        return [frame for frame in out if frame is not None]

    def _no_change(self, symbol: str, book: SimBook, bids: list, asks: list,
                   session: Session) -> str | None:
        """A delta in sequence whose levels are wrong: the true book does not change."""
        prev = book.seq
        book.no_change()
        return self.dialect.encode_book(symbol, False, bids, asks, book.seq, prev,
                                        time.time_ns(), book,
                                        session.books.get(symbol, book.levels))

    def _injected(self, fault: str, symbol: str, seq: int) -> None:
        self.book_faults[fault] += 1
        self.book_fault_log.append((fault, symbol, seq))

    def _book_due(self, every: int | None) -> bool:
        return bool(every and self._book_deltas % every == 0)
