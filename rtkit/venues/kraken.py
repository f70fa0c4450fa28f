"""Kraken spot WebSocket v2 ``trade`` channel.

Wire format: Kraken's WebSocket v2 "Trade" reference,
https://docs.kraken.com/api/docs/websocket-v2/trade

Also home of what both Kraken protocols share (:class:`KrakenBase`): v2
spells Bitcoin ``BTC``, the legacy v1 feed ``XBT`` (and Dogecoin ``XDG``);
both normalise to ``BTC-USD``.

v2 sends ``price`` and ``qty`` as JSON floats. orjson turns the number text
into the correctly rounded float64, which is exactly what the float64 price
column can hold, so nothing is lost on the way in. ``side`` is the taker's
side. ``trade_id`` is a sequence number per book, so gaps are visible.
"""

from __future__ import annotations

import itertools

import orjson

from rtkit.validate import Reject, field, iso_ns, positive, side_code, whole_number
from rtkit.venues.base import Adapter, Control, NativeSymbols, each_trade, loads, split_symbol

#: Kraken's legacy asset codes (v1 pairs, ``XBT/USD``) → the names v2 and everyone else use
LEGACY_TO_COMMON = {"XBT": "BTC", "XDG": "DOGE"}
COMMON_TO_LEGACY = {common: legacy for legacy, common in LEGACY_TO_COMMON.items()}


def kraken_symbol_parts(symbol: str) -> tuple[str, str] | None:
    """``BTC/USD``, ``XBT/USD``, ``XBTUSD``, ``btc-usd``… → ``('BTC', 'USD')``, or None.

    Legacy codes in a glued form are read first, so ``XBTUSD`` is not taken
    for ``XB`` + ``TUSD``.
    """
    s = symbol.strip().upper()
    if s.isalnum():
        for legacy, common in LEGACY_TO_COMMON.items():
            if s.startswith(legacy):
                s = common + s[len(legacy):]
            if s.endswith(legacy):
                s = s[: -len(legacy)] + common
    if not (parts := split_symbol(s)):
        return None
    base, quote = parts
    return LEGACY_TO_COMMON.get(base, base), LEGACY_TO_COMMON.get(quote, quote)


class KrakenBase(Adapter):
    """Symbol forms and request ids shared by the v2 and v1 adapters."""

    native_example = "BTC/USD"
    ping_interval_s = 20.0  # the server closes a connection idle for about a minute
    stale_after_s = 10.0  # a subscribed connection hears a heartbeat about every second

    def __init__(self) -> None:
        #: a symbol from a frame → ``BASE-QUOTE``
        self._symbol = NativeSymbols(kraken_symbol_parts)
        self._request_ids = itertools.count(1)

    def symbol_parts(self, symbol: str) -> tuple[str, str] | None:
        return kraken_symbol_parts(symbol)

    def _next_request_id(self) -> int:
        return next(self._request_ids)


class KrakenAdapter(KrakenBase):
    name = "kraken"
    default_url = "wss://ws.kraken.com/v2"
    ids_consecutive = True

    def __init__(self, snapshot: bool = True) -> None:
        """``snapshot=True`` (the default here) asks for the last 50 trades of each
        symbol on every (re)connect: after a reconnect they fill what was missed
        while away, and the ones already seen are dropped as duplicates."""
        if type(snapshot) is not bool:
            raise ValueError(f"kraken snapshot must be True or False, not {snapshot!r}")
        super().__init__()
        self.snapshot = snapshot

    def native_symbol(self, symbol: str) -> str:
        return self.normalise_symbol(symbol).replace("-", "/")

    def subscribe_messages(self, symbols: list[str]) -> list[str]:
        """One request for all symbols: v2 documents no per-request symbol limit."""
        params = {"channel": "trade", "symbol": [self.native_symbol(s) for s in symbols],
                  "snapshot": self.snapshot}
        request = {"method": "subscribe", "params": params, "req_id": self._next_request_id()}
        return [orjson.dumps(request).decode()]

    def ping_message(self) -> str:
        return '{"method":"ping","req_id":%d}' % self._next_request_id()

    def parse(self, frame, received_at_ns: int):
        msg = loads(frame)
        if type(msg) is not dict:
            raise Reject("unknown_message", "not a JSON object")
        if msg.get("channel") != "trade":
            return self._control(msg)
        data = field(msg, "data")
        if type(data) is not list:
            raise Reject("unknown_message", f"trade data is {type(data).__name__}, not a list")
        if not data:
            return Control("info", f"trade {msg.get('type')!r:.20} with no trades")
        out = each_trade(data, self._trade)
        if msg.get("type") == "snapshot":
            # the gap detector needs ascending ids; the docs do not promise a snapshot's order
            out.sort(key=lambda t: t[1] if type(t) is tuple else -1)
        return out

    def _trade(self, item) -> tuple:
        if type(item) is not dict:
            raise Reject("unknown_message", f"trade is {type(item).__name__}, not an object")
        return (
            self._symbol(field(item, "symbol")),
            whole_number(item.get("trade_id"), "trade_id"),
            iso_ns(item.get("timestamp")),
            positive(item.get("price"), "price"),
            positive(item.get("qty"), "qty"),
            side_code(item.get("side"), "buy", "sell"),
        )

    @staticmethod
    def _control(msg: dict) -> Control:
        channel, method = msg.get("channel"), msg.get("method")
        if channel == "heartbeat":
            return Control("heartbeat")
        if channel == "status":
            data = msg.get("data")
            status = data[0] if type(data) is list and data and type(data[0]) is dict else {}
            return Control("info", f"system {status.get('system')} api "
                                   f"{status.get('api_version')} {status.get('version')}")
        if method == "pong":
            return Control("pong", f"req_id={msg.get('req_id')}")
        success = msg.get("success")
        if success is False:
            return Control("error", f"{method}: {msg.get('error')}")
        if success is True:
            result = msg.get("result")
            what = result.get("symbol") if type(result) is dict else None
            return Control("ack", f"{method} {what} req_id={msg.get('req_id')}")
        raise Reject("unknown_message", f"channel={channel!r:.40} method={method!r:.40}")


ADAPTERS = {"kraken": KrakenAdapter}
