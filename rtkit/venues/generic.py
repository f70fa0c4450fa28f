"""Any JSON trade feed, described by the user: the plan's original
``{"price", "volume", "timestamp"}`` case.

Say where each field of a trade is and collect::

    rtkit.collect("generic", ["BTC-USDT"], url="wss://example.com/feed",
                  subscribe={"op": "subscribe", "channel": "trades"}, trades="data",
                  price="p", volume="q", timestamp="T", timestamp_unit="ms",
                  side="S", symbol="s", trade_id="i")

A field spec is a dotted path into the trade object (``"data.p"``; integers
index lists: ``"data.0.p"``, ``"-1"`` is the last item), a function of the
trade object written by the user, or None when the feed has no such field.
Paths are only split on dots: nothing from the feed is ever evaluated.

The defaults read the plan's shape ``{"symbol", "trade_id", "price",
"volume", "timestamp", "side"}``. A field you name must be in every trade; a
field left at its default is used when present and otherwise falls back:
timestamp → receive time, side → unknown, symbol → ``default_symbol`` or
the one subscribed symbol, trade_id → a synthetic id.

A frame that is a JSON object is one trade; a JSON array is a batch of
trades; ``trades=`` says where the batch (or the one trade) sits inside an
envelope. When the symbol is in the envelope, let ``trades`` be a function
that copies it into each trade. An object without price and volume (or
without the ``trades`` part) is not a trade but a control message, an
``error`` one when it has an ``error`` key or an ``event``/``type`` of
``"error"``.

A synthetic id hashes the trade's symbol, time, price and volume text and
side, plus how often that same tuple came earlier in the frame: a replayed
frame gets the same ids, so duplicates are dropped, and two identical trades
in one frame stay two. Identical trades at the same time in two different
frames become one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from functools import lru_cache, partial
from typing import Any

import orjson

from rtkit.validate import (
    BUY,
    MAX_ID,
    MAX_SYMBOL_CHARS,
    SELL,
    TIME_UNITS,
    UNKNOWN_SIDE,
    Reject,
    positive,
    text_id,
    trade_time_ns,
    whole_number,
    ws_url,
)  # fmt: skip
from rtkit.venues.base import (
    MAX_NATIVE_SYMBOL_CHARS,
    Adapter,
    Control,
    each_trade,
    loads,
    split_symbol,
    wire_symbol_text,
)  # fmt: skip

#: a dotted path, a function of the trade object, or None (the feed lacks the field)
FieldSpec = str | Callable[[Any], Any] | None
#: a message to send: JSON text or a dict, a list of them, or a function of the symbols
SubscribeSpec = str | dict | list | Callable[[list[str]], Any] | None

DEFAULT_BUY_VALUES = ("buy", "b", "bid")
DEFAULT_SELL_VALUES = ("sell", "s", "ask")
#: seconds between keep-alive messages when ``ping`` is given without an interval
DEFAULT_PING_INTERVAL_S = 20.0
#: int ids beyond int64 are kept as text up to this size (2**209 has 63 digits),
#: so their text stays within MAX_TRADE_ID_CHARS
_MAX_TEXT_INT_BITS = 209


class _PlanName(str):
    """A field path left at its default, the plan's name: optional in the feed."""


_TIMESTAMP, _SIDE, _SYMBOL, _TRADE_ID = map(_PlanName, ("timestamp", "side", "symbol", "trade_id"))


def _follow(steps: tuple, obj):
    """The value at a compiled dotted path, or None when the path is absent."""
    for key, index in steps:
        if type(obj) is dict:
            obj = obj.get(key)
        elif type(obj) is list and index is not None and -len(obj) <= index < len(obj):
            obj = obj[index]
        else:
            return None
    return obj


