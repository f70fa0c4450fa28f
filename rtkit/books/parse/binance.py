"""Binance spot: ``<sym>@depth@100ms`` diffs, ``<sym>@bookTicker`` and the
``GET /api/v3/depth`` snapshot (binance-spot-api-docs, web-socket-streams.md
"Diff. Depth Stream", "Individual Symbol Book Ticker Streams"; rest-api.md
"Order book").

Frames come bare (``/ws``) or wrapped ``{"stream", "data"}`` (``/stream``).
A diff's ``U``/``u`` become ``first_seq``/``seq``; the snapshot's
``lastUpdateId`` its ``seq``. ``@bookTicker`` and the REST snapshot carry no
time on spot: their ``timestamp`` is ``received_at``.
"""

from __future__ import annotations

from rtkit.books import BookMessage
from rtkit.books.parse import Parsed, as_json, nothing, pairs, quote_row, sequence
from rtkit.validate import Reject, epoch_ns, field
from rtkit.venues.base import NativeSymbols, split_glued

VENUE = "binance"
#: native symbol → ``BASE-QUOTE``; an adapter teaches it its subscribed symbols
#: (``SYMBOLS.learn(native, symbol)``) for quotes the split does not know
SYMBOLS = NativeSymbols(split_glued)


def unwrap(msg) -> dict:
    """The event inside a combined-stream wrapper, or the frame itself."""
    if type(msg) is not dict:
        raise Reject("unknown_message", "not a JSON object")
    data = msg.get("data")
    return data if type(data) is dict and "stream" in msg else msg


def depth_update(msg: dict, received_at: int, prev: bool = False) -> BookMessage:
    """A ``depthUpdate`` event (``prev``: read USD-M's ``pu`` and ``T``)."""
    ts = msg.get("T") if prev and "T" in msg else field(msg, "E")
    return BookMessage(
        symbol=SYMBOLS(field(msg, "s")),
        timestamp=epoch_ns(ts, "ms"),
        received_at=received_at,
        is_snapshot=False,
        bids=pairs(field(msg, "b"), "b"),
        asks=pairs(field(msg, "a"), "a"),
        seq=sequence(field(msg, "u"), "u"),
        first_seq=sequence(field(msg, "U"), "U"),
        prev_seq=sequence(field(msg, "pu"), "pu", allow_negative=True) if prev else None,
    )


def book_ticker(msg: dict, received_at: int, venue: str = VENUE) -> tuple:
    """A ``bookTicker`` event → a quotes row (``u`` is its order-book update id)."""
    ts = msg.get("T") or msg.get("E")
    return quote_row(venue, SYMBOLS(field(msg, "s")),
                     epoch_ns(ts, "ms") if ts is not None else received_at, received_at,
                     field(msg, "b"), field(msg, "B"), field(msg, "a"), field(msg, "A"),
                     sequence(field(msg, "u"), "u"))


def parse(frame, received_at: int) -> Parsed:
    msg = unwrap(as_json(frame))
    event = msg.get("e")
    if event == "depthUpdate":
        return Parsed([depth_update(msg, received_at)], [])
    if event is None and "u" in msg and "B" in msg and "A" in msg:
        return Parsed([], [book_ticker(msg, received_at)])
    return nothing()


def rest_snapshot(body, symbol: str, received_at: int) -> BookMessage:
    """``GET /api/v3/depth`` → the snapshot message (``symbol`` as ``BASE-QUOTE``)."""
    if type(body) is not dict:
        raise Reject("unknown_message", "depth snapshot is not a JSON object")
    ts = body.get("T") or body.get("E")  # USD-M sends them, spot does not
    return BookMessage(
        symbol=symbol,
        timestamp=epoch_ns(ts, "ms") if ts is not None else received_at,
        received_at=received_at,
        is_snapshot=True,
        bids=pairs(field(body, "bids"), "bids"),
        asks=pairs(field(body, "asks"), "asks"),
        seq=sequence(field(body, "lastUpdateId"), "lastUpdateId"),
        source="rest",
    )
