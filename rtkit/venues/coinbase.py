"""Coinbase: Advanced Trade ``market_trades`` and Exchange ``matches``.

Wire format: Coinbase's "Advanced Trade WebSocket Channels" and "Exchange WebSocket
Channels" references,
https://docs.cdp.coinbase.com/coinbase-app/advanced-trade-apis/websocket/websocket-channels
and https://docs.cdp.coinbase.com/exchange/docs/websocket-channels

Both feeds name products ``BTC-USD`` already, send prices and sizes as exact
decimal strings and ISO-8601 times, and give the MAKER's side: the aggressor
is the opposite. Recorded Advanced Trade frames with the order book on the same
connection settle it: of 78 trades, 48 marked ``SELL`` printed at or above the best
ask (a buyer lifted the offer) and 23 marked ``BUY`` at or below the best bid.
``trade_id`` steps by one per product on both, so gaps are visible and replayed
trades (an Advanced Trade snapshot, an Exchange ``last_match``, a reconnect
overlap) count as duplicates.
Both keep quiet subscriptions open with a heartbeat channel, so there is no
ping to send and a few silent seconds mean a dead connection.
"""

from __future__ import annotations

from operator import itemgetter
from typing import ClassVar

import orjson

from rtkit.books.parse import coinbase as coinbase_books
from rtkit.books.parse import coinbase_exchange as book_parse
from rtkit.kinds import Rows
from rtkit.validate import Reject, field, iso_ns, positive, side_code, whole_number
from rtkit.venues.base import Adapter, Control, NativeSymbols, loads, split_symbol
from rtkit.venues.book_fetch import rest_book_fetch

#: the only ``-USDC`` products Advanced Trade keeps apart from their ``-USD`` book
_OWN_USDC_BOOKS = frozenset({"USDT-USDC", "EURC-USDC"})

_by_trade_id = itemgetter(1)
#: Exchange's unauthenticated L2 channel (``level2`` itself needs an API key)
_L2 = "level2_batch"
#: Exchange frame types that carry a book or a quote
_BOOK_TYPES = frozenset({"snapshot", "l2update", "ticker"})


class _CoinbaseAdapter(Adapter):
    """What both Coinbase feeds share: symbols, the trade fields, errors."""

    native_example = "BTC-USD"
    ids_consecutive = True
    ping_interval_s = None  # the heartbeat channel keeps the subscription alive
    stale_after_s = 10.0  # heartbeats arrive every second
    #: the maker-side words meaning "the aggressor bought" and "... sold"
    _aggressor_words: ClassVar[tuple[str, str]]

    def __init__(self) -> None:
        self._product = NativeSymbols(split_symbol)

    def native_symbol(self, symbol: str) -> str:
        return self.normalise_symbol(symbol)

    def _tick(self, trade) -> tuple:
        """One trade object (same fields on both feeds) → a tick."""
        if type(trade) is not dict:
            raise Reject("unknown_message", f"trade {trade!r:.40}")
        return (
            self._product(field(trade, "product_id")),
            whole_number(trade.get("trade_id"), "trade_id"),
            iso_ns(trade.get("time")),
            positive(trade.get("price"), "price"),
            positive(trade.get("size"), "size"),
            side_code(field(trade, "side"), *self._aggressor_words),
        )

    @staticmethod
    def _error(msg: dict) -> Control:
        """``{"type":"error","message":…[,"reason":…]}`` → an error control."""
        reason = msg.get("reason")
        text = f"{msg.get('message')}: {reason}" if reason else str(msg.get("message"))
        return Control("error", text[:500])


