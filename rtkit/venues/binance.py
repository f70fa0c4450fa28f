"""Binance spot ``<symbol>@trade`` / ``@aggTrade``; with the ``quotes`` and ``book``
kinds also ``<symbol>@bookTicker`` (the best bid and offer) and
``<symbol>@depth@100ms`` (diffs of the L2 book), on the same connection.

Wire format: Binance's "WebSocket Streams" reference,
https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams

Frames arrive bare (``/ws``) or wrapped as ``{"stream": …, "data": …}``
(``/stream``); both are read. ``m`` says whether the *buyer* was the maker, so
``m: true`` means the aggressor sold. Trade ids (``t``) and aggregate ids
(``a``) step by one per symbol, which makes gaps visible.
"""

from __future__ import annotations

import time

import orjson

from rtkit.books import BookMessage
from rtkit.books.parse import binance as binance_books
from rtkit.kinds import Rows
from rtkit.validate import (
    BUY,
    MAX_ID,
    MAX_TS_MS,
    MAX_VALUE,
    MIN_TS_MS,
    SELL,
    Reject,
    epoch_ns,
    field,
    positive,
    whole_number,
)  # fmt: skip
from rtkit.venues.base import Adapter, Control, NativeSymbols, chunks, loads, split_glued

#: streams per SUBSCRIBE message; Binance allows 1024 streams per connection
_STREAMS_PER_MESSAGE = 200
#: Binance documents no size limit for a request's text, only the stream count
_NO_CHAR_LIMIT = 1 << 30
#: levels of the REST snapshot (its ``limit``) and of the local book without depth=:
#: the venue's default 100, the cheapest weight that holds them
DEFAULT_BOOK_DEPTH = 100
#: the largest ``limit`` GET /api/v3/depth takes
MAX_BOOK_DEPTH = 5000
_DEPTH_STREAM = "@depth@100ms"
_QUOTE_STREAM = "@bookTicker"


