"""Binance USD-M futures: ``<sym>@depth@100ms`` diffs (with ``pu``),
``<sym>@bookTicker`` and the ``GET /fapi/v1/depth`` snapshot (developers.binance.com,
derivatives / usds-margined-futures: "Diff. Book Depth Streams", "Individual
Symbol Book Ticker Streams", "Order Book").

Same shapes as spot plus ``pu`` (the previous event's ``u``, → ``prev_seq``)
and the transaction time ``T`` (→ ``timestamp``) on diffs, book tickers and
the REST snapshot.
"""

from __future__ import annotations

from rtkit.books import BookMessage
from rtkit.books.parse import Parsed, as_json, nothing
from rtkit.books.parse.binance import book_ticker, depth_update, unwrap
from rtkit.books.parse.binance import rest_snapshot as _rest_snapshot

VENUE = "binance-futures"


def parse(frame, received_at: int) -> Parsed:
    msg = unwrap(as_json(frame))
    event = msg.get("e")
    if event == "depthUpdate":
        return Parsed([depth_update(msg, received_at, prev=True)], [])
    if event == "bookTicker":
        return Parsed([], [book_ticker(msg, received_at, VENUE)])
    return nothing()


def rest_snapshot(body, symbol: str, received_at: int) -> BookMessage:
    """``GET /fapi/v1/depth`` → the snapshot message (its ``T`` as ``timestamp``)."""
    return _rest_snapshot(body, symbol, received_at)
