"""Kraken WebSocket v1 (legacy), server side: ``systemStatus`` on connect, one
``subscriptionStatus`` per pair, pongs, heartbeats, and trade arrays per pair
with every value a string and no trade id; the last trades of each pair
again after every subscribe, in the same shape.

Books and quotes: ``book`` (channel ``book-<depth>``: an ``as``/``bs`` snapshot
without checksum on every subscribe, then ``a``/``b`` updates, in two objects
when both sides changed, the checksum ``c`` in the last) and ``spread``. The
client's view of a book is the top ``depth`` levels (the v2 dialect's
:class:`~rtkit.sim.dialects.kraken.BookViews`); a level that comes back into
view from below is republished with a 4th field ``"r"``, and every
``REPEAT_EVERY``-th update sends one changed price twice, first with a size
that is then overwritten (Kraken does both). Prices have 5 decimals and
volumes 8, as v1 writes them for XBT/USD.
"""

from __future__ import annotations

import zlib

import orjson

from rtkit.sim.dialects.base import Dialect, Session, batches_by_symbol
from rtkit.sim.dialects.kraken import (
    QTY_DECIMALS,
    BookViews,
    book_depth,
    checksum,
    ends_taker_order,
    fixed,
    order_type,
    snapshot_batches,
)  # fmt: skip
from rtkit.sim.market import SimTrade
from rtkit.venues.kraken_v1 import KrakenV1Adapter, synthetic_trade_id

_STATUS = ('{"connectionID":8628615390848610000,"event":"systemStatus",'
           '"status":"online","version":"1.9.1"}')
_SUBSCRIPTION = {"name": "trade"}
_NAMES = ("trade", "book", "spread")
#: decimals of a v1 price (XBT/USD's, whatever the simulated tick)
PRICE_DECIMALS = 5
#: every this many updates, one changed price is sent twice in the message
REPEAT_EVERY = 7


def _channel_id(symbol: str) -> int:
    return zlib.crc32(symbol.encode()) & 0xFFFF


