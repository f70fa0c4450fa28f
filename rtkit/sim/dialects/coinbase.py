"""Coinbase, server side: Advanced Trade ``market_trades`` and Exchange ``matches``.

Both answer a subscribe with the venue's ``subscriptions`` message, send a
heartbeat every second once the heartbeat channel is subscribed, and give
the maker's side in ``side`` (the opposite of the simulated taker).
Everything a trade frame holds is derived from the trade, so runs repeat.
"""

from __future__ import annotations

import itertools
import time
import uuid
import weakref

import orjson

from rtkit.sim.dialects.base import Dialect, Session, iso_time
from rtkit.sim.market import SimTrade


def _request(text: str, kinds: tuple[str, ...] = ("subscribe",)) -> dict | None:
    """A client's subscribe (or another of ``kinds``) message, or None when it is not one."""
    try:
        msg = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return msg if type(msg) is dict and msg.get("type") in kinds else None


#: what an Advanced Trade frame carries in ``sequence_num`` until the sender numbers it
_UNNUMBERED = '"sequence_num":-1,'
#: the snapshot depth of a simulated ``level2`` subscription: every level (Coinbase
#: sends the whole book)
_FULL_DEPTH = 1_000_000


#: the Exchange channels the simulator speaks; ``level2_batch`` is the book
_L2 = "level2_batch"
_EXCHANGE_CHANNELS = frozenset({"matches", "heartbeat", _L2, "ticker"})
#: the depth a ``level2_batch`` snapshot has: the whole simulated book
_WHOLE_BOOK = 1_000_000


def _exchange_request(text: str) -> dict | None:
    """An Exchange ``subscribe`` or ``unsubscribe`` message, or None."""
    try:
        msg = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    ok = type(msg) is dict and msg.get("type") in ("subscribe", "unsubscribe")
    return msg if ok else None


def _products(value) -> list[str] | None:
    """A non-empty list of product ids, or None."""
    if type(value) is list and value and all(type(p) is str and p for p in value):
        return value
    return None


def _maker_side(trade: SimTrade) -> str:
    """The maker's side, which Coinbase sends: the simulated taker's opposite."""
    return "sell" if trade.side == "buy" else "buy"


