"""OKX v5: ``books`` (and the ``-l2-tbt`` variants) and ``bbo-tbt`` (OKX v5
docs, "Order book channel").

A ``books`` frame holds one item per instrument in ``data``: ``asks``/``bids``
as ``[price, size, "0", orders]``, ``ts`` (ms, text), ``seqId``,
``prevSeqId`` (-1 on a snapshot → ``prev_seq`` None) and ``checksum``
(``0`` means not sent → None). ``bbo-tbt`` is a one-level book: a quotes row
with its ``seqId``.
"""

from __future__ import annotations

from rtkit.books import BookMessage
from rtkit.books.parse import Parsed, as_json, nothing, pairs, quote_row, sequence
from rtkit.validate import Reject, epoch_ns, field
from rtkit.venues.base import NativeSymbols, split_symbol

VENUE = "okx"
BOOK_CHANNELS = frozenset({"books", "books-l2-tbt", "books50-l2-tbt"})
#: native symbol → ``BASE-QUOTE``; an adapter teaches it its subscribed symbols
#: (``SYMBOLS.learn(native, symbol)``) for quotes the split does not know
SYMBOLS = NativeSymbols(split_symbol)


def _items(msg: dict) -> list:
    data = field(msg, "data")
    if type(data) is not list:
        raise Reject("unknown_message", f"data is {type(data).__name__}, not a list")
    return data


def _book(item, symbol: str, is_snapshot: bool, received_at: int) -> BookMessage:
    if type(item) is not dict:
        raise Reject("unknown_message", "book item is not an object")
    prev = sequence(field(item, "prevSeqId"), "prevSeqId", allow_negative=True)
    checksum = item.get("checksum")
    if checksum is not None:
        checksum = sequence(checksum, "checksum", allow_negative=True) or None
    return BookMessage(
        symbol=symbol,
        timestamp=epoch_ns(field(item, "ts"), "ms"),
        received_at=received_at,
        is_snapshot=is_snapshot,
        bids=pairs(item.get("bids"), "bids"),
        asks=pairs(item.get("asks"), "asks"),
        seq=sequence(field(item, "seqId"), "seqId"),
        prev_seq=None if prev < 0 else prev,
        checksum=checksum,
    )


def _bbo(item, symbol: str, received_at: int) -> tuple:
    if type(item) is not dict:
        raise Reject("unknown_message", "bbo item is not an object")
    bids, asks = pairs(field(item, "bids"), "bids"), pairs(field(item, "asks"), "asks")
    if not bids or not asks:
        raise Reject("missing_field", "bbo-tbt side without a level")
    seq = item.get("seqId")
    return quote_row(VENUE, symbol, epoch_ns(field(item, "ts"), "ms"), received_at,
                     bids[0][0], bids[0][1], asks[0][0], asks[0][1],
                     None if seq is None else sequence(seq, "seqId"))


def parse(frame, received_at: int) -> Parsed:
    msg = as_json(frame)
    if type(msg) is not dict or "event" in msg:
        return nothing()  # subscribe acks and errors are the adapter's
    arg = msg.get("arg")
    if type(arg) is not dict:
        return nothing()
    channel = arg.get("channel")
    if channel in BOOK_CHANNELS:
        symbol = SYMBOLS(field(arg, "instId"))
        action = field(msg, "action")
        if action not in ("snapshot", "update"):
            raise Reject("unknown_message", f"action={action!r:.40}")
        return Parsed([_book(item, symbol, action == "snapshot", received_at)
                       for item in _items(msg)], [])
    if channel == "bbo-tbt":
        symbol = SYMBOLS(field(arg, "instId"))
        return Parsed([], [_bbo(item, symbol, received_at) for item in _items(msg)])
    return nothing()
