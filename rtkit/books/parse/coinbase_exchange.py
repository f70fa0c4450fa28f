"""Coinbase Exchange: ``level2_batch`` (``snapshot`` then ``l2update``),
``ticker``, and the ``GET /products/{id}/book?level=2`` snapshot (Coinbase
"Exchange WebSocket Channels"; REST "Get product book").

``l2update`` changes are ``[side, price, size]`` with side ``buy``/``sell``
and size absolute (0 removes). L2 messages have no sequence; the ticker has
the product's ``sequence`` (→ ``seq``), the REST book its ``sequence`` too.
"""

from __future__ import annotations

from rtkit.books import BookMessage
from rtkit.books.parse import (
    Level,
    Parsed,
    as_json,
    decimal_text,
    nothing,
    pairs,
    quote_row,
    sequence,
)  # fmt: skip
from rtkit.validate import Reject, field, iso_ns
from rtkit.venues.base import NativeSymbols, split_symbol

VENUE = "coinbase-exchange"
#: native symbol → ``BASE-QUOTE``; an adapter teaches it its subscribed symbols
#: (``SYMBOLS.learn(native, symbol)``) for quotes the split does not know
SYMBOLS = NativeSymbols(split_symbol)


def _time(msg: dict, received_at: int) -> int:
    text = msg.get("time")
    return iso_ns(text) if text is not None else received_at


def _changes(raw) -> tuple[list[Level], list[Level]]:
    if type(raw) is not list:
        raise Reject("missing_field" if raw is None else "unknown_message", "changes")
    bids: list[Level] = []
    asks: list[Level] = []
    for change in raw:
        if type(change) is not list or len(change) < 3:
            raise Reject("unknown_message", f"change {change!r:.60}")
        pair = (decimal_text(change[1], "price"), decimal_text(change[2], "size"))
        if change[0] == "buy":
            bids.append(pair)
        elif change[0] == "sell":
            asks.append(pair)
        else:
            raise Reject("bad_side", f"side={change[0]!r:.40}")
    return bids, asks


def parse(frame, received_at: int) -> Parsed:
    msg = as_json(frame)
    if type(msg) is not dict:
        raise Reject("unknown_message", "not a JSON object")
    kind = msg.get("type")
    if kind == "snapshot":
        return Parsed([BookMessage(
            symbol=SYMBOLS(field(msg, "product_id")), timestamp=_time(msg, received_at),
            received_at=received_at, is_snapshot=True,
            bids=pairs(field(msg, "bids"), "bids"), asks=pairs(field(msg, "asks"), "asks"),
        )], [])
    if kind == "l2update":
        bids, asks = _changes(msg.get("changes"))
        return Parsed([BookMessage(
            symbol=SYMBOLS(field(msg, "product_id")), timestamp=_time(msg, received_at),
            received_at=received_at, is_snapshot=False, bids=bids, asks=asks,
        )], [])
    if kind == "ticker":
        seq = msg.get("sequence")
        return Parsed([], [quote_row(
            VENUE, SYMBOLS(field(msg, "product_id")), _time(msg, received_at), received_at,
            field(msg, "best_bid"), field(msg, "best_bid_size"),
            field(msg, "best_ask"), field(msg, "best_ask_size"),
            None if seq is None else sequence(seq, "sequence"),
        )])
    return nothing()


def rest_snapshot(body, symbol: str, received_at: int) -> BookMessage:
    """``GET /products/{id}/book?level=2`` → the snapshot (levels ``[price, size, orders]``)."""
    if type(body) is not dict:
        raise Reject("unknown_message", "book is not a JSON object")
    seq = body.get("sequence")
    return BookMessage(
        symbol=symbol, timestamp=_time(body, received_at), received_at=received_at,
        is_snapshot=True, bids=pairs(field(body, "bids"), "bids"),
        asks=pairs(field(body, "asks"), "asks"),
        seq=None if seq is None else sequence(seq, "sequence"), source="rest",
    )
