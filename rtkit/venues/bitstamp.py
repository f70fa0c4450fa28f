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
"""

from __future__ import annotations

import orjson

from rtkit.validate import BUY, SELL, Reject, epoch_ns, field, positive, whole_number
from rtkit.venues.base import Adapter, Control, NativeSymbols, loads, split_glued

_CHANNEL_PREFIX = "live_trades_"
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

    def subscribe_messages(self, symbols: list[str]) -> list[str]:
        if len(symbols) > _MAX_CHANNELS:
            raise ValueError(f"bitstamp allows {_MAX_CHANNELS} channels per connection, "
                             f"not {len(symbols)}; split the symbols over several collectors")
        messages = []
        for symbol in symbols:
            channel = _CHANNEL_PREFIX + self.native_symbol(symbol)
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
