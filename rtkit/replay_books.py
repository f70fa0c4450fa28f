"""The order-book side of a :class:`rtkit.replay.Replay`: books rebuilt as live.

A recording's ``books`` event makes the venue's keeper as the live run made
it (symbols, start, depth cap, audit period); its book frames feed it (through
the pipeline); each recorded REST answer (``rest_snapshot``) is given to it
where the live keeper took it, at the recorded time; and for books that fetch,
the keeper is polled where the live one was (after each read, and at each
``book_poll``), so retries and audits due by the clock come alike. No network,
no wall clock: the same ``book_deltas``, ``book_events`` and derived quotes. A
snapshot the replayed keeper asks that the recording never answers (a recording
made before REST answers were kept) is a ``book_events`` row saying so.
"""

from __future__ import annotations

from typing import Any

from rtkit.books.keeper import BookKeeper, keeper_for
from rtkit.pipeline import Pipeline
from rtkit.recording import BAD_LINE, BooksStart, Frame, RestEntry


def _asks_the_recording(symbol: str):
    """A replayed keeper's fetch: never called (the recording answers, ``give_answer``)."""
    raise RuntimeError(f"a replay asks no venue for {symbol}'s snapshot: the recording "
                       "answers it")


class BookReplay:
    """The books of a replay's pipelines (a mixin of :class:`rtkit.replay.Replay`)."""

    # set by the Replay this is part of
    pipelines: dict[str, Pipeline]
    pipeline: Any
    _bad_line: Any

    def _init_books(self) -> None:
        #: the time of the entry being replayed: the clock of the replayed books
        self._now = 0
        #: venue → symbol → the recording's last word on its snapshot request: asked (True)
        #: or answered (False)
        self._recorded_asks: dict[str, dict[str, bool]] = {}
        #: venues whose live keeper fetched REST snapshots: its polls are replayed
        self._polled: set[str] = set()
        #: venue → [time of the live keeper's poll not replayed yet, its answers came]
        self._polls: dict[str, list] = {}

    def _keeper(self, adapter, start: BooksStart | None = None) -> BookKeeper:
        """A keeper like the live one (``start``: as the recording says it was made), on
        the recording's clock, whose snapshot requests the recording answers."""
        model = keeper_for(adapter, ())  # the venue's rule, depth cap and derived quotes
        if start is None:
            return BookKeeper(adapter.name, (), model._make_rule, max_levels=model._max_levels,
                              derive_quotes=model._derive_quotes, clock=self._clock,
                              replaying=True)
        self._now = start.received_at  # the books' start, as the live run's
        return BookKeeper(adapter.name, start.symbols, model._make_rule,
                          max_levels=start.max_levels, derive_quotes=start.derive_quotes,
                          audit_every_s=start.audit_every_ns / 1e9, clock=self._clock,
                          replaying=True, fetch=_asks_the_recording if start.rest else None)

    def _clock(self) -> int:
        return self._now

    def _read(self, frame: Frame) -> None:
        """A frame of books whose polls are replayed: the live keeper polled after each read
        (frames of one time) that had text frames; the poll after the previous read is
        due now, unless this frame is of the same read."""
        due = self._polls.get(frame.venue)
        if due is not None and (due[0] != frame.received_at or due[1]):
            self._poll_now(frame.venue)
        if not frame.binary and not frame.too_large:
            self._polls[frame.venue] = [frame.received_at, False]

    def _poll_now(self, venue: str) -> None:
        """The venue's poll that is due (after its answers were given), at its time."""
        due = self._polls.pop(venue, None)
        if due is not None:
            p = self.pipelines[venue]
            if p.books is not None:
                p.store_book_step(p.books.poll(due[0]))

    def _books(self, start: BooksStart) -> None:
        """The books a run kept on a venue: a keeper made as the live run made it (a
        second run in the same file starts its books over, as it did live)."""
        p = self.pipeline(start.venue)
        if p.books is not None:  # else the replay does not collect books
            p.books.close()
            p.books = self._keeper(p.adapter, start)
            if start.rest:  # its polls are in the recording: replayed
                self._polled.add(start.venue)

    def _rest(self, entry: RestEntry) -> None:
        """A REST snapshot the live keeper asked (noted) or took (given at this place)."""
        p = self.pipeline(entry.venue)
        books = p.books
        if books is None:
            return
        if entry.symbol not in books.machines:
            self._bad_line(BAD_LINE, f"a REST snapshot of {entry.symbol!r}, a book the "
                           "recording's run did not keep", entry.symbol.encode(), 0,
                           entry.received_at, entry.venue)
            return
        self._recorded_asks.setdefault(entry.venue, {})[entry.symbol] = entry.request
        if (due := self._polls.get(entry.venue)) is not None:
            due[1] = True  # taken by that poll: it is over before the next read
        if not entry.request:
            self._now = entry.received_at
            p.store_book_step(books.give_answer(entry.symbol, entry.purpose, entry.message,
                                                 entry.error, entry.received_at))

    def _unanswered(self) -> None:
        """At the end: a book_events row for each snapshot the replayed books asked that
        the recording never answered, unless the live run was still waiting for it too."""
        for venue, p in self.pipelines.items():
            if p.books is None or not p.books.unanswered:
                continue
            waited = self._recorded_asks.get(venue, {})
            symbols = [s for s in p.books.unanswered if not waited.get(s)]
            if symbols:
                p.store_book_step(p.books.cannot_answer(symbols))

