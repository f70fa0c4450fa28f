"""Bitstamp: ``diff_order_book_{pair}`` and the ``GET /api/v2/order_book/{pair}/``
snapshot (bitstamp.net/websocket/v2 and the HTTP API "Order book").

Both carry ``microtimestamp`` (µs, text), which becomes ``timestamp`` in ns:
the rule drops the diffs older than the snapshot's. No sequence, no checksum,
no BBO channel (quotes come from the book).
"""

from __future__ import annotations

from rtkit.books import BookMessage
from rtkit.books.parse import Parsed, as_json, nothing, pairs
from rtkit.validate import Reject, epoch_ns, field
from rtkit.venues.base import NativeSymbols, split_glued

VENUE = "bitstamp"
_PREFIX = "diff_order_book_"
#: native symbol → ``BASE-QUOTE``; an adapter teaches it its subscribed symbols
#: (``SYMBOLS.learn(native, symbol)``) for quotes the split does not know
SYMBOLS = NativeSymbols(lambda channel: split_glued(channel[len(_PREFIX):])
                        if channel.startswith(_PREFIX) else None)


def _micro(data: dict) -> int:
    return epoch_ns(field(data, "microtimestamp"), "us")


def parse(frame, received_at: int) -> Parsed:
    msg = as_json(frame)
    if type(msg) is not dict:
        raise Reject("unknown_message", "not a JSON object")
    channel = msg.get("channel")
    if msg.get("event") != "data" or type(channel) is not str or not channel.startswith(_PREFIX):
        return nothing()
    data = field(msg, "data")
    if type(data) is not dict:
        raise Reject("unknown_message", "data is not an object")
    return Parsed([BookMessage(
        symbol=SYMBOLS(channel), timestamp=_micro(data), received_at=received_at,
        is_snapshot=False, bids=pairs(data.get("bids"), "bids"),
        asks=pairs(data.get("asks"), "asks"),
    )], [])


def rest_snapshot(body, symbol: str, received_at: int) -> BookMessage:
    """``GET /api/v2/order_book/{pair}/`` → the snapshot message."""
    if type(body) is not dict:
        raise Reject("unknown_message", "order book is not a JSON object")
    return BookMessage(
        symbol=symbol, timestamp=_micro(body), received_at=received_at, is_snapshot=True,
        bids=pairs(field(body, "bids"), "bids"), asks=pairs(field(body, "asks"), "asks"),
        source="rest",
    )
