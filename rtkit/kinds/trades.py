"""Trades: the venue's executions, one row each (``ticks``, the table other tools read).

``trade_id`` is TEXT in SQLite (some venues' ids are UUIDs); the ring keeps it
as int64 when it is an integer, and the DataFrame has int64 when every id is
one, else strings. ``side`` is ``buy``/``sell``/NULL (the ring keeps a code:
0, 1, -1). ``venue`` and ``symbol`` are codes in the ring and categoricals in
the DataFrame.
"""

from __future__ import annotations

from rtkit.kinds import UTC_NS, Column, Kind, event_times, venue_symbol
from rtkit.validate import SIDE_TEXT

__all__ = ["KINDS", "TRADES", "UTC_NS", "stored_rows"]  # UTC_NS: where others import it

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
