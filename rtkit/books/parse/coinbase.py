"""Coinbase Advanced Trade: ``level2`` (frames on channel ``l2_data``) and
``ticker`` (Coinbase "Advanced Trade WebSocket Channels").

``l2_data`` events are a ``snapshot`` (full depth, once after subscribing)
or an ``update``; each level is ``{side: bid|offer, price_level,
new_quantity, event_time}`` with ``new_quantity`` the absolute size (0 removes).
The envelope's ``sequence_num`` counts every message of the connection
across channels: see :class:`ConnectionSequence` and the rule's docstring for
how a per-symbol book reads it. ``ticker`` events give ``best_bid``,
``best_bid_quantity``, ``best_ask``, ``best_ask_quantity`` (sent on trades).
"""

from __future__ import annotations

from rtkit.books import BookMessage
from rtkit.books.parse import Level, Parsed, as_json, decimal_text, nothing, quote_row, sequence
from rtkit.validate import Reject, field, iso_ns
from rtkit.venues.base import NativeSymbols, split_symbol

VENUE = "coinbase"
#: native symbol → ``BASE-QUOTE``; an adapter teaches it its subscribed symbols
#: (``SYMBOLS.learn(native, symbol)``) for quotes the split does not know
SYMBOLS = NativeSymbols(split_symbol)


class ConnectionSequence:
    """The connection's ``sequence_num``, fed with EVERY frame of one connection
    (heartbeats and trades too): remembers where the counter last jumped.

    ``resumed_at`` is the ``sequence_num`` of the first frame after the latest
    jump (None while the counter has run without a break). A new connection
    gets a new one: Coinbase starts the counter again.
    """

    __slots__ = ("last", "resumed_at", "jumps")

    def __init__(self) -> None:
        self.last: int | None = None
        self.resumed_at: int | None = None
        self.jumps = 0

    def see(self, seq: int) -> None:
        if self.last is not None and seq != self.last + 1:
            self.resumed_at = seq
            self.jumps += 1
        self.last = seq


def _levels(updates, symbol: str) -> tuple[list[Level], list[Level]]:
    if type(updates) is not list:
        raise Reject("unknown_message", f"{symbol} updates is not a list")
    bids: list[Level] = []
    asks: list[Level] = []
    for level in updates:
        if type(level) is not dict:
            raise Reject("unknown_message", "level is not an object")
        side = level.get("side")
        pair = (decimal_text(level.get("price_level"), "price_level"),
                decimal_text(level.get("new_quantity"), "new_quantity"))
        if side == "bid":
            bids.append(pair)
        elif side == "offer":
            asks.append(pair)
        else:
            raise Reject("bad_side", f"side={side!r:.40}")
    return bids, asks


def _book(msg: dict, seq: int, received_at: int, conn: ConnectionSequence | None) -> Parsed:
    events = field(msg, "events")
    if type(events) is not list:
        raise Reject("unknown_message", "events is not a list")
    timestamp = iso_ns(field(msg, "timestamp"))
    merged: dict[tuple[str, bool], BookMessage] = {}  # one message per product and kind
    for event in events:
        if type(event) is not dict:
            raise Reject("unknown_message", "event is not an object")
        kind = event.get("type")
        if kind not in ("snapshot", "update"):
            raise Reject("unknown_message", f"l2_data event type={kind!r:.40}")
        symbol = SYMBOLS(field(event, "product_id"))
        bids, asks = _levels(event.get("updates"), symbol)
        key = (symbol, kind == "snapshot")
        if key in merged:
            merged[key].bids += bids
            merged[key].asks += asks
            continue
        merged[key] = BookMessage(symbol=symbol, timestamp=timestamp, received_at=received_at,
                                  is_snapshot=kind == "snapshot", bids=bids, asks=asks, seq=seq,
                                  prev_seq=conn.resumed_at if conn is not None else None)
    return Parsed(list(merged.values()), [])


def _quotes(msg: dict, seq: int | None, received_at: int) -> Parsed:
    events = field(msg, "events")
    if type(events) is not list:
        raise Reject("unknown_message", "events is not a list")
    timestamp = iso_ns(field(msg, "timestamp"))
    rows = []
    for event in events:
        tickers = event.get("tickers") if type(event) is dict else None
        if type(tickers) is not list:
            raise Reject("missing_field", "events[].tickers")
        for t in tickers:
            if type(t) is not dict:
                raise Reject("unknown_message", "ticker is not an object")
            rows.append(quote_row(VENUE, SYMBOLS(field(t, "product_id")), timestamp,
                                  received_at, field(t, "best_bid"), field(t, "best_bid_quantity"),
                                  field(t, "best_ask"), field(t, "best_ask_quantity"), seq))
    return Parsed([], rows)


def parse(frame, received_at: int, conn: ConnectionSequence | None = None) -> Parsed:
    """Book messages and quotes of one frame; ``conn`` (the connection's
    :class:`ConnectionSequence`) must see every frame, so call this for all."""
    msg = as_json(frame)
    if type(msg) is not dict:
        raise Reject("unknown_message", "not a JSON object")
    raw_seq = msg.get("sequence_num")
    seq = sequence(raw_seq, "sequence_num") if raw_seq is not None else None
    if seq is not None and conn is not None:
        conn.see(seq)
    channel = msg.get("channel")
    if channel == "l2_data":
        return _book(msg, sequence(raw_seq, "sequence_num"), received_at, conn)
    if channel == "ticker":
        return _quotes(msg, seq, received_at)
    return nothing()