def trade_entry(trade: SimTrade) -> list[str]:
    """One trade as v1 sends it: price, volume, time, side, order type, misc."""
    secs, ns = divmod(trade.ts_ns, 10**9)
    return [trade.price, trade.volume, "%d.%06d" % (secs, ns // 1000), trade.side[0],
            order_type(trade)[0], ""]


class KrakenV1Dialect(Dialect):
    venue = "kraken-v1"
    path = "/"
    heartbeat_interval_s = 1.0
    max_batch = 50
    example_symbols = ("BTC-USD", "ETH-USD")

    has_books = True

    def __init__(self) -> None:
        self._symbols = KrakenV1Adapter()  # the venue's own symbol rules
        self.views = BookViews()
        self._updates = 0
        self._digits: dict = {}  # a level → its part of the checksum's text

    def greeting(self, session: Session) -> list[str]:
        return [_STATUS]

    def on_message(self, text: str, session: Session) -> list[str]:
        try:
            msg = orjson.loads(text)
            event, req_id = msg.get("event"), msg.get("reqid")
        except (orjson.JSONDecodeError, AttributeError):
            return ['{"event":"error","errorMessage":"Malformed request"}']
        if event == "ping":
            return [orjson.dumps({"event": "pong", "reqid": req_id}).decode()]
        if event not in ("subscribe", "unsubscribe"):
            return [orjson.dumps({"event": "error", "errorMessage": f"Unsupported event {event}",
                                  "reqid": req_id}).decode()]
        subscription = msg.get("subscription")
        name = subscription.get("name") if type(subscription) is dict else None
        if name not in _NAMES or name == "trade" and (subscription != _SUBSCRIPTION
                                                      or event == "unsubscribe"):
            return [orjson.dumps({"event": "error", "errorMessage": "Subscription name invalid",
                                  "reqid": req_id}).decode()]
        depth = book_depth(subscription.get("depth"))
        if name == "book" and depth is None:
            return [orjson.dumps({"event": "error", "errorMessage": "Subscription depth not "
                                  "supported", "reqid": req_id}).decode()]
        channel = f"book-{depth}" if name == "book" else name
        replies = []
        for native in msg.get("pair") or []:
            try:
                symbol = self._symbols.normalise_symbol(native)
            except ValueError:
                replies.append(self._error(str(native), "Currency pair not in ISO 4217-A3 format"))
                continue
            subscribe = event == "subscribe"
            if name == "trade":
                session.subscribe([symbol])
            elif name == "spread":
                (session.quotes.add if subscribe else session.quotes.discard)(symbol)
            elif subscribe:
                session.subscribe_book(symbol, depth or 10)
            else:
                session.unsubscribe_book(symbol)
            pair = self._symbols.native_symbol(symbol)
            replies.append(orjson.dumps({
                "channelID": _channel_id(symbol), "channelName": channel,
                "event": "subscriptionStatus", "pair": pair, "reqid": req_id,
                "status": "subscribed" if subscribe else "unsubscribed",
                "subscription": subscription}).decode())
        return replies

    @staticmethod
    def _error(pair: str, message: str) -> str:
        return orjson.dumps({"errorMessage": f"{message} {pair}", "event": "subscriptionStatus",
                             "pair": pair, "status": "error",
                             "subscription": _SUBSCRIPTION}).decode()

    def encode(self, trades: list[SimTrade]) -> list[str]:
        return self._frames(batches_by_symbol(trades, self.max_batch, ends_taker_order))

    def encode_overlap(self, trades: list[SimTrade]) -> list[str]:
        return self._frames(snapshot_batches(trades))

    def _frames(self, batches: list[list[SimTrade]]) -> list[str]:
        return [
            orjson.dumps([_channel_id(batch[0].symbol), [trade_entry(t) for t in batch],
                          "trade", self._symbols.native_symbol(batch[0].symbol)]).decode()
            for batch in batches
        ]

    def heartbeat(self, session: Session) -> str | None:
        return '{"event":"heartbeat"}'

    # --- books and quotes ------------------------------------------------------------
    @staticmethod
    def price_text(book):
        """Prices with v1's 5 decimals."""
        return lambda text: fixed(text, PRICE_DECIMALS)

    def book_text(self, book, depth: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """The top ``depth`` levels of a simulated book as this dialect writes them."""
        bids, asks, _ = book.snapshot(depth)
        price = self.price_text(book)
        return ([(price(p), fixed(q, QTY_DECIMALS)) for p, q in bids],
                [(price(p), fixed(q, QTY_DECIMALS)) for p, q in asks])

    def encode_book(self, symbol: str, snapshot: bool, bids: list[tuple[str, str]],
                    asks: list[tuple[str, str]], seq: int, prev_seq: int, ts_ns: int,
                    book, depth: int) -> str | None:
        price = self.price_text(book)
        secs, ns = divmod(ts_ns, 10**9)
        when = "%d.%06d" % (secs, ns // 1000)
        head = "[%d," % _channel_id(symbol)
        tail = ',"book-%d","%s"]' % (depth, self._symbols.native_symbol(symbol))
        if snapshot:
            self.views.reset(symbol, book, depth)
            bid_levels, ask_levels = self.book_text(book, depth)
            return head + orjson.dumps({
                "as": [[p, q, when] for p, q in ask_levels],
                "bs": [[p, q, when] for p, q in bid_levels]}).decode() + tail
        change = self.views.change(symbol, book, depth, bids, asks)
        if not change.bids and not change.asks:
            return None  # nothing within the subscribed depth changed
        self._updates += 1
        repeat = self._updates % REPEAT_EVERY == 0
        parts: dict[str, list] = {}
        for key, levels in (("a", change.asks), ("b", change.bids)):
            if not levels:
                continue
            out = []
            for t, size, republished in levels:
                level = [price(book.price_text(t)), fixed(size, QTY_DECIMALS), when]
                if republished:
                    level.append("r")
                elif repeat and size != "0":  # sent twice: the second one stands
                    out.append([level[0], fixed("0", QTY_DECIMALS), when])
                    repeat = False
                out.append(level)
            parts[key] = out
        objects: list[dict[str, object]] = [{key: levels} for key, levels in parts.items()]
        objects[-1]["c"] = str(checksum(book, price, self._digits))
        return head + ",".join(orjson.dumps(o).decode() for o in objects) + tail

    def encode_quote(self, symbol: str, bid: tuple[str, str], ask: tuple[str, str], seq: int,
                     ts_ns: int) -> str | None:
        secs, ns = divmod(ts_ns, 10**9)
        price = self.price_text(None)
        return orjson.dumps([_channel_id(symbol), [
            price(bid[0]), price(ask[0]), "%d.%06d" % (secs, ns // 1000),
            fixed(bid[1], QTY_DECIMALS), fixed(ask[1], QTY_DECIMALS)], "spread",
            self._symbols.native_symbol(symbol)]).decode()

    def expected_trade_id(self, trade: SimTrade) -> str:
        """The synthetic id the adapter derives (no identical twin in the same frame)."""
        return str(synthetic_trade_id(trade_entry(trade)))

    def subscription_error(self, symbol: str) -> str:
        return self._error(self._symbols.native_symbol(symbol), "Currency pair not supported")


DIALECTS = {"kraken-v1": KrakenV1Dialect}