def _guarded(label: str, function: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """The user's function, where a failed lookup means 'absent' and any other
    failure becomes a reject instead of escaping the adapter."""

    def call(obj):
        try:
            return function(obj)
        except (LookupError, TypeError):
            return None
        except Exception as exc:
            raise Reject("adapter_error", f"{label}: {type(exc).__name__}: {exc}"[:200]) from None

    return call


def _getter(name: str, spec) -> Callable[[Any], Any] | None:
    """A field spec → a function from the trade object to its value (None: absent)."""
    if spec is None:
        return None
    if callable(spec):
        return _guarded(f"{name} function", spec)
    if isinstance(spec, str) and spec and all(spec.split(".")):
        steps = tuple(
            (part, int(part) if part.isascii() and part.lstrip("-").isdigit() else None)
            for part in spec.split(".")
        )
        return partial(_follow, steps)
    raise ValueError(f"{name} must be a dotted path such as 'data.p', a function of the trade "
                     f"object, or None; not {spec!r}")


def _symbol_name(text) -> str | None:
    """``btc/usdt`` → ``BTC-USDT``; a name with no quote in it (``AAPL``) is kept,
    upper-cased; None for anything that cannot be a symbol: only plain letters
    and digits, in one part or two, and at most MAX_SYMBOL_CHARS of them."""
    if type(text) is not str or len(text) > MAX_NATIVE_SYMBOL_CHARS:
        return None
    return _known_symbol_name(text)


@lru_cache(maxsize=4096)
def _known_symbol_name(text: str) -> str | None:
    parts = split_symbol(text)
    name = f"{parts[0]}-{parts[1]}" if parts else text.strip().upper()
    if len(name) <= MAX_SYMBOL_CHARS and (parts or (name.isascii() and name.isalnum())):
        return name
    return None


@lru_cache(maxsize=4096)
def _wire_symbol_name(text: str) -> str | None:
    """A symbol from the feed: as :func:`_symbol_name`, without the leniency
    for the user's typing (surrounding spaces)."""
    return _known_symbol_name(text) if wire_symbol_text(text) else None


def _as_text(message) -> str:
    if isinstance(message, str):
        return message
    if isinstance(message, dict):
        return orjson.dumps(message).decode()
    raise ValueError(f"a message to send must be JSON text or a dict, not {message!r:.80}")


def _messages(spec) -> list[str]:
    """``subscribe``/``ping`` value → the text frames to send."""
    if spec is None:
        return []
    if isinstance(spec, (list, tuple)):
        return [_as_text(m) for m in spec]
    return [_as_text(spec)]


class GenericAdapter(Adapter):
    name = "generic"
    native_example = "BTC-USDT"
    #: the subscription is the user's message, which may not select symbols at all
    trades_of_subscribed_symbols_only = False

    def __init__(
        self,
        *,
        url: str | None = None,
        subscribe: SubscribeSpec = None,
        trades: FieldSpec = None,
        price: FieldSpec = "price",
        volume: FieldSpec = "volume",
        timestamp: FieldSpec = _TIMESTAMP,
        timestamp_unit: str = "auto",
        side: FieldSpec = _SIDE,
        symbol: FieldSpec = _SYMBOL,
        trade_id: FieldSpec = _TRADE_ID,
        buy_values: Iterable = DEFAULT_BUY_VALUES,
        sell_values: Iterable = DEFAULT_SELL_VALUES,
        default_symbol: str | None = None,
        ids_consecutive: bool = False,
        ping: str | dict | None = None,
        ping_interval_s: float | None = None,
    ) -> None:
        if url is not None:
            ws_url(url)
        self._url = url
        if not callable(subscribe):
            _messages(subscribe)  # a bad message fails here, not after connecting
        self._subscribe = subscribe
        self._trades = _getter("trades", trades)
        if price is None or volume is None:
            raise ValueError("price and volume are what a trade is made of; give their paths "
                             "(e.g. price='data.p', volume='data.q')")
        self._fields = {}
        self._labels = {}
        self._required = set()
        for name, spec in (("price", price), ("volume", volume), ("timestamp", timestamp),
                           ("side", side), ("symbol", symbol), ("trade_id", trade_id)):
            self._fields[name] = _getter(name, spec)
            self._labels[name] = spec if isinstance(spec, str) else name
            if spec is not None and not isinstance(spec, _PlanName):
                self._required.add(name)
        if timestamp_unit not in TIME_UNITS:
            raise ValueError(f"timestamp_unit must be one of {', '.join(TIME_UNITS)}, "
                             f"not {timestamp_unit!r}")
        self._unit = timestamp_unit
        self._sides = self._side_table(buy_values, sell_values)
        self._default_symbol = None if default_symbol is None else self.normalise_symbol(
            default_symbol)
        self._subscribed: list[str] = []
        if ids_consecutive and trade_id is None:
            raise ValueError("ids_consecutive=True needs trade_id= pointing at integer ids")
        self.ids_consecutive = bool(ids_consecutive)
        pings = _messages(ping)
        if len(pings) > 1:
            raise ValueError("ping must be one message (JSON text or a dict)")
        self._ping = pings[0] if pings else None
        if ping_interval_s is not None and not (pings and ping_interval_s > 0):
            raise ValueError(f"ping_interval_s must be > 0 seconds and comes with ping=, "
                             f"not {ping_interval_s!r}")
        self.ping_interval_s = ping_interval_s or (DEFAULT_PING_INTERVAL_S if pings else None)

    @staticmethod
    def _side_table(buy_values: Iterable, sell_values: Iterable) -> dict:
        """Aggressor-side values (text compared without case) → BUY / SELL."""
        if isinstance(buy_values, str) or isinstance(sell_values, str):
            raise ValueError("buy_values and sell_values are collections, e.g. ('buy', 'b')")
        buys = {v.lower() if isinstance(v, str) else v for v in buy_values}
        sells = {v.lower() if isinstance(v, str) else v for v in sell_values}
        if buys & sells:
            raise ValueError(f"{sorted(map(str, buys & sells))} cannot be in both buy_values "
                             "and sell_values")
        return {**dict.fromkeys(buys, BUY), **dict.fromkeys(sells, SELL)}

    # --- symbols -----------------------------------------------------------
    def normalise_symbol(self, symbol: str) -> str:
        """``BASE-QUOTE`` for pair forms; any other plain name is kept, upper-cased."""
        name = _symbol_name(symbol)
        if name is None:
            raise ValueError(f"symbol {symbol!r} is not usable (expected e.g. 'BTC-USDT', "
                             "'btcusdt' or a name of letters and digits such as 'AAPL')")
        return name

    def native_symbol(self, symbol: str) -> str:
        return self.normalise_symbol(symbol)

    # --- wire --------------------------------------------------------------
    def url(self, base_url: str | None, symbols: list[str]) -> str:
        """``base_url`` (the collector's ``url=``) or this adapter's ``url=``; there
        is no default endpoint. Builds the subscribe messages to fail early."""
        self.subscribe_messages(symbols)
        url = base_url or self._url
        if not url:
            raise ValueError("the generic venue has no default endpoint; pass url='wss://…', "
                             "e.g. rtkit.collect('generic', ['BTC-USDT'], url='wss://host/feed')")
        return url

    def subscribe_messages(self, symbols: list[str]) -> list[str]:
        """The ``subscribe`` messages (a function gets the symbols); also remembers
        the symbols, since a lone one is the fallback for trades without a symbol."""
        self._subscribed = list(symbols)
        spec = self._subscribe(list(symbols)) if callable(self._subscribe) else self._subscribe
        return _messages(spec)

    def ping_message(self) -> str | None:
        return self._ping

    # --- frames ------------------------------------------------------------
    def parse(self, frame, received_at_ns: int):
        msg = loads(frame)
        content = msg if self._trades is None else self._trades(msg)
        if type(content) is list:
            if not content:
                return Control("info", "a batch without trades")
            seen: dict[str, int] = {}
            return each_trade(content, lambda item: self._tick(item, received_at_ns, seen))
        if type(content) is dict and (self._trades is not None or not self._is_control(content)):
            return [self._tick(content, received_at_ns, {})]
        if content is None or type(content) is dict:
            return self._control(msg)
        raise Reject("unknown_message", f"expected trade objects, got {type(content).__name__}")

    def _is_control(self, obj: dict) -> bool:
        price, volume = self._fields["price"], self._fields["volume"]
        assert price is not None and volume is not None  # both required by __init__
        return price(obj) is None and volume(obj) is None

    @staticmethod
    def _control(msg) -> Control:
        if type(msg) is not dict:
            raise Reject("unknown_message", "neither a trade nor a JSON object")
        is_error = msg.get("error") or "error" in (msg.get("event"), msg.get("type"))
        try:
            detail = orjson.dumps(msg)[:200].decode("utf-8", "replace")
        except TypeError:  # nested deeper than orjson writes
            detail = f"{msg!r:.200}"
        return Control("error" if is_error else "info", detail)

    def _get(self, name: str, obj):
        """The raw value of field ``name``, None when the feed lacks it (a
        ``missing_field`` reject when the user named the field)."""
        getter = self._fields[name]
        value = None if getter is None else getter(obj)
        if value is None and name in self._required:
            raise Reject("missing_field", self._labels[name])
        return value

    def _tick(self, obj, received_at_ns: int, seen: dict[str, int]) -> tuple:
        raw_price, raw_volume = self._get("price", obj), self._get("volume", obj)
        price = positive(raw_price, self._labels["price"])
        volume = positive(raw_volume, self._labels["volume"])
        raw_ts = self._get("timestamp", obj)
        ts = received_at_ns if raw_ts is None else trade_time_ns(raw_ts, self._unit)
        side = self._side(self._get("side", obj))
        symbol = self._symbol(self._get("symbol", obj))
        raw_id = self._get("trade_id", obj)
        if raw_id is None:
            key = f"{symbol}\x1f{ts}\x1f{raw_price}\x1f{raw_volume}\x1f{side}"
            n = seen.get(key, 0)
            seen[key] = n + 1
            tid = hashlib.blake2b(f"{key}\x1f{n}".encode("utf-8", "backslashreplace"),
                                  digest_size=8).hexdigest()
        else:
            tid = self._trade_id(raw_id)
        return (symbol, tid, ts, price, volume, side)

    def _side(self, value) -> int:
        if value is None:
            return UNKNOWN_SIDE
        try:
            return self._sides[value.lower() if type(value) is str else value]
        except (KeyError, TypeError):
            raise Reject("bad_side", f"{self._labels['side']}={value!r:.40}") from None

    def _symbol(self, value) -> str:
        if value is None:
            if self._default_symbol:
                return self._default_symbol
            if len(self._subscribed) == 1:
                return self._subscribed[0]
            raise Reject("missing_field", "symbol (none in the trade: give symbol= a path, "
                                          "or default_symbol=)")
        if type(value) is int and 0 <= value < 10**MAX_SYMBOL_CHARS:
            value = str(value)
        too_long = type(value) is not str or len(value) > MAX_NATIVE_SYMBOL_CHARS
        name = None if too_long else _wire_symbol_name(value)  # never cache megabytes
        if name is None:
            raise Reject("unknown_symbol", f"{value!r:.40}")
        return name

    def _trade_id(self, value):
        """Ints stay ints (as text beyond int64), text stays text; with
        ``ids_consecutive`` only whole numbers will do."""
        if self.ids_consecutive:
            return whole_number(value, self._labels["trade_id"])
        if type(value) is int:
            if -MAX_ID - 1 <= value <= MAX_ID:
                return value
            if value.bit_length() <= _MAX_TEXT_INT_BITS:
                return str(value)
            raise Reject("out_of_range", f"{self._labels['trade_id']}: an int of "
                                         f"{value.bit_length()} bits")
        return text_id(value, self._labels["trade_id"])


ADAPTERS = {"generic": GenericAdapter}
