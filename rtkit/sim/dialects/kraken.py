"""Kraken WebSocket v2, server side: a status frame on connect, one ack per symbol,
pongs, a heartbeat every second, trades batched per symbol with JSON-float
prices, and on every subscribe a snapshot of each symbol's last trades.

Books and quotes: ``book`` at a depth of 10, 25, 100, 500 or 1000 (a snapshot on
every subscribe, then updates; ``unsubscribe`` stops them) and ``ticker`` with
``event_trigger: "bbo"``. What a client sees of a simulated book is its top
``depth`` levels (:class:`BookViews`): an update carries the levels of that view
that changed, a removal (qty 0) only for a level that left the book — a level
pushed below the depth gets none, the client cuts its book to the depth — and a
level that comes back into view from below. Numbers are written as Kraken
writes them, prices with the pair's decimals and quantities with 8
(``0.10000000``), as JSON number text; every message carries the CRC32 of the
top 10 levels computed from that text (:func:`rtkit.books.checksum.kraken_crc32`).
"""

from __future__ import annotations

from dataclasses import dataclass
from zlib import crc32

import orjson

from rtkit.books.checksum import KRAKEN_LEVELS, kraken_text
from rtkit.sim.dialects.base import Dialect, Session, batches_by_symbol, iso_time
from rtkit.sim.market import SimTrade
from rtkit.venues.kraken import BOOK_DEPTHS, KrakenAdapter

#: trades in the snapshot that follows a subscribe, per symbol (both protocols)
SNAPSHOT_TRADES = 50
#: the status frame a v2 connection opens with; the real connection_id exceeds int64
_STATUS = ('{"channel":"status","type":"update","data":[{"api_version":"v2",'
           '"connection_id":15564437896659189083,"system":"online","version":"2.0.7"}]}')


def order_type(trade: SimTrade) -> str:
    """The taker's order type, derived from the trade so runs repeat exactly."""
    return "market" if trade.trade_id % 3 == 0 else "limit"


def ends_taker_order(trade: SimTrade) -> bool:
    """Kraken sends the fills of one match together. Here a fill whose size ends
    in 0, 1 or 2 is followed by another of the same taker order, so most frames
    carry one trade and some carry several."""
    return trade.volume[-1] not in "012"


def snapshot_batches(trades: list[SimTrade]) -> list[list[SimTrade]]:
    """Each symbol's newest ``SNAPSHOT_TRADES`` trades, oldest first (as in the docs'
    example), one batch per symbol: what Kraken re-sends after a subscribe."""
    return [batch[-SNAPSHOT_TRADES:] for batch in batches_by_symbol(trades, len(trades))]


#: decimals Kraken writes a book quantity with (v1 and v2)
QTY_DECIMALS = 8

Level = tuple[str, str]


def fixed(text: str, decimals: int) -> str:
    """``"12.345"`` → ``"12.34500000"`` (8 decimals): a simulated number as Kraken
    writes it, with a fixed count of decimals (the text, not a float, so no digit
    changes)."""
    whole, _, frac = text.partition(".")
    if len(frac) > decimals:
        raise ValueError(f"{text!r} has more than {decimals} decimals")
    return f"{whole}.{frac.ljust(decimals, '0')}"


@dataclass
class ViewChange:
    """One update of the view a client has of a book: per side the levels to send, in
    order, as ``(price ticks, size text, republished)``."""

    bids: list[tuple[int, str, bool]]
    asks: list[tuple[int, str, bool]]


