"""Kraken spot WebSocket v2 ``trade`` channel; with the ``quotes`` and ``book`` kinds
also ``ticker`` with ``event_trigger: "bbo"`` (a frame per best bid/offer change) and
``book`` (depth 10, 25, 100, 500 or 1000: a snapshot, then updates, each with the
CRC32 checksum of the top 10 levels).

Wire format: Kraken's WebSocket v2 "Trade", "Ticker" and "Book" references,
https://docs.kraken.com/api/docs/websocket-v2/trade (and ``/ticker``, ``/book``).
Book frames are read from their text by :mod:`rtkit.books.parse.kraken`, which keeps
each number's digits (the checksum is computed from them); the local book is cut
to the subscribed depth after every update (Kraken sends no removal for a level
pushed out of range). A resync is an unsubscribe and a subscribe of the symbol's
book: Kraken answers the subscribe with a fresh snapshot.

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

from rtkit.kinds import Rows
from rtkit.validate import Reject, field, iso_ns, positive, side_code, whole_number
from rtkit.venues.base import Adapter, Control, NativeSymbols, each_trade, loads
from rtkit.venues.kraken_symbols import kraken_symbol_parts

#: the book depths Kraken offers (v1 and v2), and the one taken without depth= (Kraken's own)
BOOK_DEPTHS = (10, 25, 100, 500, 1000)
DEFAULT_BOOK_DEPTH = 10
#: how a v2 book frame starts (orjson writes keys in order; Kraken sends ``channel`` first)
_BOOK_FRAME = b'{"channel":"book"'


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

    def configure(self, kinds: tuple[str, ...], depth: int | None) -> None:
        if depth is not None and depth not in BOOK_DEPTHS:
            raise ValueError(f"{self.name} books come at depth "
                             f"{', '.join(map(str, BOOK_DEPTHS))}; pass depth= one of those, "
                             f"not {depth!r}")
        super().configure(kinds, depth)

    def book_max_levels(self) -> int | None:
        """The subscribed depth: Kraken's checksum needs the book cut to it."""
        return self.depth or DEFAULT_BOOK_DEPTH

    def _next_request_id(self) -> int:
        return next(self._request_ids)


class KrakenAdapter(KrakenBase):
    name = "kraken"
    default_url = "wss://ws.kraken.com/v2"
    ids_consecutive = True
    kinds = ("trades", "quotes", "book")

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
        """One request per channel for all symbols: v2 documents no per-request symbol
        limit. Books and quotes only when those kinds are collected."""
        from rtkit.books.parse.kraken import SYMBOLS

        natives = [self.native_symbol(s) for s in symbols]
        for native, symbol in zip(natives, symbols, strict=True):
            SYMBOLS.learn(native, self.normalise_symbol(symbol))
        out = []
        if "trades" in self.collected:
            out.append(self._request("subscribe", {"channel": "trade", "symbol": natives,
                                                   "snapshot": self.snapshot}))
        if "quotes" in self.collected:
            out.append(self._request("subscribe", {"channel": "ticker", "symbol": natives,
                                                   "event_trigger": "bbo"}))
        if "book" in self.collected:
            out += self._book_requests(("subscribe",), natives)
        return out

    def book_resubscribe_messages(self, symbols: list[str]) -> list[str]:
        """Unsubscribe then subscribe the books: Kraken answers with a fresh snapshot."""
        return self._book_requests(("unsubscribe", "subscribe"),
                                   [self.native_symbol(s) for s in symbols])

    def _book_requests(self, methods: tuple[str, ...], natives: list[str]) -> list[str]:
        params = {"channel": "book", "symbol": natives,
                  "depth": self.depth or DEFAULT_BOOK_DEPTH}
        return [self._request(method, dict(params, snapshot=True) if method == "subscribe"
                              else params) for method in methods]

    def _request(self, method: str, params: dict) -> str:
        return orjson.dumps({"method": method, "params": params,
                             "req_id": self._next_request_id()}).decode()

    def ping_message(self) -> str:
        return '{"method":"ping","req_id":%d}' % self._next_request_id()

    def parse(self, frame, received_at_ns: int):
        if type(frame) is bytes and frame.startswith(_BOOK_FRAME) or \
                type(frame) is str and frame.startswith(_BOOK_FRAME.decode()):
            return self._books(frame, received_at_ns)  # straight from the text: its digits
        msg = loads(frame)
        if type(msg) is not dict:
            raise Reject("unknown_message", "not a JSON object")
        channel = msg.get("channel")
        if channel == "book":  # keys in another order: read again, keeping the digits
            return self._books(frame, received_at_ns)
        if channel == "ticker":
            return self._books(msg, received_at_ns)
        if channel != "trade":
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

    def _books(self, frame, received_at_ns: int):
        """A ``book`` frame → ``Rows(book=…)``; a ``ticker`` (BBO) frame → ``Rows(quotes=…)``;
        either is an ``unknown_message`` where its kind is not collected."""
        from rtkit.books.parse import kraken as book_parser

        if "book" not in self.collected and "quotes" not in self.collected:
            raise Reject("unknown_message", "a book or ticker frame, but neither books nor "
                         "quotes are collected")
        parsed = book_parser.parse(frame, received_at_ns)
        if parsed.book:
            return Rows(book=parsed.book)
        if parsed.quotes:
            return Rows(quotes=parsed.quotes)
        return Control("info", "book or ticker frame with no data")

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