class CoinbaseAdvancedTradeAdapter(_CoinbaseAdapter):
    """Advanced Trade ``market_trades``: many trades of many products per frame; with
    the ``book`` kind ``level2`` (frames on ``l2_data``: the whole book as a snapshot
    after subscribing, then updates), with ``quotes`` the ``ticker`` channel.

    Quotes come from ``ticker``, the venue's own best bid and offer with sizes: it
    needs no book (``level2`` sends the whole book, some 46k levels for BTC-USD) and
    works with ``kinds=["quotes"]`` alone; Coinbase sends it on trades, so a change
    of the top between two trades shows in ``book`` only.

    The only proof a book is whole is the envelope's ``sequence_num``, which numbers
    every frame of the connection (heartbeats, trades, tickers, books): every frame
    goes through one :class:`~rtkit.books.parse.coinbase.ConnectionSequence`, made
    again at each (re)connect, and a jump anywhere desyncs each book at its next
    message (the lost frame may have been its own); a resync unsubscribes and
    subscribes ``level2`` again for a new snapshot.

    A ``snapshot`` event (recent trades, some older than the subscription) comes
    once after subscribing, then ``update`` events carry each 250 ms of trades.
    Their order inside a frame is not documented, so ticks are returned by
    ascending ``trade_id``. ``-USDC`` products are not on these channels
    (Coinbase serves the ``-USD`` book's trades for them), so asking for one
    is an error that names the ``-USD`` product to use instead.
    """

    name = "coinbase"
    default_url = "wss://advanced-trade-ws.coinbase.com"
    _aggressor_words = ("SELL", "BUY")
    kinds = ("trades", "quotes", "book")

    def __init__(self) -> None:
        super().__init__()
        self._sequence = coinbase_books.ConnectionSequence()
        #: with two connections (``redundancy=2``, a handover) each numbers its own frames:
        #: the receiver's connection number → its sequence (``reading_connection``)
        self._sequences: dict[int, coinbase_books.ConnectionSequence] = {}
        self._connection = 0
        #: the book and quote channels of the collected kinds (another is unknown here)
        self._book_channels: frozenset[str] = frozenset()

    def configure(self, kinds: tuple[str, ...], depth: int | None) -> None:
        if depth is not None:
            raise ValueError("coinbase level2 books come whole (no depth to choose); leave "
                             "depth= out: the local book keeps the best levels of each side "
                             "up to its cap")
        super().configure(kinds, depth)
        self._book_channels = frozenset(c for c, kind in (("l2_data", "book"),
                                                          ("ticker", "quotes")) if kind in kinds)

    def _channel_messages(self, op: str, channel: str, products: list[str]) -> str:
        return orjson.dumps({"type": op, "product_ids": products, "channel": channel}).decode()

    def book_resubscribe_messages(self, symbols: list[str]) -> list[str]:
        """Unsubscribe then subscribe ``level2``: Coinbase answers with a new snapshot."""
        products = [self.native_symbol(s) for s in symbols]
        return [self._channel_messages(op, "level2", products)
                for op in ("unsubscribe", "subscribe")]

    def normalise_symbol(self, symbol: str) -> str:
        normalised = super().normalise_symbol(symbol)
        if normalised.endswith("-USDC") and normalised not in _OWN_USDC_BOOKS:
            raise ValueError(
                f"symbol {symbol!r}: Coinbase Advanced Trade publishes no -USDC trades on its "
                f"market channels (it serves the -USD book's data for them); collect "
                f"{normalised[:-1]!r} instead"
            )
        return normalised

    def subscribe_messages(self, symbols: list[str]) -> list[str]:
        """One channel per message; no documented cap on products per message,
        and only 8 unauthenticated messages a second, so one message carries all."""
        # a new connection counts anew
        self._sequence = self._sequences[self._connection] = coinbase_books.ConnectionSequence()
        products = [self.native_symbol(s) for s in symbols]
        for native, symbol in zip(products, symbols, strict=True):
            coinbase_books.SYMBOLS.learn(native, symbol)
        collected = self.collected
        channels = [c for c, kind in (("market_trades", "trades"), ("ticker", "quotes"),
                                      ("level2", "book")) if kind in collected]
        return ([self._channel_messages("subscribe", c, products) for c in channels]
                + ['{"type":"subscribe","channel":"heartbeats"}'])

    def reading_connection(self, number: int) -> None:
        """The frames parsed (or subscribe messages made) next are connection ``number``'s
        (the receiver's count): its own ``sequence_num`` counter is the one followed."""
        self._connection = number
        sequence = self._sequences.get(number)
        if sequence is None:
            sequence = self._sequences[number] = coinbase_books.ConnectionSequence()
            for old in sorted(self._sequences)[:-4]:  # at most 3 are open at once
                del self._sequences[old]
        self._sequence = sequence

    def parse(self, frame, received_at_ns: int):
        msg = loads(frame)
        if type(msg) is not dict:
            raise Reject("unknown_message", "not a JSON object")
        channel = msg.get("channel")
        if type(channel) is str and channel in self._book_channels:  # they feed the sequence
            book, quotes = coinbase_books.parse(msg, received_at_ns, self._sequence)
            if book:
                return Rows(book=book, quotes=quotes) if quotes else Rows(book=book)
            if quotes:
                return Rows(quotes=quotes)
            return Control("info", f"{channel} frame without levels or tickers")
        seq = msg.get("sequence_num")
        if type(seq) is int and seq >= 0:  # every frame counts, heartbeats and trades too
            self._sequence.see(seq)
        if channel == "market_trades":
            return self._trades(msg.get("events"))
        if channel == "heartbeats":
            events = msg.get("events")
            event = events[0] if type(events) is list and events else None
            counter = event.get("heartbeat_counter") if type(event) is dict else None
            return Control("heartbeat", f"counter {counter!r:.40}")
        if channel == "subscriptions":
            return Control("ack", f"{msg.get('events')!r:.200}")
        if msg.get("type") == "error":
            return self._error(msg)
        raise Reject("unknown_message", f"channel={channel!r:.40}")

    def _trades(self, events) -> list | Control:
        if type(events) is not list:
            raise Reject("missing_field" if events is None else "unknown_message", "events")
        ticks: list[tuple] = []
        rejects: list[Reject] = []
        for event in events:
            trades = event.get("trades") if type(event) is dict else None
            if type(trades) is not list:
                rejects.append(Reject("missing_field", "events[].trades"))
                continue
            for trade in trades:
                try:
                    ticks.append(self._tick(trade))
                except Reject as reject:
                    rejects.append(reject)
        if not ticks and not rejects:
            return Control("info", "market_trades frame without trades")
        ticks.sort(key=_by_trade_id)  # ids per product must arrive in order for gap checks
        return ticks + rejects if rejects else ticks


