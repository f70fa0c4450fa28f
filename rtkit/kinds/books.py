"""Order books: their deltas (L2, tardis' ``incremental_book_L2`` shape plus the venue's
sequence) and their health record (``book_events``).

``book`` (table ``book_deltas``): one row per price level a message set, a
size of 0 removing the level; rows of one message share ``received_at``;
each (re)sync starts with the full snapshot, one row per level with
``is_snapshot`` 1 (a reader clears its book at the first such row of a
message). ``seq`` is the venue's sequence of the message (0 where the venue
numbers nothing). The key is the row itself at its venue time and sequence,
so a replay or an overlapping collector doubles nothing.

``book_events``: every transition of every book (``rtkit.books.machine``):
when (``at``, the receive time of the message that caused it), from and to
which state, why (with the numbers), the sequence involved, and on a return
to ``live`` how long the book was not (``not_live_s``). Collected with ``book``.
"""

from __future__ import annotations

from rtkit.kinds import UTC_NS, Column, Kind, market_columns, venue_symbol

BOOK_DELTAS = Kind(
    name="book",
    table="book_deltas",
    columns=(
        *market_columns(),
        Column("seq", "INTEGER", "int64", "int64", not_null=True),
        Column("is_snapshot", "INTEGER", "int64", "int8", not_null=True),
        Column("side", "TEXT", "category", "int8", not_null=True),  # bid / ask
        Column("price", "REAL", "float64", "float64", not_null=True),
        Column("size", "REAL", "float64", "float64", not_null=True),
    ),
    key=("venue", "symbol", "timestamp", "seq", "is_snapshot", "side", "price", "size"),
    continuity="venue_sequence",
    without_rowid=True,
    counters=("book_deltas", "book_deltas_stored", "book_delta_duplicates",
              "book_deltas_pending"),
    doc="one price level of an order book set (a snapshot: every level)",
)

BOOK_EVENTS = Kind(
    name="book_events",
    table="book_events",
    columns=(
        *venue_symbol(ring=False),
        Column("at", "INTEGER", UTC_NS, None, not_null=True),
        Column("from_state", "TEXT", "category", None, not_null=True),
        Column("to_state", "TEXT", "category", None, not_null=True),
        Column("reason", "TEXT", "string", None, not_null=True),
        Column("seq", "INTEGER", "Int64", None),
        Column("not_live_s", "REAL", "float64", None),
    ),
    key=("venue", "symbol", "at", "from_state", "to_state"),
    continuity="none",
    without_rowid=True,
    counters=("book_events", "book_events_stored", "book_event_duplicates",
              "book_events_pending"),
    doc="a transition of an order book's state, with why and how long it was not live",
)

KINDS = {"book": BOOK_DELTAS, "book_events": BOOK_EVENTS}
