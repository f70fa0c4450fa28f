"""Kraken WebSocket v2: ``book`` and ``ticker`` (with ``event_trigger: "bbo"``,
one frame per best-bid/offer change) (docs.kraken.com, WebSocket v2 "Book",
"Ticker", and the guide "Book checksum (WebSocket v2)").

v2 sends ``price`` and ``qty`` as JSON NUMBERS whose text carries the full
precision (``0.10000000``) that the checksum is computed from. A float
loses it (``0.1``), so book frames are read from their text with the number
text kept (``json.loads(…, parse_float=str)``, as Kraken's guide advises);
a frame handed over already parsed with floats in its levels is refused.
"""

from __future__ import annotations

import json

from rtkit.books import BookMessage
from rtkit.books.parse import Level, Parsed, decimal_text, nothing, quote_row, sequence
from rtkit.validate import Reject, field, iso_ns
from rtkit.venues.base import NativeSymbols
from rtkit.venues.kraken_symbols import kraken_symbol_parts

VENUE = "kraken"
#: native symbol → ``BASE-QUOTE``; an adapter teaches it its subscribed symbols
#: (``SYMBOLS.learn(native, symbol)``) for quotes the split does not know
SYMBOLS = NativeSymbols(kraken_symbol_parts)


def load_keeping_digits(frame: bytes | str):
    """A frame's JSON with every non-integer number kept as its text."""
    try:
        return json.loads(frame, parse_float=str)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and bad UTF-8
        raise Reject("malformed_json", str(exc)[:200]) from None


def number_text(value, name: str) -> str:
    """A price or qty as the venue's digits (kept text, or an integer literal)."""
    if type(value) is int:
        if value < 0:
            raise Reject("bad_number", f"{name}={value}")
        return str(value)
    if type(value) is float:
        raise ValueError("Kraken v2 book frames must be parsed from their text (bytes or str): "
                         "a float loses the digits the checksum is computed from")
    return decimal_text(value, name)


def _levels(raw, name: str) -> list[Level]:
    if raw is None:
        return []
    if type(raw) is not list:
        raise Reject("unknown_message", f"{name} is not a list")
    out = []
    for level in raw:
        if type(level) is not dict:
            raise Reject("unknown_message", f"{name} level is not an object")
        out.append((number_text(level.get("price"), f"{name} price"),
                    number_text(level.get("qty"), f"{name} qty")))
    return out


def _book(item, is_snapshot: bool, received_at: int) -> BookMessage:
    if type(item) is not dict:
        raise Reject("unknown_message", "book item is not an object")
    checksum = item.get("checksum")
    text = item.get("timestamp")
    return BookMessage(
        symbol=SYMBOLS(field(item, "symbol")),
        timestamp=iso_ns(text) if text is not None else received_at,
        received_at=received_at,
        is_snapshot=is_snapshot,
        bids=_levels(item.get("bids"), "bids"),
        asks=_levels(item.get("asks"), "asks"),
        checksum=None if checksum is None else sequence(checksum, "checksum"),
    )


def _quote(item, received_at: int) -> tuple:
    if type(item) is not dict:
        raise Reject("unknown_message", "ticker item is not an object")
    text = item.get("timestamp")
    return quote_row(VENUE, SYMBOLS(field(item, "symbol")),
                     iso_ns(text) if text is not None else received_at, received_at,
                     field(item, "bid"), field(item, "bid_qty"),
                     field(item, "ask"), field(item, "ask_qty"), None)


def parse(frame, received_at: int) -> Parsed:
    msg = load_keeping_digits(frame) if isinstance(frame, (bytes, str)) else frame
    if type(msg) is not dict:
        raise Reject("unknown_message", "not a JSON object")
    channel = msg.get("channel")
    if channel not in ("book", "ticker"):
        return nothing()
    data = field(msg, "data")
    if type(data) is not list:
        raise Reject("unknown_message", "data is not a list")
    if channel == "book":
        kind = msg.get("type")
        if kind not in ("snapshot", "update"):
            raise Reject("unknown_message", f"book type={kind!r:.40}")
        return Parsed([_book(item, kind == "snapshot", received_at) for item in data], [])
    return Parsed([], [_quote(item, received_at) for item in data])
