"""Order book deltas and snapshots (L2), in the shape of tardis' ``incremental_book_L2``
plus the venue's sequence numbers.

A delta sets one price level of one side to an amount (0 removes it); a
snapshot is every level at one moment, one row per level, ``is_snapshot`` true.
Continuity: deltas carry the venue's sequence (``first_seq``..``last_seq`` of
the message they came in; a jump is a desync) or a checksum of the book after
them. Described ahead of the book adapters, which no venue module has yet.
"""

from __future__ import annotations

from rtkit.kinds import Column, Kind
from rtkit.kinds.trades import UTC_NS

_LEVEL = (
    Column("venue", "TEXT", "category", "int16", not_null=True),
    Column("symbol", "TEXT", "category", "int32", not_null=True),
    Column("timestamp", "INTEGER", UTC_NS, "int64", not_null=True),
    Column("received_at", "INTEGER", UTC_NS, "int64", not_null=True),
    Column("first_seq", "INTEGER", "Int64", "int64"),
    Column("last_seq", "INTEGER", "Int64", "int64"),
    Column("level", "INTEGER", "int64", "int32", not_null=True),  # row within the message
    Column("side", "TEXT", "category", "int8", not_null=True),  # bid / ask
    Column("price", "REAL", "float64", "float64", not_null=True),
    Column("amount", "REAL", "float64", "float64", not_null=True),
)
_KEY = ("venue", "symbol", "received_at", "level")

BOOK_DELTAS = Kind(
    name="book_deltas",
    table="book_deltas",
    columns=_LEVEL,
    key=_KEY,
    continuity="venue_sequence",
    indexes=(("venue", "symbol", "timestamp"),),
    without_rowid=True,
    counters=("book_deltas", "book_deltas_stored", "book_delta_duplicates",
              "book_deltas_pending"),
    doc="one price level changed",
)

BOOK_SNAPSHOTS = Kind(
    name="book_snapshots",
    table="book_snapshots",
    columns=_LEVEL,
    key=_KEY,
    continuity="checksum",
    indexes=(("venue", "symbol", "timestamp"),),
    without_rowid=True,
    counters=("book_snapshots", "book_snapshots_stored", "book_snapshot_duplicates",
              "book_snapshots_pending"),
    doc="every level of a book at one moment",
)

KINDS = {"book_deltas": BOOK_DELTAS, "book_snapshots": BOOK_SNAPSHOTS}
