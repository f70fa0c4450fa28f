"""Quotes: the best bid and offer (BBO), one row per change.

``seq`` is the venue's update id where it numbers its quotes (Bybit ``u``,
Binance ``u``), else 0. The key is the whole quote at its venue time and
sequence: a replay, or two collectors overlapping on the same venue, store a
quote once, and two different quotes never collide (whatever the venue
numbers). The ring (``c.quotes``) keeps the same columns.
"""

from __future__ import annotations

from rtkit.kinds import Column, Kind, market_columns

QUOTES = Kind(
    name="quotes",
    table="quotes",
    columns=(
        *market_columns(),
        Column("bid_price", "REAL", "float64", "float64", not_null=True),
        Column("bid_size", "REAL", "float64", "float64", not_null=True),
        Column("ask_price", "REAL", "float64", "float64", not_null=True),
        Column("ask_size", "REAL", "float64", "float64", not_null=True),
        Column("seq", "INTEGER", "int64", "int64", not_null=True),
    ),
    key=("venue", "symbol", "timestamp", "seq", "bid_price", "bid_size", "ask_price",
         "ask_size"),
    continuity="venue_sequence",
    without_rowid=True,
    counters=("quotes", "quotes_stored", "quote_duplicates", "quotes_pending"),
    doc="best bid and offer, as changed",
)

KINDS = {"quotes": QUOTES}