class BinanceAdapter(Adapter):
    name = "binance"
    default_url = "wss://stream.binance.com:9443/ws"
    native_example = "btcusdt"
    ids_consecutive = True
    ping_interval_s = None  # the server pings every 20 s; the collector's reader answers
    stale_after_s = 30.0
    #: Binance ends every connection after 24 h: the receiver hands over before (no hole)
    connection_lifetime_s: float | None = 24 * 3600.0
    kinds = ("trades", "quotes", "book")
    #: diffs carry ``pu`` (USD-M)
    _diffs_have_pu = False

    def __init__(self, channel: str = "trade",
                 connection_lifetime_s: float | None = 24 * 3600.0) -> None:
        """``connection_lifetime_s``: when the venue ends a connection (a simulator's
        compressed day); a new one takes over shortly before, without a hole."""
        if channel not in ("trade", "aggTrade"):
            raise ValueError(f"binance channel must be 'trade' or 'aggTrade', not {channel!r}")
        if connection_lifetime_s is not None and not connection_lifetime_s > 0:
            raise ValueError(f"connection_lifetime_s must be > 0 seconds (or None), not "
                             f"{connection_lifetime_s!r}")
        self.channel = channel
        self.connection_lifetime_s = connection_lifetime_s
        self._symbol = NativeSymbols(split_glued)  # BTCUSDT → BTC-USDT, once per trade

    def native_symbol(self, symbol: str) -> str:
        return self.normalise_symbol(symbol).replace("-", "").lower()

    # --- books --------------------------------------------------------------------------
    def check_depth(self, depth: int) -> None:
        """A ``limit`` GET /api/v3/depth takes, else a ValueError saying which."""
        if type(depth) is not int or not 1 <= depth <= MAX_BOOK_DEPTH:
            raise ValueError(f"binance books take depth= 1 to {MAX_BOOK_DEPTH} (the REST "
                             f"snapshot's limit; default {DEFAULT_BOOK_DEPTH}), not {depth!r}")

    def configure(self, kinds: tuple[str, ...], depth: int | None) -> None:
        if depth is not None:
            self.check_depth(depth)
        super().configure(kinds, depth)

    def book_max_levels(self) -> int | None:
        return self.depth or DEFAULT_BOOK_DEPTH

    def book_snapshot_fetch(self, rest_url: str | None, budget=None):
        """``symbol -> BookMessage``: the REST snapshot of ``depth`` levels (default
        ``DEFAULT_BOOK_DEPTH``) through a :class:`rtkit.rest.RestClient` of this venue,
        within its budget (``budget``: the venue's shared one when None)."""
        from rtkit.rest.client import RestClient

        client = RestClient(self.name, rest_url, budget=budget)
        limit = self.depth or DEFAULT_BOOK_DEPTH

        def fetch(symbol: str) -> BookMessage:
            snap = client.depth(symbol, limit)
            received_at = time.time_ns()
            return BookMessage(symbol, snap.time_ns or received_at, received_at, True,
                               snap.bids, snap.asks, seq=snap.sequence, source="rest")

        fetch.client = client  # type: ignore[attr-defined]  # its stats, for tests and benches
        fetch.close = client.close  # type: ignore[attr-defined]  # at the keeper's close()
        return fetch

    def _streams(self, native: str) -> list[str]:
        collected = self.collected
        streams = [f"{native}@{self.channel}"] if "trades" in collected else []
        if "quotes" in collected:
            streams.append(native + _QUOTE_STREAM)
        if "book" in collected:
            streams.append(native + _DEPTH_STREAM)
        return streams

    def subscribe_messages(self, symbols: list[str]) -> list[str]:
        streams = []
        for s in symbols:
            native = self.native_symbol(s)
            self._symbol.learn(native.upper(), s)
            binance_books.SYMBOLS.learn(native.upper(), s)
            streams += self._streams(native)
        runs = chunks(streams, _STREAMS_PER_MESSAGE, _NO_CHAR_LIMIT)
        return [orjson.dumps({"method": "SUBSCRIBE", "params": run,
                              "id": i * _STREAMS_PER_MESSAGE + 1}).decode()
                for i, run in enumerate(runs)]

    def parse(self, frame, received_at_ns: int):
        msg = loads(frame)
        if type(msg) is not dict:
            raise Reject("unknown_message", "not a JSON object")
        data = msg.get("data")
        if type(data) is dict and "stream" in msg:
            msg = data
        # Fast path for a well-formed trade; anything unusual takes the careful
        # path below, which names exactly what is wrong.
        try:
            event = msg["e"]
            id_key = "t" if event == "trade" else "a" if event == "aggTrade" else None
            if id_key:
                tid, ms, maker, p, q = msg[id_key], msg["T"], msg["m"], msg["p"], msg["q"]
                price, volume = float(p), float(q)
                if (type(tid) is int and 0 <= tid <= MAX_ID and type(ms) is int
                        and type(maker) is bool
                        and MIN_TS_MS <= ms <= MAX_TS_MS and 0.0 < price <= MAX_VALUE
                        and 0.0 < volume <= MAX_VALUE and type(p) is str and type(q) is str
                        # float() alone also reads "1_000", " 1 " and non-ASCII digits
                        and p.isascii() and q.isascii() and "_" not in p and "_" not in q
                        and p.strip() == p and q.strip() == q):
                    return [(self._symbol(msg["s"]), tid, ms * 1_000_000, price, volume,
                             SELL if maker else BUY)]
        except (KeyError, ValueError, TypeError):
            pass
        return self._parse_carefully(msg, received_at_ns)

    def _parse_carefully(self, msg: dict, received_at_ns: int):
        event = msg.get("e")
        if event == "trade":
            tid = msg.get("t")
        elif event == "aggTrade":
            tid = msg.get("a")
        elif event == "depthUpdate" or event == "bookTicker" or (
                event is None and "u" in msg and "B" in msg and "A" in msg):
            return self._book_rows(msg, event, received_at_ns)
        else:
            return self._control(msg)
        if type(tid) is not int:
            raise Reject("missing_field" if tid is None else "bad_number", f"trade id {tid!r:.40}")
        tid = whole_number(tid, "trade id")  # within int64, the ring's id column
        maker = field(msg, "m")
        if type(maker) is not bool:
            raise Reject("bad_side", f"m={maker!r:.40}")
        return [
            (
                self._symbol(field(msg, "s")),
                tid,
                epoch_ns(field(msg, "T"), "ms"),
                positive(msg.get("p"), "p"),
                positive(msg.get("q"), "q"),
                SELL if maker else BUY,
            )
        ]

    def _book_rows(self, msg: dict, event, received_at_ns: int) -> Rows:
        """A diff → a "book" BookMessage; a book ticker → a "quotes" row."""
        if event == "depthUpdate":
            return Rows(book=[binance_books.depth_update(msg, received_at_ns,
                                                         prev=self._diffs_have_pu)])
        return Rows(quotes=[binance_books.book_ticker(msg, received_at_ns, self.name)])

    @staticmethod
    def _control(msg: dict) -> Control:
        if "result" in msg and "id" in msg:
            return Control("ack", f"id={msg['id']}")
        err = msg.get("error")
        if isinstance(err, dict) or ("code" in msg and "msg" in msg):
            src = err if isinstance(err, dict) else msg
            return Control("error", f"{src.get('code')}: {src.get('msg')}")
        raise Reject("unknown_message", f"e={msg.get('e')!r:.40}")


ADAPTERS = {"binance": BinanceAdapter}
