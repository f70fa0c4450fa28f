"""Kraken WebSocket v1: ``book`` and ``spread`` (docs.kraken.com, WebSocket v1
"book", "spread", and the guide "Book checksum (WebSocket v1)").

Frames are arrays ``[channelID, payload…, channelName, pair]``. A book
snapshot's payload has ``as``/``bs``; an update has ``a`` and/or ``b`` in one
or two objects, the checksum ``c`` (text) in the last. Levels are
``[price, volume, timestamp]``, with a 4th field ``"r"`` when Kraken
republishes a level — a normal update (seen in real captures). Levels are kept in the
order sent (a price repeated in one message: the last wins when applied). The
message's ``timestamp`` is its latest level's. ``spread`` is
``[bid, ask, timestamp, bidVolume, askVolume]``.
"""

from __future__ import annotations

from rtkit.books import BookMessage
from rtkit.books.parse import Level, Parsed, as_json, decimal_text, nothing, quote_row, sequence
from rtkit.validate import Reject, epoch_ns
from rtkit.venues.base import NativeSymbols
from rtkit.venues.kraken_symbols import kraken_symbol_parts

VENUE = "kraken-v1"
#: native symbol → ``BASE-QUOTE``; an adapter teaches it its subscribed symbols
#: (``SYMBOLS.learn(native, symbol)``) for quotes the split does not know
SYMBOLS = NativeSymbols(kraken_symbol_parts)


def _levels(raw, name: str, times: list[int]) -> list[Level]:
    if type(raw) is not list:
        raise Reject("unknown_message", f"{name} is not a list")
    out = []
    for level in raw:
        if type(level) is not list or len(level) < 3:
            raise Reject("unknown_message", f"{name} level {level!r:.60}")
        out.append((decimal_text(level[0], f"{name} price"),
                    decimal_text(level[1], f"{name} volume")))
        times.append(epoch_ns(level[2], "s"))
    return out


def _book(payloads: list, symbol: str, received_at: int) -> BookMessage:
    times: list[int] = []
    bids: list[Level] = []
    asks: list[Level] = []
    checksum = None
    snapshot = any("as" in p or "bs" in p for p in payloads)
    for part in payloads:
        for key, side in (("as", asks), ("a", asks), ("bs", bids), ("b", bids)):
            if key in part:
                side += _levels(part[key], key, times)
        if "c" in part:
            checksum = sequence(part["c"], "c")
    return BookMessage(symbol=symbol, timestamp=max(times) if times else received_at,
                       received_at=received_at, is_snapshot=snapshot, bids=bids, asks=asks,
                       checksum=checksum)


def parse(frame, received_at: int) -> Parsed:
    msg = as_json(frame)
    if type(msg) is not list:
        return nothing()  # events (heartbeat, systemStatus, subscriptionStatus) are objects
    if len(msg) < 4 or type(msg[-2]) is not str:
        raise Reject("unknown_message", f"array frame of {len(msg)} items")
    name, symbol = msg[-2], SYMBOLS(msg[-1])
    payloads = msg[1:-2]
    if name.startswith("book"):
        if not payloads or any(type(p) is not dict for p in payloads):
            raise Reject("unknown_message", "book payload is not an object")
        return Parsed([_book(payloads, symbol, received_at)], [])
    if name == "spread":
        spread = payloads[0] if payloads else None
        if type(spread) is not list or len(spread) < 5:
            raise Reject("unknown_message", f"spread {spread!r:.60}")
        return Parsed([], [quote_row(VENUE, symbol, epoch_ns(spread[2], "s"), received_at,
                                     spread[0], spread[3], spread[1], spread[4], None)])
    return nothing()
