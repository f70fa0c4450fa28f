"""Kraken spot WebSocket v1 (legacy, frozen) ``trade``; with the ``quotes`` and ``book``
kinds also ``spread`` (the best bid and offer) and ``book`` (``book-<depth>``, depth
10, 25, 100, 500 or 1000: an ``as``/``bs`` snapshot, then ``a``/``b`` updates whose
last object carries the checksum ``c``).

Wire format: Kraken's spot WebSocket v1 "trade", "spread" and "book" references,
https://docs.kraken.com/api/docs/websocket-v1/trade (and ``/spread``, ``/book``).
Book frames are read by :mod:`rtkit.books.parse.kraken_v1` (levels republished
with ``"r"`` and a price repeated inside one message are applied in order); the
local book is cut to the subscribed depth after every update. A resync is an
unsubscribe and a subscribe of the pair's book, answered with a fresh snapshot.

Trades arrive as arrays, ``[channelID, [[price, volume, time, side,
orderType, misc], …], "trade", "XBT/USD"]``, every value a string, the time
in seconds with µs decimals and the side the taker's (``b``/``s``).

v1 gives trades no id. :func:`synthetic_trade_id` makes one from the trade's
own fields, so the same trade sent again (the 50-trade snapshot that follows
every subscribe, a replay) gets the same id and SQLite keeps it once. Such ids
say nothing about missed trades, so no gap is ever reported for v1.
"""

from __future__ import annotations

import hashlib

import orjson

from rtkit.kinds import Rows
from rtkit.validate import Reject, epoch_ns, positive, side_code
from rtkit.venues.base import Control, each_trade, loads
from rtkit.venues.kraken import DEFAULT_BOOK_DEPTH, KrakenBase
from rtkit.venues.kraken_symbols import COMMON_TO_LEGACY

_ID_MASK = (1 << 63) - 1


def synthetic_trade_id(entry: list, occurrence: int = 0) -> int:
    """A stable 63-bit id for one v1 trade entry: a hash of its exact fields and of
    ``occurrence``, the count of identical entries before it in the same frame.

    Two fills of one taker order that match in price, volume, microsecond and
    type stay two trades; such twins are expected to share a frame both live
    and in the snapshot, so they number the same both times. (A frame boundary
    between twins would renumber them: one row too many or too few, never a
    crash.) The ids are stored: changing this function breaks dedup against
    databases written before.
    """
    digest = hashlib.blake2b(orjson.dumps(entry) + b"#%d" % occurrence, digest_size=8).digest()
    return int.from_bytes(digest, "big") & _ID_MASK