class BookViews:
    """The top ``depth`` levels of each simulated book as a client subscribed at that
    depth last saw them; :meth:`change` says what an update must carry."""

    def __init__(self) -> None:
        #: (symbol, depth) → (bids, asks): price ticks → size text
        self._seen: dict[tuple[str, int], tuple[dict[int, str], dict[int, str]]] = {}

    @staticmethod
    def view(book, depth: int) -> tuple[dict[int, str], dict[int, str]]:
        bids = sorted(book.bids, reverse=True)[:depth]
        asks = sorted(book.asks)[:depth]
        return {t: book.bids[t] for t in bids}, {t: book.asks[t] for t in asks}

    def reset(self, symbol: str, book, depth: int) -> None:
        """A snapshot went out: the client's view is the book's top ``depth``."""
        self._seen[(symbol, depth)] = self.view(book, depth)

    def change(self, symbol: str, book, depth: int, bids: list[Level],
               asks: list[Level]) -> ViewChange:
        """The update for the book's step that set ``bids``/``asks``: the view's
        changed and removed levels, then any given level the true book does not hold
        (a fault's wrong level, sent as given)."""
        before = self._seen.get((symbol, depth)) or self.view(book, depth)
        after = self.view(book, depth)
        self._seen[(symbol, depth)] = after
        out = []
        for side, given, old, new in ((book.bids, bids, before[0], after[0]),
                                      (book.asks, asks, before[1], after[1])):
            touched = {round(float(p) / book.tick): s for p, s in given}
            levels = [(t, "0", False) for t in old if t not in new and t not in side]
            levels += [(t, size, t not in touched) for t, size in new.items()
                       if old.get(t) != size]
            for t, size in touched.items():
                if float(size) != float(side.get(t, "0")):
                    levels.append((t, size, False))
            out.append(levels)
        return ViewChange(*out)


#: levels whose checksum text a dialect remembers (it is made again past that)
_DIGITS_KEPT = 100_000


def checksum(book, price_text, digits: dict) -> int:
    """Kraken's CRC32 of the true book's top 10 (:func:`kraken_crc32`'s text), from the
    text Kraken writes; ``digits`` remembers each level's part of that text, which
    the feed of a long run would otherwise spend most of its time making again."""
    parts = []
    for side, ticks in ((book.asks, sorted(book.asks)[:KRAKEN_LEVELS]),
                        (book.bids, sorted(book.bids, reverse=True)[:KRAKEN_LEVELS])):
        for t in ticks:
            key = (book.tick, t, side[t])
            part = digits.get(key)
            if part is None:
                if len(digits) >= _DIGITS_KEPT:
                    digits.clear()
                part = digits[key] = kraken_text(
                    [(price_text(book.price_text(t)), fixed(side[t], QTY_DECIMALS))], [])
            parts.append(part)
    return crc32("".join(parts).encode("ascii"))


def book_depth(value) -> int | None:
    """A subscribe's ``depth`` if Kraken offers it (absent: Kraken's default 10)."""
    if value is None:
        return 10
    return value if type(value) is int and value in BOOK_DEPTHS else None