class CoinbaseExchangeAdapter(_CoinbaseAdapter):
    """Exchange ``matches``: one ``match`` per frame; the first after subscribing
    is a ``last_match`` (the product's latest trade) with the same fields.

    ``sequence`` counts messages per product across every channel, so a
    ``matches``-only subscriber sees it jump by design: gaps come from
    ``trade_id`` only. The venue says matches can be dropped; those show as gaps.

    With the ``book`` kind, ``level2_batch`` (a ``snapshot`` of the whole book,
    then ``l2update`` batches of absolute sizes); with ``quotes``, ``ticker``
    (``best_bid``/``best_ask`` with sizes). L2 messages carry no sequence and no
    checksum, so the book is ``unverified``: audited against
    ``GET /products/{id}/book?level=2`` every ``audit_every_s``, resynced by an
    unsubscribe and subscribe of ``level2_batch`` (the venue sends a new
    snapshot). The venue offers no depth choice: the snapshot is the whole book.
    """

    name = "coinbase-exchange"
    default_url = "wss://ws-feed.exchange.coinbase.com"
    _aggressor_words = ("sell", "buy")
    kinds = ("trades", "quotes", "book")

    def configure(self, kinds: tuple[str, ...], depth: int | None) -> None:
        if depth is not None:
            raise ValueError("coinbase-exchange sends its whole book (level2_batch) and offers "
                             "no depth; leave depth= out")
        super().configure(kinds, depth)

    def _channels(self) -> list[str]:
        collected = self.collected
        channels = ["matches"] if "trades" in collected else []
        if "book" in collected:
            channels.append(_L2)
        if "quotes" in collected:
            channels.append("ticker")
        return [*channels, "heartbeat"]

    def subscribe_messages(self, symbols: list[str]) -> list[str]:
        """Many products and channels fit one message (the venue caps messages at
        100 a second, not products), so all go in one."""
        products = [self.native_symbol(s) for s in symbols]
        for product, symbol in zip(products, symbols, strict=True):
            book_parse.SYMBOLS.learn(product, symbol)
        return [
            orjson.dumps(
                {"type": "subscribe", "product_ids": products, "channels": self._channels()}
            ).decode()
        ]

    def book_resubscribe_messages(self, symbols: list[str]) -> list[str]:
        """Unsubscribe then subscribe ``level2_batch``: the venue sends a new snapshot."""
        products = [self.native_symbol(s) for s in symbols]
        return [orjson.dumps({"type": kind, "product_ids": products, "channels": [_L2]}).decode()
                for kind in ("unsubscribe", "subscribe")]

    def book_snapshot_fetch(self, rest_url: str | None):
        """The audit's snapshot: ``GET /products/{id}/book?level=2`` within the budget."""
        return rest_book_fetch(self.name, rest_url, _rest_book)

    def parse(self, frame, received_at_ns: int):
        msg = loads(frame)
        if type(msg) is not dict:
            raise Reject("unknown_message", "not a JSON object")
        kind = msg.get("type")
        if kind == "match" or kind == "last_match":
            return [self._tick(msg)]
        if type(kind) is str and kind in _BOOK_TYPES:
            parsed = book_parse.parse(msg, received_at_ns)
            return Rows(book=parsed.book) if parsed.book else Rows(quotes=parsed.quotes)
        if kind == "heartbeat":
            return Control("heartbeat", f"{msg.get('product_id')!r:.40} last trade "
                                        f"{msg.get('last_trade_id')!r:.40}")
        if kind == "subscriptions":
            return Control("ack", f"{msg.get('channels')!r:.200}")
        if kind == "error":
            return self._error(msg)
        raise Reject("unknown_message", f"type={kind!r:.40}")


def _rest_book(body, symbol: str, received_at: int):
    """The REST book; ``timestamp`` 0 when it carries no ``time`` (the documented example
    has none): the keeper then confirms an audit's difference by a second audit."""
    snapshot = book_parse.rest_snapshot(body, symbol, received_at)
    if not (type(body) is dict and body.get("time")):
        snapshot.timestamp = 0
    return snapshot


ADAPTERS = {
    "coinbase": CoinbaseAdvancedTradeAdapter,
    "coinbase-exchange": CoinbaseExchangeAdapter,
}