class KrakenV1Adapter(KrakenBase):
    name = "kraken-v1"
    default_url = "wss://ws.kraken.com"
    native_example = "XBT/USD"
    ids_consecutive = False  # no trade ids on the wire; ours are hashes
    kinds = ("trades", "quotes", "book")

    def native_symbol(self, symbol: str) -> str:
        """``BTC-USD`` → ``XBT/USD``: v1 wants Kraken's legacy asset codes."""
        base, quote = self.normalise_symbol(symbol).split("-")
        return f"{COMMON_TO_LEGACY.get(base, base)}/{COMMON_TO_LEGACY.get(quote, quote)}"

    def subscribe_messages(self, symbols: list[str]) -> list[str]:
        """One request per channel for all pairs (v1 documents no per-request limit);
        books and spreads only when those kinds are collected."""
        from rtkit.books.parse.kraken_v1 import SYMBOLS

        pairs = [self.native_symbol(s) for s in symbols]
        for pair, symbol in zip(pairs, symbols, strict=True):
            SYMBOLS.learn(pair, self.normalise_symbol(symbol))
        out = []
        if "trades" in self.collected:
            out.append(self._request("subscribe", pairs, {"name": "trade"}))
        if "quotes" in self.collected:
            out.append(self._request("subscribe", pairs, {"name": "spread"}))
        if "book" in self.collected:
            out.append(self._request("subscribe", pairs, self._book_subscription()))
        return out

    def book_resubscribe_messages(self, symbols: list[str]) -> list[str]:
        """Unsubscribe then subscribe the books: Kraken answers with a fresh snapshot."""
        pairs = [self.native_symbol(s) for s in symbols]
        return [self._request(event, pairs, self._book_subscription())
                for event in ("unsubscribe", "subscribe")]

    def _book_subscription(self) -> dict:
        return {"name": "book", "depth": self.depth or DEFAULT_BOOK_DEPTH}

    def _request(self, event: str, pairs: list[str], subscription: dict) -> str:
        return orjson.dumps({"event": event, "pair": pairs, "subscription": subscription,
                             "reqid": self._next_request_id()}).decode()

    def ping_message(self) -> str:
        return '{"event":"ping","reqid":%d}' % self._next_request_id()

    def parse(self, frame, received_at_ns: int):
        msg = loads(frame)
        if type(msg) is dict:
            return self._control(msg)
        if type(msg) is list and len(msg) >= 4 and msg[-2] != "trade":
            return self._books(msg, received_at_ns)
        if type(msg) is not list or len(msg) != 4 or msg[2] != "trade":
            raise Reject("unknown_message", "not a v1 trade array or event object")
        entries = msg[1]
        if type(entries) is not list:
            raise Reject("unknown_message", f"trades are {type(entries).__name__}, not a list")
        if not entries:
            return Control("info", "trade message with no trades")
        symbol = self._symbol(msg[3])
        seen: dict[bytes, int] = {}
        return each_trade(entries, lambda entry: self._trade(symbol, entry, seen))

    def _books(self, msg: list, received_at_ns: int):
        """A ``book-<depth>`` frame → ``Rows(book=…)``; a ``spread`` frame → ``Rows(quotes=…)``
        (v1 sends every number as text, so the parsed frame keeps the digits); either is
        an ``unknown_message`` where its kind is not collected."""
        from rtkit.books.parse import kraken_v1 as book_parser

        if "book" not in self.collected and "quotes" not in self.collected:
            raise Reject("unknown_message", f"a {msg[-2]!r:.20} frame, but neither books nor "
                         "quotes are collected")
        parsed = book_parser.parse(msg, received_at_ns)
        if parsed.book:
            return Rows(book=parsed.book)
        if parsed.quotes:
            return Rows(quotes=parsed.quotes)
        raise Reject("unknown_message", f"channel {msg[-2]!r:.40}")

    @staticmethod
    def _trade(symbol: str, entry, seen: dict[bytes, int]) -> tuple:
        if type(entry) is not list or len(entry) < 4:
            raise Reject("missing_field", f"trade entry {entry!r:.60}")
        try:
            key = orjson.dumps(entry)
        except TypeError:  # nested deeper than orjson writes (loads accepts more)
            raise Reject("unknown_message", "trade entry nested too deep") from None
        occurrence = seen.get(key, 0)
        seen[key] = occurrence + 1
        return (
            symbol,
            synthetic_trade_id(entry, occurrence),
            epoch_ns(entry[2], "s"),
            positive(entry[0], "price"),
            positive(entry[1], "volume"),
            side_code(entry[3], "b", "s"),
        )

    @staticmethod
    def _control(msg: dict) -> Control:
        event = msg.get("event")
        if event == "heartbeat":
            return Control("heartbeat")
        if event == "pong":
            return Control("pong", f"reqid={msg.get('reqid')}")
        if event == "systemStatus":
            return Control("info", f"system {msg.get('status')} version {msg.get('version')}")
        if event == "error":
            return Control("error", f"{msg.get('errorMessage')}")
        if event == "subscriptionStatus":
            status, pair = msg.get("status"), msg.get("pair")
            if status == "subscribed":
                return Control("ack", f"{pair}")
            if status == "error":
                return Control("error", f"{pair}: {msg.get('errorMessage')}")
            return Control("info", f"{pair} {status}")
        raise Reject("unknown_message", f"event={event!r:.40}")


ADAPTERS = {"kraken-v1": KrakenV1Adapter}
