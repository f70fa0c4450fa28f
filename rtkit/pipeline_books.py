"""The order-book side of a :class:`~rtkit.pipeline.Pipeline`: the keeper's rows in.

The pipeline hands a frame's ``BookMessage`` rows (key ``book``) to its
:class:`rtkit.books.keeper.BookKeeper`; the rows the keeper answers with
(``book`` deltas, ``book_events``, quotes derived where the venue has no BBO
channel) join the frame's rows and are stored like any kind's. Between reads
the receiver calls :meth:`BookRows.book_tick` (snapshots that came back,
audits, resubscribes to send); a reconnect starts every book over.
"""

from __future__ import annotations

import threading
from typing import Any

from rtkit.books import Step
from rtkit.books.keeper import BookKeeper
from rtkit.books.quote_ring import QuoteRing
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

    def _book_rows(self, rows: dict, step: Step) -> None:
        """The keeper's rows into a frame's ``Rows`` (derived quotes only if collected)."""
        rows["book"] = step.deltas
        rows["book_events"] = step.events
        if step.quotes and "quotes" in self.records.kinds:
            rows["quotes"] = rows.get("quotes", []) + step.quotes

    def _take_book_messages(self, messages: list) -> None:
        """A batch's book messages through the keeper; their rows to the writer."""
        step = self.books.feed(messages)  # type: ignore[union-attr]
        rows: dict = {}
        self._book_rows(rows, step)
        if self.quote_ring is not None and step.quotes and rows.get("quotes"):
            self.quote_ring.append(step.quotes)
        self.records.add(rows)

    def book_tick(self, now_ns: int) -> list[str]:
        """Between reads, on the receive thread: the books' snapshots that came back and
        their audits (their rows stored), and the frames to send for the books that asked
        to be subscribed again."""
        books = self.books
        if books is None:
            return []
        step = books.poll(now_ns)
        if step.deltas or step.events or step.quotes:
            rows: dict = {}
            self._book_rows(rows, step)
            if self.quote_ring is not None and rows.get("quotes"):
                self.quote_ring.append(rows["quotes"])
            with self._counting:
                self.records.add(rows)
        symbols = books.take_resubscribes()
        return self.adapter.book_resubscribe_messages(symbols) if symbols else []

    def connection_opened(self, at_ns: int, covered: bool = False) -> None:
        first = self._connections == 0
        super().connection_opened(at_ns, covered)  # type: ignore[misc]  # IdChecks, after this
        # a connection opened beside a live one (a handover, redundancy) leaves the books
        # to the stream they are on; a reconnect after a hole starts them over
        if self.books is not None and not covered:
            step = self.books.connection_opened(at_ns, first)
            if step.events:
                rows: dict = {}
                self._book_rows(rows, step)
                with self._counting:
                    self.records.add(rows)

    def _stats(self) -> dict:
        out = super()._stats()  # type: ignore[misc]  # PipelineCounters, after this
        if self.books is not None:
            out.update(self.books.stats())
        return out

    def close_books(self) -> None:
        """Stop the books' snapshot workers (at the collector's stop)."""
        if self.books is not None:
            self.books.close()