class CoinbaseAdvancedTradeDialect(Dialect):
    """``market_trades`` and ``heartbeats`` on the Advanced Trade endpoint.

    The venue batches each 250 ms of trades into one ``update``; the simulator
    steps every few milliseconds, so it batches a deterministic share instead
    (a trade whose id is a multiple of 3 joins the frame before it): frames
    carry one to a few trades of several products, as a quiet market does,
    and faults counted in frames still bite. The order of trades inside an
    event is not documented; the simulator sends them newest first, the
    harder case for a client. Trades re-sent after a subscribe go out as one
    ``snapshot`` event per product.

    Books: ``level2`` (frames on channel ``l2_data``: the whole book as a
    ``snapshot`` event after each subscribe, then ``update`` events whose
    ``new_quantity`` is the level's size, 0 removing it) and ``ticker`` (the best
    bid and offer; the venue sends it on trades, the simulator on each change of
    the top); unsubscribe too. Every frame's ``sequence_num`` is the connection's
    running number, from 0, set by the sender as the frame goes out
    (``numbers_frames``), so a frame a fault loses or swaps leaves the hole the
    client must see. With ``trace=True`` the dialect remembers which book message
    each number carried (:attr:`book_numbers`), for tests.
    """

    venue = "coinbase"
    heartbeat_interval_s = 1.0
    max_batch = 100
    example_symbols = ("BTC-USD", "ETH-USD")
    has_books = True
    numbers_frames = True

    def __init__(self, trace: bool = False) -> None:
        self._beats = itertools.count(1)
        self._numbers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # ws → count
        self._trace = trace
        self._untraced: dict[str, tuple[str, int]] = {}  # book frame → (symbol, seq)
        #: ``sequence_num`` → ``(symbol, seq)`` of the book message it carried (``trace``)
        self.book_numbers: dict[int, tuple[str, int]] = {}

    def on_message(self, text: str, session: Session) -> list[str]:
        msg = _request(text, ("subscribe", "unsubscribe")) or {}
        channel, subscribe = msg.get("channel"), msg.get("type") == "subscribe"
        products = _products(msg.get("product_ids"))
        if channel == "market_trades" and products:
            if subscribe:
                session.subscribe(products)
            else:
                session.symbols[:] = [s for s in session.symbols if s not in products]
        elif channel == "level2" and products:
            for product in products:
                if subscribe:
                    session.subscribe_book(product, _FULL_DEPTH)
                else:
                    session.unsubscribe_book(product)
        elif channel == "ticker" and products:
            for product in products:
                (session.quotes.add if subscribe else session.quotes.discard)(product)
        elif channel == "heartbeats":
            (session.channels.add if subscribe else session.channels.discard)("heartbeats")
        else:
            return ['{"type":"error","message":"failure to subscribe"}']
        subscriptions: dict[str, list[str]] = (
            {"market_trades": session.symbols} if session.symbols else {})
        if session.books:
            subscriptions["level2"] = sorted(session.books)
        if session.quotes:
            subscriptions["ticker"] = sorted(session.quotes)
        if "heartbeats" in session.channels:
            subscriptions["heartbeats"] = ["heartbeats"]
        return [self._envelope("subscriptions", [{"subscriptions": subscriptions}], iso_time())]

    def number(self, ws, frame: str) -> str:
        if _UNNUMBERED not in frame:
            return frame  # numbered already (a duplicate, a frame held back)
        counter = self._numbers.get(ws)
        if counter is None:
            counter = self._numbers[ws] = itertools.count()
        n = next(counter)
        if self._trace and (book := self._untraced.pop(frame, None)) is not None:
            self.book_numbers[n] = book
        return frame.replace(_UNNUMBERED, f'"sequence_num":{n},', 1)

    def encode_book(self, symbol: str, snapshot: bool, bids: list[tuple[str, str]],
                    asks: list[tuple[str, str]], seq: int, prev_seq: int, ts_ns: int,
                    book, depth: int) -> str:
        at = iso_time(ts_ns)
        updates = ([{"side": "bid", "event_time": at, "price_level": p, "new_quantity": q}
                    for p, q in bids]
                   + [{"side": "offer", "event_time": at, "price_level": p, "new_quantity": q}
                      for p, q in asks])
        frame = self._envelope("l2_data", [{"type": "snapshot" if snapshot else "update",
                                            "product_id": symbol, "updates": updates}], at)
        if self._trace:
            self._untraced[frame] = (symbol, seq)
        return frame

    def encode_quote(self, symbol: str, bid: tuple[str, str], ask: tuple[str, str], seq: int,
                     ts_ns: int) -> str | None:
        ticker = {"type": "ticker", "product_id": symbol, "price": bid[0],
                  "best_bid": bid[0], "best_bid_quantity": bid[1],
                  "best_ask": ask[0], "best_ask_quantity": ask[1]}
        return self._envelope("ticker", [{"type": "update", "tickers": [ticker]}],
                              iso_time(ts_ns))

    def encode(self, trades: list[SimTrade]) -> list[str]:
        batches: list[list[SimTrade]] = []
        for t in trades:
            if batches and len(batches[-1]) < self.max_batch and t.trade_id % 3 == 0:
                batches[-1].append(t)
            else:
                batches.append([t])
        return [self._trades_frame("update", [batch]) for batch in batches]

    def encode_overlap(self, trades: list[SimTrade]) -> list[str]:
        by_product: dict[str, list[SimTrade]] = {}
        for t in trades:
            by_product.setdefault(t.symbol, []).append(t)
        return [self._trades_frame("snapshot", list(by_product.values()))]

    def heartbeat(self, session: Session) -> str | None:
        if "heartbeats" not in session.channels:
            return None
        now = time.time_ns()
        secs, ns = divmod(now, 10**9)
        # a Go time.String() rendering, which is what the venue sends: not ISO
        current = (time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(secs))
                   + f".{ns:09d} +0000 UTC m=+{time.monotonic():.9f}")
        event = {"current_time": current, "heartbeat_counter": next(self._beats)}
        return self._envelope("heartbeats", [event], iso_time(now))

    def subscription_error(self, symbol: str) -> str:
        return '{"type":"error","message":"failure to subscribe"}'

    def _trades_frame(self, kind: str, groups: list[list[SimTrade]]) -> str:
        """One frame with an event of ``kind`` per group, trades newest first."""
        events = [
            {"type": kind, "trades": [
                {"trade_id": str(t.trade_id), "product_id": t.symbol, "price": t.price,
                 "size": t.volume, "side": _maker_side(t).upper(), "time": iso_time(t.ts_ns)}
                for t in reversed(group)
            ]}
            for group in groups
        ]
        return self._envelope("market_trades", events, iso_time(groups[-1][-1].ts_ns))

    @staticmethod
    def _envelope(channel: str, events: list, timestamp: str) -> str:
        return orjson.dumps({"channel": channel, "client_id": "", "timestamp": timestamp,
                             "sequence_num": -1, "events": events}).decode()


