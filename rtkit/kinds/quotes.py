"""Quotes: the best bid and offer (BBO) as the venue changes it.

Described so that the ring, the table and the lake have their shape ready; no
adapter emits quotes yet. A venue's update id is the key where it has one
(``update_id``), else the receive time orders them.
"""

from __future__ import annotations

from rtkit.kinds import Column, Kind
from rtkit.kinds.trades import UTC_NS

QUOTES = Kind(
    name="quotes",
    table="quotes",
    columns=(
        Column("venue", "TEXT", "category", "int16", not_null=True),
        Column("symbol", "TEXT", "category", "int32", not_null=True),
        Column("update_id", "TEXT", "string", None, not_null=True),
        Column("timestamp", "INTEGER", UTC_NS, "int64", not_null=True),
        Column("received_at", "INTEGER", UTC_NS, "int64", not_null=True),
        Column("bid_price", "REAL", "float64", "float64", not_null=True),
        Column("bid_size", "REAL", "float64", "float64", not_null=True),
        Column("ask_price", "REAL", "float64", "float64", not_null=True),
        Column("ask_size", "REAL", "float64", "float64", not_null=True),
    ),
    key=("venue", "symbol", "update_id"),
    continuity="venue_sequence",
    indexes=(("venue", "symbol", "timestamp"),),
    without_rowid=True,
    counters=("quotes", "quotes_stored", "quote_duplicates", "quotes_pending"),
    doc="best bid and offer, as changed",
)

KINDS = {"quotes": QUOTES}