class KrakenDialect(Dialect):
    venue = "kraken"
    path = "/v2"
    heartbeat_interval_s = 1.0
    max_batch = 50
    example_symbols = ("BTC-USD", "ETH-USD")
    has_books = True

    def __init__(self) -> None:
        self._symbols = KrakenAdapter()  # the venue's own symbol rules
        self.views = BookViews()
        self._digits: dict = {}  # a level → its part of the checksum's text

    def greeting(self, session: Session) -> list[str]:
        return [_STATUS]

    def on_message(self, text: str, session: Session) -> list[str]:
        try:
            msg = orjson.loads(text)
            method, req_id = msg.get("method"), msg.get("req_id")
        except (orjson.JSONDecodeError, AttributeError):
            return [self._error(None, None, "Malformed request")]
        if method == "ping":
            now = iso_time()
            return [orjson.dumps({"method": "pong", "req_id": req_id, "time_in": now,
                                  "time_out": now}).decode()]
        if method not in ("subscribe", "unsubscribe"):
            return [self._error(method, req_id, f"Method not supported: {method}")]
        params = msg.get("params")
        channel = params.get("channel") if type(params) is dict else None
        if channel not in ("trade", "book", "ticker") or \
                method == "unsubscribe" and channel == "trade":
            return [self._error(method, req_id, "Channel not supported")]
        depth = book_depth(params.get("depth"))
        if channel == "book" and depth is None:
            return [self._error(method, req_id, "Invalid depth")]
        replies = []
        for native in params.get("symbol") or []:
            try:
                symbol = self._symbols.normalise_symbol(native)
            except ValueError:
                replies.append(self._error(method, req_id,
                                           f"Currency pair not in ISO 4217-A3 format {native}"))
                continue
            now = iso_time()
            result = {"channel": channel, "symbol": self._symbols.native_symbol(symbol)}
            if channel == "trade":
                session.subscribe([symbol])
                result["snapshot"] = params.get("snapshot", False)
            elif channel == "ticker":
                (session.quotes.add if method == "subscribe" else session.quotes.discard)(symbol)
            elif method == "subscribe":
                session.subscribe_book(symbol, depth or 10)
                result.update(depth=depth, snapshot=True)
            else:
                session.unsubscribe_book(symbol)
                result["depth"] = depth
            replies.append(orjson.dumps({"method": method, "result": result, "success": True,
                                         "time_in": now, "time_out": now,
                                         "req_id": req_id}).decode())
        return replies

    @staticmethod
    def _error(method, req_id, message: str) -> str:
        now = iso_time()
        return orjson.dumps({"method": method, "success": False, "error": message,
                             "req_id": req_id, "time_in": now, "time_out": now}).decode()

    def encode(self, trades: list[SimTrade]) -> list[str]:
        return self._frames("update", batches_by_symbol(trades, self.max_batch, ends_taker_order))

    def encode_overlap(self, trades: list[SimTrade]) -> list[str]:
        return self._frames("snapshot", snapshot_batches(trades))

    def _frames(self, kind: str, batches: list[list[SimTrade]]) -> list[str]:
        frames = []
        for batch in batches:
            native = self._symbols.native_symbol(batch[0].symbol)
            data = ",".join(
                '{"symbol":"%s","side":"%s","price":%s,"qty":%s,"ord_type":"%s",'
                '"trade_id":%d,"timestamp":"%s"}'
                % (native, t.side, t.price, t.volume, order_type(t), t.trade_id,
                   iso_time(t.ts_ns))
                for t in batch
            )
            frames.append('{"channel":"trade","type":"%s","data":[%s]}' % (kind, data))
        return frames

    def heartbeat(self, session: Session) -> str | None:
        return '{"channel":"heartbeat"}'

    # --- books and quotes ------------------------------------------------------------
    @staticmethod
    def price_text(book):
        """Prices with the pair's decimals (the simulated tick's), as v2 writes them."""
        return lambda text: text

    def book_text(self, book, depth: int) -> tuple[list[Level], list[Level]]:
        """The top ``depth`` levels of a simulated book as this dialect writes them."""
        bids, asks, _ = book.snapshot(depth)
        price = self.price_text(book)
        return ([(price(p), fixed(q, QTY_DECIMALS)) for p, q in bids],
                [(price(p), fixed(q, QTY_DECIMALS)) for p, q in asks])

    def encode_book(self, symbol: str, snapshot: bool, bids: list[Level], asks: list[Level],
                    seq: int, prev_seq: int, ts_ns: int, book, depth: int) -> str | None:
        price = self.price_text(book)
        if snapshot:
            self.views.reset(symbol, book, depth)
            bid_levels, ask_levels = self.book_text(book, depth)
        else:
            change = self.views.change(symbol, book, depth, bids, asks)
            if not change.bids and not change.asks:
                return None  # nothing within the subscribed depth changed
            bid_levels = [(price(book.price_text(t)), fixed(s, QTY_DECIMALS))
                          for t, s, _ in change.bids]
            ask_levels = [(price(book.price_text(t)), fixed(s, QTY_DECIMALS))
                          for t, s, _ in change.asks]
        item = '{"symbol":"%s","bids":[%s],"asks":[%s],"checksum":%d%s}' % (
            self._symbols.native_symbol(symbol),
            ",".join('{"price":%s,"qty":%s}' % level for level in bid_levels),
            ",".join('{"price":%s,"qty":%s}' % level for level in ask_levels),
            checksum(book, price, self._digits),
            "" if snapshot else ',"timestamp":"%s"' % iso_time(ts_ns))
        return '{"channel":"book","type":"%s","data":[%s]}' % (
            "snapshot" if snapshot else "update", item)

    def encode_quote(self, symbol: str, bid: Level, ask: Level, seq: int,
                     ts_ns: int) -> str | None:
        return ('{"channel":"ticker","type":"update","data":[{"symbol":"%s","bid":%s,'
                '"bid_qty":%s,"ask":%s,"ask_qty":%s,"timestamp":"%s"}]}' % (
                    self._symbols.native_symbol(symbol), bid[0], fixed(bid[1], QTY_DECIMALS),
                    ask[0], fixed(ask[1], QTY_DECIMALS), iso_time(ts_ns)))

    def subscription_error(self, symbol: str) -> str:
        native = self._symbols.native_symbol(symbol)
        return self._error("subscribe", 1, f"Currency pair not supported {native}")


DIALECTS = {"kraken": KrakenDialect}
