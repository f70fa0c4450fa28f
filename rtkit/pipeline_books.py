"""The order-book side of a :class:`~rtkit.pipeline.Pipeline`: the keeper's rows in.

The pipeline hands a frame's ``BookMessage`` rows (key ``book``) to its
:class:`rtkit.books.keeper.BookKeeper`; the rows the keeper answers with
(``book`` deltas, ``book_events``, quotes derived where the venue has no BBO
channel) join the frame's rows and are stored like any kind's. Between reads
the receiver calls :meth:`BookRows.book_tick` (snapshots that came back,
audits, resubscribes to send); a reconnect starts every book over.

With two connections on the same streams (``redundancy=2``, a handover) the receiver
says which one a read came from (``feeding_connection``) and when one ends
(:meth:`BookRows.connection_closed`): the keeper feeds each book from one connection
only, and moves it to the other when its own ends.
"""

from __future__ import annotations

import threading
from typing import Any

from rtkit.books import Step
from rtkit.books.keeper import BookKeeper
from rtkit.books.quote_ring import QuoteRing
from rtkit.books.sources import Sources
from rtkit.kinds.pending import PendingRecords


class BookRows:
    """The books and quotes part of a pipeline (receive thread)."""

    # set by the Pipeline this is part of
    adapter: Any
    books: BookKeeper | None
    quote_ring: QuoteRing | None
    records: PendingRecords
    _counting: threading.Lock
    _connections: int
    #: the receiver's number of the connection whose frames are being processed (None:
    #: frames without one, a replay's): the keeper takes a book from one connection only
    feeding_connection: int | None = None
    #: the connection each symbol's quotes are taken from (made at the first quote read
    #: from a numbered connection)
    _quote_sources: Sources | None = None

    def _book_rows(self, rows: dict, step: Step) -> None:
        """The keeper's rows into a frame's ``Rows`` (derived quotes only if collected)."""
        rows["book"] = step.deltas
        rows["book_events"] = step.events
        if step.quotes and "quotes" in self.records.kinds:
            rows["quotes"] = rows.get("quotes", []) + step.quotes

    def _take_book_messages(self, messages: list) -> None:
        """A batch's book messages through the keeper; their rows to the writer."""
        books = self.books
        assert books is not None
        connection = self.feeding_connection
        moved = None
        if connection is not None:  # each book from its one source connection
            messages, moved = books.admit(messages, connection)
        step = books.feed(messages) if messages else Step()
        if moved is not None and (moved.events or moved.deltas):  # the moves come first
            moved.deltas += step.deltas
            moved.events += step.events
            moved.quotes += step.quotes
            step = moved
        rows: dict = {}
        self._book_rows(rows, step)
        if self.quote_ring is not None and step.quotes and rows.get("quotes"):
            self.quote_ring.append(step.quotes)
        self.records.add(rows)

    def _quotes_of_one_connection(self, rows: dict) -> int:
        """A frame's quotes (the venue's BBO channel) taken from their symbol's one
        source connection (``rtkit.books.sources``): with two connections on the same
        streams each quote comes twice, and a quote has no identity to match its copy
        by on every venue (Binance spot's has no time, Kraken's neither time nor
        sequence, and the same top can come back later as a new quote), so the other
        connection's are left out; a quote is the top of the book at a moment, and the
        next one supersedes any the source missed. Returns how many were left out."""
        sources = self._quote_sources
        if sources is None:
            sources = self._quote_sources = Sources()
        connection = self.feeding_connection
        assert connection is not None
        sources.seen(connection)
        quotes = rows["quotes"]
        kept = [quote for quote in quotes if sources.admit(quote[1], connection)[0]]
        if len(kept) == len(quotes):
            return 0
        if kept:
            rows["quotes"] = kept
        else:
            del rows["quotes"]
        return len(quotes) - len(kept)

    def book_tick(self, now_ns: int) -> list[str]:
        """Between reads, on the receive thread: the books' snapshots that came back and
        their audits (their rows stored), and the frames to send for the books that asked
        to be subscribed again."""
        return [frame for frames in self.book_sends(now_ns).values() for frame in frames]

    def book_sends(self, now_ns: int) -> dict[int | None, list[str]]:
        """:meth:`book_tick`'s frames by the connection to send them on: a book's
        resubscribe goes to the connection that feeds it (None: any)."""
        books = self.books
        if books is None:
            return {}
        self.store_book_step(books.poll(now_ns))
        return {connection: self.adapter.book_resubscribe_messages(symbols)
                for connection, symbols in books.take_resubscribes_by_connection().items()}

    def store_book_step(self, step: Step) -> None:
        """A keeper step's rows (deltas, events, quotes) into the ring and the records to
        store: what a live book tick and a replayed keeper both produce."""
        if step.deltas or step.events or step.quotes:
            rows: dict = {}
            self._book_rows(rows, step)
            if self.quote_ring is not None and rows.get("quotes"):
                self.quote_ring.append(rows["quotes"])
            with self._counting:
                self.records.add(rows)

    def connection_closed(self, connection: int, at_ns: int, handed_over: bool) -> None:
        """The receiver ended ``connection``: the books it fed move to the other one
        (if one is open) and resync from it."""
        why = ("source connection closed (handed over)" if handed_over
               else "source connection lost")
        if self.books is not None:
            self.store_book_step(self.books.connection_closed(connection, at_ns, why))
        if self._quote_sources is not None:
            self._quote_sources.closed(connection, why)

    def books_overlap(self, connection: int) -> bool:
        """Whether ``connection`` brings every book on from where it is (a handover
        closes the old connection only then: ``BookKeeper.books_overlap``)."""
        return self.books is None or self.books.books_overlap(connection)

    def connection_opened(self, at_ns: int, covered: bool = False) -> None:
        first = self._connections == 0
        super().connection_opened(at_ns, covered)  # type: ignore[misc]  # IdChecks, after this
        # a connection opened beside a live one (a handover, redundancy) leaves the books
        # to the stream they are on; a reconnect after a hole starts them over
        if self.books is not None and not covered:
            self.store_book_step(self.books.connection_opened(at_ns, first))
        if self._quote_sources is not None and not covered:
            self._quote_sources.clear()

    def _stats(self) -> dict:
        out = super()._stats()  # type: ignore[misc]  # PipelineCounters, after this
        if self.books is not None:
            out.update(self.books.stats())
        if self._quote_sources is not None:  # quotes read live: the other connection's
            out["quotes_ignored"] = self._quote_sources.ignored  # left out
        return out

    def close_books(self) -> None:
        """Stop the books' snapshot workers (at the collector's stop)."""
        if self.books is not None:
            self.books.close()
