"""Bitstamp ``live_trades_<pair>``.

Wire format: Bitstamp's WebSocket API v2 reference, https://www.bitstamp.net/websocket/v2/

One channel per subscribe message, and the venue closes a connection that
sends a frame of 512 bytes or more or asks for a 1025th channel, so both are
refused here, before connecting. The pair is only in ``channel``
(``live_trades_btcusd``); prices and sizes come from the exact ``price_str`` /
``amount_str`` text, the time from ``microtimestamp`` (µs). ``type`` 0 means
the taker bought, 1 that it sold. Trade ids are ints but not consecutive per
pair, so no gaps are claimed. The client keeps the connection alive with
``bts:heartbeat``, which the server answers.

With the ``book`` kind, ``diff_order_book_<pair>`` (absolute amounts, 0
removes; ``microtimestamp``) on the REST ``/api/v2/order_book/<pair>/``
snapshot: the diffs are buffered until it comes and those older than its
``microtimestamp`` dropped. No sequence, no checksum: the book is
``unverified``, audited against the same REST snapshot every
``audit_every_s`` and resynced from a new one. Bitstamp has no BBO channel:
``quotes`` come from the book each time its top changes (so they need ``book``).
"""

from __future__ import annotations

import orjson

from rtkit.books.parse import bitstamp as book_parse
from rtkit.kinds import Rows
from rtkit.validate import BUY, SELL, Reject, epoch_ns, field, positive, whole_number
from rtkit.venues.base import Adapter, Control, NativeSymbols, loads, split_glued
from rtkit.venues.book_fetch import rest_book_fetch

_CHANNEL_PREFIX = "live_trades_"
_BOOK_PREFIX = "diff_order_book_"
#: the venue closes the connection on a client frame this long or longer
_MAX_FRAME_BYTES = 512
#: channel subscriptions per connection; the 1025th gets the connection closed silently
_MAX_CHANNELS = 1024
_SIDES = {0: BUY, 1: SELL}


def _split_channel(channel: str) -> tuple[str, str] | None:
    """``live_trades_btcusd`` → ``('BTC', 'USD')``."""
    if channel.startswith(_CHANNEL_PREFIX):
        return split_glued(channel[len(_CHANNEL_PREFIX):])
    return None


class BitstampAdapter(Adapter):
    name = "bitstamp"
    default_url = "wss://ws.bitstamp.net"
    native_example = "btcusd"
    ids_consecutive = False  # ids are global, not a per-pair sequence
    ping_interval_s = 10.0  # bts:heartbeat; its answers also keep the stale watchdog quiet
    stale_after_s = 30.0
    kinds = ("trades", "quotes", "book")
    quotes_channel = False  # no BBO channel: quotes are derived from the book

    def configure(self, kinds: tuple[str, ...], depth: int | None) -> None:
        if depth is not None:
            raise ValueError("bitstamp's diff_order_book covers its whole book and offers no "
                             "depth; leave depth= out")
        if "quotes" in kinds and "book" not in kinds:
            raise ValueError("bitstamp has no best bid/offer channel: its quotes come from "
                             "the order book; pass kinds=[..., 'quotes', 'book']")
        super().configure(kinds, depth)

    def book_snapshot_fetch(self, rest_url: str | None):
        """The books' start, resync and audit: ``GET /api/v2/order_book/<pair>/``."""
        return rest_book_fetch(self.name, rest_url, book_parse.rest_snapshot)

    def __init__(self) -> None:
        self._symbol = NativeSymbols(_split_channel)

    def normalise_symbol(self, symbol: str) -> str:
        if isinstance(symbol, str) and symbol.lower().endswith("-perp"):
            raise ValueError(f"symbol {symbol!r}: bitstamp perpetuals are not supported; "
                             "collect spot pairs such as 'BTC-USD' or 'btcusd'")
        return super().normalise_symbol(symbol)

    def native_symbol(self, symbol: str) -> str:
        return self.normalise_symbol(symbol).replace("-", "").lower()

    def url(self, base_url: str | None, symbols: list[str]) -> str:
        """The one endpoint; the subscriptions are built here too, so a list the
        venue would refuse fails in the caller's cell rather than after connecting."""
        self.subscribe_messages(symbols)
        return super().url(base_url, symbols)

    def _channels(self, symbol: str) -> list[str]:
        native = self.native_symbol(symbol)
        channels = [_CHANNEL_PREFIX + native] if "trades" in self.collected else []
        if "book" in self.collected:
            book_parse.SYMBOLS.learn(_BOOK_PREFIX + native, symbol)
            channels.append(_BOOK_PREFIX + native)
        return channels

    def subscribe_messages(self, symbols: list[str]) -> list[str]:
        channels = [(symbol, channel) for symbol in symbols for channel in self._channels(symbol)]
        if len(channels) > _MAX_CHANNELS:
            raise ValueError(f"bitstamp allows {_MAX_CHANNELS} channels per connection, "
                             f"not {len(channels)}; split the symbols over several collectors")
        messages = []
        for symbol, channel in channels:
            self._symbol.learn(channel, symbol)
            message = orjson.dumps({"event": "bts:subscribe", "data": {"channel": channel}})
            if len(message) >= _MAX_FRAME_BYTES:
                raise ValueError(f"symbol {symbol!r} makes a subscribe frame of {len(message)} "
                                 f"bytes; bitstamp closes the connection at {_MAX_FRAME_BYTES}")
            messages.append(message.decode())
        return messages

    def ping_message(self) -> str:
        return '{"event":"bts:heartbeat"}'

    def parse(self, frame, received_at_ns: int):
        msg = loads(frame)
        if type(msg) is not dict:
            raise Reject("unknown_message", "not a JSON object")
        event = msg.get("event")
        if event != "trade":
            if event == "data":  # diff_order_book_<pair>
                parsed = book_parse.parse(msg, received_at_ns)
                if parsed.book:
                    return Rows(book=parsed.book)
                raise Reject("unknown_message", f"data on channel {msg.get('channel')!r:.60}")
            return self._control(event, msg)
        data = field(msg, "data")
        if type(data) is not dict:
            raise Reject("unknown_message", "trade data is not an object")
        side = data.get("type")
        if type(side) is not int or side not in _SIDES:
            raise Reject("missing_field" if side is None else "bad_side", f"type={side!r:.40}")
        return [
            (
                self._symbol(msg.get("channel")),
                whole_number(data.get("id"), "id"),
                epoch_ns(field(data, "microtimestamp"), "us"),
                positive(data.get("price_str"), "price_str"),
                positive(data.get("amount_str"), "amount_str"),
                _SIDES[side],
            )
        ]

    @staticmethod
    def _control(event, msg: dict) -> Control:
        channel = msg.get("channel")
        data = msg.get("data")
        data = data if type(data) is dict else {}
        if event in ("bts:subscription_succeeded", "bts:unsubscription_succeeded"):
            return Control("ack", f"{event} {channel}")
        if event == "bts:heartbeat":
            return Control("pong", f"status={data.get('status')}")
        if event == "bts:request_reconnect":
            return Control("reconnect", "bts:request_reconnect")
        if event == "bts:error":
            return Control("error", f"{data.get('code')}: {data.get('message')}")
        raise Reject("unknown_message", f"event={event!r:.40}")


ADAPTERS = {"bitstamp": BitstampAdapter}
