"""What a simulator dialect is: the server side of one venue's wire protocol.

A dialect is pure like an adapter: it turns client messages into replies and
trades into frames, and never touches a socket. The server in
:mod:`rtkit.sim.server` (with its connections and sending) does the I/O and the faults.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from rtkit.sim.market import SimTrade


def iso_time(ts_ns: int | None = None) -> str:
    """``2023-09-25T07:49:37.708706Z``: RFC 3339 UTC with µs (default: now)."""
    ts_ns = time.time_ns() if ts_ns is None else ts_ns
    secs, ns = divmod(ts_ns, 10**9)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + ".%06dZ" % (ns // 1000)


def batches_by_symbol(
    trades: list[SimTrade], max_batch: int,
    ends_batch: Callable[[SimTrade], bool] = lambda trade: False,
) -> list[list[SimTrade]]:
    """Trades grouped per symbol, in order, at most ``max_batch`` a group, and a
    group closed after any trade for which ``ends_batch`` is true: how a venue
    that sends one symbol per message batches them."""
    open_batches: dict[str, list[SimTrade]] = {}
    batches = []
    for trade in trades:
        batch = open_batches.get(trade.symbol)
        if batch is None:
            batch = open_batches[trade.symbol] = []
            batches.append(batch)
        batch.append(trade)
        if len(batch) == max_batch or ends_batch(trade):
            del open_batches[trade.symbol]
    return batches


@dataclass
class Session:
    """One client connection's state as the dialect sees it."""

    path: str = "/"
    symbols: list[str] = field(default_factory=list)  # subscribed, BASE-QUOTE
    channels: set[str] = field(default_factory=set)  # subscribed side channels (heartbeats)
    #: channel → the subscription id the server issued (JSON-RPC routes notifications by it)
    subscriptions: dict[str, str] = field(default_factory=dict)
    #: order books subscribed: symbol → depth; ``book_fresh`` those owed a snapshot
    books: dict[str, int] = field(default_factory=dict)
    book_fresh: set[str] = field(default_factory=set)
    #: symbols whose best bid and offer (quotes channel) is subscribed
    quotes: set[str] = field(default_factory=set)

    def subscribe_book(self, symbol: str, depth: int) -> None:
        """A book subscribed (again): its snapshot goes out before its next delta."""
        self.books[symbol] = depth
        self.book_fresh.add(symbol)

    def unsubscribe_book(self, symbol: str) -> None:
        self.books.pop(symbol, None)
        self.book_fresh.discard(symbol)

    def subscribe(self, symbols) -> list[str]:
        """Add symbols; returns those that were not subscribed yet."""
        new = [s for s in symbols if s not in self.symbols]
        self.symbols.extend(new)
        return new


class Dialect:
    """Server side of a venue protocol, for the local simulator."""

    venue: str
    #: URL path clients connect to (the simulator's ``url`` ends with it)
    path: str = "/"
    #: seconds between server heartbeat frames (None: none)
    heartbeat_interval_s: float | None = None
    #: trades per frame the venue sends at most
    max_batch: int = 1
    #: symbols the venue really lists, used by tests and demos (BASE-QUOTE)
    example_symbols: tuple[str, ...] = ("BTC-USDT", "ETH-USDT")

    def greeting(self, session: Session) -> list[str]:
        """Frames sent as soon as a client connects; a venue that streams without
        a subscribe request subscribes the session here."""
        return []

    def on_message(self, text: str, session: Session) -> list[str]:
        """Replies to one client text message (subscribe → acks, ping → pong…)."""
        raise NotImplementedError

    def encode(self, trades: list[SimTrade]) -> list[str]:
        """Frames carrying these trades, batched the venue's way."""
        raise NotImplementedError

    def encode_overlap(self, trades: list[SimTrade]) -> list[str]:
        """Frames re-sending recent trades right after a (re)subscribe; venues
        that send them as a snapshot or a "last trade" message say so here."""
        return self.encode(trades)

    def heartbeat(self, session: Session) -> str | None:
        return None

    # --- order books (a dialect that has them sets ``has_books`` and the encoders) ----
    #: True when the dialect speaks book channels (``encode_book``/``encode_quote``)
    has_books: bool = False

    def encode_book(self, symbol: str, snapshot: bool, bids: list[tuple[str, str]],
                    asks: list[tuple[str, str]], seq: int, prev_seq: int, ts_ns: int,
                    book, depth: int) -> str | None:
        """One book message of ``symbol``: its snapshot (every level, best first) or a
        delta (the levels set; size ``"0"`` removes), with sequence ``seq`` following
        ``prev_seq``, on the channel of the subscribed ``depth``. ``book`` (a
        :class:`rtkit.sim.book.SimBook`) is the true book after it, for a checksum (a
        corrupted delta's checksum is the true book's). None: the venue sends nothing
        for this change (Kraken: it is all below the subscribed depth)."""
        raise NotImplementedError

    def encode_restart(self, symbol: str, book, ts_ns: int, depth: int) -> str | None:
        """What the venue sends when its service restarts (``book.seq`` starts again):
        by default its snapshot at the new sequence."""
        bids, asks, seq = book.snapshot(depth)
        return self.encode_book(symbol, True, bids, asks, seq, 0, ts_ns, book, depth)

    def encode_quote(self, symbol: str, bid: tuple[str, str], ask: tuple[str, str], seq: int,
                     ts_ns: int) -> str | None:
        """The best bid and offer of ``symbol`` changed (None: no quotes channel)."""
        return None

    def close_notice(self) -> str | None:
        """The venue's announcement that it will soon close the connection (None: it
        closes without one, as Binance does after 24 h)."""
        return None

    # --- a connection-wide frame number (Coinbase Advanced ``sequence_num``) ----------
    #: True when every frame of a connection carries the connection's running number:
    #: the sender numbers each frame as it goes out (:meth:`number`), so the numbers
    #: follow the wire's order; a frame a fault loses or holds back is numbered when
    #: the fault takes it, so the client sees the hole or the swap
    numbers_frames: bool = False

    def number(self, ws, frame: str) -> str:
        """``frame`` with connection ``ws``'s next number in it (a frame numbered
        already passes unchanged)."""
        return frame

    def expected_trade_id(self, trade: SimTrade) -> str:
        """The ``trade_id`` text the venue's adapter must store for this trade."""
        return str(trade.trade_id)

    def subscription_error(self, symbol: str) -> str:
        """The venue's reply to a subscription it refuses (fault injection)."""
        raise NotImplementedError