class CoinbaseExchangeDialect(Dialect):
    """``matches`` and ``heartbeat`` on the Exchange feed: one match per frame.

    The venue's first message after a subscribe is a ``last_match``; here the
    first re-sent trade of each product is one. ``sequence`` counts messages per
    product across all channels, so in ``matches`` alone it jumps (here by 3).
    Order ids are UUIDs derived from the trade. Subscribe requests name their
    channels as strings (the form rtkit sends). One heartbeat a second goes to
    each subscribed product in turn; ``last_trade_id`` is 0, as some clients
    report it from the real feed.

    Books: ``level2_batch`` sends the whole book as a ``snapshot``, then
    ``l2update`` messages of ``[side, price, size]`` changes (size absolute,
    ``"0"`` removes), with the venue's ``time`` and no sequence; an
    ``unsubscribe`` of it and a new ``subscribe`` bring a new snapshot. ``ticker``
    carries ``best_bid``/``best_ask`` with sizes and the product's ``sequence``
    (here: each time the top of the book changes). The REST side's
    ``/products/{id}/book?level=2`` answers from the same books.
    """

    venue = "coinbase-exchange"
    heartbeat_interval_s = 1.0
    example_symbols = ("BTC-USD", "ETH-USD")
    has_books = True

    def __init__(self) -> None:
        self._beats = itertools.count()

    def on_message(self, text: str, session: Session) -> list[str]:
        msg = _exchange_request(text)
        products = _products(msg.get("product_ids")) if msg else None
        channels = msg.get("channels") if msg else None
        if not msg or not products or type(channels) is not list or not channels:
            return [self._error("Failed to subscribe", "type, product_ids and channels are "
                                "required")]
        for name in channels:
            if name not in _EXCHANGE_CHANNELS:
                return [self._error("Failed to subscribe", f"{name} is not a valid channel")]
        subscribe = msg["type"] == "subscribe"
        if "matches" in channels:
            if subscribe:
                session.subscribe(products)
            else:
                session.symbols[:] = [s for s in session.symbols if s not in products]
        for product in products:
            if _L2 in channels:
                if subscribe:
                    session.subscribe_book(product, _WHOLE_BOOK)
                else:
                    session.unsubscribe_book(product)
            if "ticker" in channels:
                (session.quotes.add if subscribe else session.quotes.discard)(product)
        if "heartbeat" in channels:
            (session.channels.add if subscribe else session.channels.discard)("heartbeat")
        subscribed = [{"name": "matches", "product_ids": session.symbols}]
        if session.books:
            subscribed.append({"name": _L2, "product_ids": sorted(session.books)})
        if session.quotes:
            subscribed.append({"name": "ticker", "product_ids": sorted(session.quotes)})
        if "heartbeat" in session.channels:
            subscribed.append({"name": "heartbeat", "product_ids": session.symbols})
        return [orjson.dumps({"type": "subscriptions", "channels": subscribed}).decode()]

    def encode_book(self, symbol: str, snapshot: bool, bids: list[tuple[str, str]],
                    asks: list[tuple[str, str]], seq: int, prev_seq: int, ts_ns: int,
                    book, depth: int) -> str:
        if snapshot:
            return orjson.dumps({"type": "snapshot", "product_id": symbol,
                                 "bids": [list(level) for level in bids],
                                 "asks": [list(level) for level in asks],
                                 "time": iso_time(ts_ns)}).decode()
        changes = [["buy", p, s] for p, s in bids] + [["sell", p, s] for p, s in asks]
        return orjson.dumps({"type": "l2update", "product_id": symbol, "changes": changes,
                             "time": iso_time(ts_ns)}).decode()

    def encode_quote(self, symbol: str, bid: tuple[str, str], ask: tuple[str, str], seq: int,
                     ts_ns: int) -> str | None:
        return orjson.dumps({"type": "ticker", "sequence": seq, "product_id": symbol,
                             "price": bid[0], "best_bid": bid[0], "best_bid_size": bid[1],
                             "best_ask": ask[0], "best_ask_size": ask[1],
                             "time": iso_time(ts_ns)}).decode()

    def encode(self, trades: list[SimTrade]) -> list[str]:
        return [self._match("match", t) for t in trades]

    def encode_overlap(self, trades: list[SimTrade]) -> list[str]:
        seen: set[str] = set()
        frames = []
        for t in trades:
            frames.append(self._match("match" if t.symbol in seen else "last_match", t))
            seen.add(t.symbol)
        return frames

    def heartbeat(self, session: Session) -> str | None:
        if "heartbeat" not in session.channels or not session.symbols:
            return None
        beat = next(self._beats)
        return orjson.dumps({"type": "heartbeat", "sequence": beat, "last_trade_id": 0,
                             "product_id": session.symbols[beat % len(session.symbols)],
                             "time": iso_time()}).decode()

    def subscription_error(self, symbol: str) -> str:
        return self._error("Failed to subscribe", f"{symbol} is not a valid product")

    @staticmethod
    def _match(kind: str, t: SimTrade) -> str:
        order = f"{t.symbol}/{t.trade_id}"
        return orjson.dumps({
            "type": kind, "trade_id": t.trade_id, "sequence": 3 * t.trade_id,
            "maker_order_id": str(uuid.uuid5(uuid.NAMESPACE_OID, order + "/maker")),
            "taker_order_id": str(uuid.uuid5(uuid.NAMESPACE_OID, order + "/taker")),
            "time": iso_time(t.ts_ns), "product_id": t.symbol, "size": t.volume,
            "price": t.price, "side": _maker_side(t),
        }).decode()

    @staticmethod
    def _error(message: str, reason: str) -> str:
        return orjson.dumps({"type": "error", "message": message, "reason": reason}).decode()


DIALECTS = {
    "coinbase": CoinbaseAdvancedTradeDialect,
    "coinbase-exchange": CoinbaseExchangeDialect,
}
