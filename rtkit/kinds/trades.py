"""Trades: the venue's executions, one row each (``ticks``, the table other tools read).

``trade_id`` is TEXT in SQLite (some venues' ids are UUIDs); the ring keeps it
as int64 when it is an integer, and the DataFrame has int64 when every id is
one, else strings. ``side`` is ``buy``/``sell``/NULL (the ring keeps a code:
0, 1, -1). ``venue`` and ``symbol`` are codes in the ring and categoricals in
the DataFrame.
"""

from __future__ import annotations

import marshal
from collections.abc import Iterator, Sequence

from rtkit.kinds import UTC_NS, Column, Kind, event_times, venue_symbol

#: Aggressor side codes; they are also the category codes of the DataFrame's
#: ``side`` column (categories ``["buy", "sell"]``, -1 = missing). Defined here, not in
#: :mod:`rtkit.validate` (which re-exports them): a writer process imports this module,
#: and validate's imports (logging, statistics, the URL redaction) cost it ~8 ms to start.
BUY, SELL, UNKNOWN_SIDE = 0, 1, -1
SIDE_TEXT = {BUY: "buy", SELL: "sell", UNKNOWN_SIDE: None}

# UTC_NS: where others import it
__all__ = ["KINDS", "TRADES", "UTC_NS", "TradeRows", "stored_rows"]

TRADES = Kind(
    name="trades",
    table="ticks",
    columns=(
        *venue_symbol(),
        Column("trade_id", "TEXT", "int64|string", "int64", not_null=True),
        *event_times(),
        Column("price", "REAL", "float64", "float64", not_null=True),
        Column("volume", "REAL", "float64", "float64", not_null=True),
        Column("side", "TEXT", "category", "int8"),
    ),
    key=("venue", "symbol", "trade_id"),
    continuity="consecutive_ids",  # where the venue's ids step by one (adapter.ids_consecutive)
    indexes=(("venue", "symbol", "timestamp"),),
    without_rowid=True,
    counters=("ticks", "stored", "duplicates", "pending"),
    doc="one execution on a venue",
)

KINDS = {"trades": TRADES}


def stored_rows(venue: str, frames: list[tuple[int, list]]) -> list[tuple]:
    """Rows in TRADES column order, as every sink stores them, from the ring's ticks
    ``(symbol, trade_id, timestamp, price, volume, side code)`` of ``venue``, grouped
    by receive time: ids become text and side codes ``buy``/``sell``/None."""
    side_text = SIDE_TEXT
    return [
        (venue, sym, str(tid), ts, received_at, price, volume, side_text[side])
        for received_at, ticks in frames
        for sym, tid, ts, price, volume, side in ticks
    ]


class TradeRows(Sequence):
    """A flush's trades as the rows ``stored_rows`` makes, made when first read.

    The writer process (``writer="process"``) is sent the ring's ticks instead, and the
    child makes the rows (0.2 µs a tick) on its own core (issue 17); frames of several
    trades also pickle in under half the time (0.2-0.26 against 0.53-0.56 µs a row;
    about the same at one trade a frame). A sink in this process reads the rows as from
    a list; they are made once, so a row's identity (what a refusal names) stays the
    same between reads, whether they were made in one go or in parts.
    """

    __slots__ = ("venue", "frames", "_made", "_made_frames", "_n")

    def __init__(self, venue: str, frames: list[tuple[int, list]]) -> None:
        self.venue, self.frames = venue, frames
        self._made: list[tuple] = []  # the rows of frames[:_made_frames], made so far
        self._made_frames = 0
        self._n: int | None = None  # counted when first asked

    def rows(self) -> list[tuple]:
        """Every row (the rest made now, after those ``in_parts`` made already)."""
        if self._made_frames == 0 and self.frames:
            # none made: the rows are the list itself, not copied into ``_made`` (a
            # flush's worth of pointers more at the peak, and the frames' too). No
            # ``in_parts`` holds ``_made`` yet: one that has yielded has made a part
            self._made = stored_rows(self.venue, self.frames)
            self._made_frames = len(self.frames)
        elif self._made_frames < len(self.frames):
            self._made += stored_rows(self.venue, self.frames[self._made_frames:])
            self._made_frames = len(self.frames)
        return self._made

    def packed(self, most: int) -> Iterator[list[tuple[int, list]]]:
        """The frames in runs of whole entries of up to ``most`` ticks (an entry is a
        chunk of frames, from one trade to thousands; one larger than ``most`` is a run
        of its own), each run but the last as full as the next entry allows. Cut by the
        average entry instead, a burst's entries then quiet ones made a run 10x ``most``;
        cut by a count of entries, two small runs once fitted in one message of the
        writer process, and the second took the first's place (issue 17)."""
        run: list[tuple[int, list]] = []
        size = 0
        for entry in self.frames:
            if run and size + len(entry[1]) > most:
                yield run
                run, size = [], 0
            run.append(entry)
            size += len(entry[1])
        if run:
            yield run

    def in_parts(self, rows: int) -> Iterator[list[tuple]]:
        """The rows ``rows()`` returns (the same objects), ``packed`` into parts of about
        ``rows``, each part made when it is asked for. Made in one go, a flush's rows hold
        the interpreter lock as long as that takes (6 ms for 20k trades): a receive
        thread that has a frame meanwhile waits that long."""
        made, done, end = self._made, 0, 0  # the rows and the frames of the parts so far
        for run in self.packed(rows):
            n = sum(len(ticks) for _, ticks in run)
            end += len(run)
            if self._made_frames < end:  # what rows() (or another in_parts) has not made
                made += stored_rows(self.venue, self.frames[self._made_frames:end])
                self._made_frames = end
            yield made[done:done + n]
            done += n

    def __len__(self) -> int:
        if self._n is None:
            self._n = sum(len(ticks) for _, ticks in self.frames)
        return self._n

    def __getitem__(self, index):  # type: ignore[override]  # a slice is a list
        return self.rows()[index]

    def __iter__(self) -> Iterator[tuple]:
        return iter(self.rows())

    def __eq__(self, other: object) -> bool:
        return self.rows() == (other.rows() if isinstance(other, TradeRows) else other)

    __hash__ = None  # type: ignore[assignment]  # as a list's

    def __repr__(self) -> str:
        return f"TradeRows({self.venue!r}, {len(self)} ticks in {len(self.frames)} frames)"

    def __reduce__(self):
        # the ticks as one marshal string: pickled, a tick cost the writer thread 0.29 µs
        # of the interpreter lock the receive loop waits for, marshalled 0.10 (and the
        # child 0.35 µs to read, not 0.43); both processes run the same interpreter, as
        # marshal's format asks. A value marshal cannot take (not a builtin) is pickled.
        try:
            return _unmarshal_trades, (marshal.dumps((self.venue, self.frames)),)
        except ValueError:
            return TradeRows, (self.venue, self.frames)


def _unmarshal_trades(data: bytes) -> TradeRows:
    """The :class:`TradeRows` a writer process is sent (see ``TradeRows.__reduce__``)."""
    return TradeRows(*marshal.loads(data))
