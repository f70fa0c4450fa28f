"""Bybit v5 ``publicTrade.<symbol>``, spot, linear or inverse; with the ``quotes`` and
``book`` kinds also ``orderbook.1.<symbol>`` (the best bid and offer) and
``orderbook.<depth>.<symbol>`` (the L2 book: a snapshot, then deltas).

Wire format: Bybit's v5 WebSocket "Trade" reference (docs/v5/websocket/public/trade in
the bybit-exchange/docs repository), https://bybit-exchange.github.io/docs/v5/websocket/public/trade

The category (``spot`` or ``linear``) picks the endpoint path, and the two
answer subscribes and pings in slightly different shapes; both are read. One
frame carries up to 1024 trades of one symbol. ``S`` is the taker's side
(checked against recorded frames). The trade id ``i`` is a string, a UUID on
derivatives, with no order, so gaps cannot be seen from ids.

``inverse`` (``BTCUSD``, stored as ``BTC-USD``) sizes are USD, one contract
being 1 USD: the stored volume is ``size / price`` in the base currency
(:func:`rtkit.instruments.bybit_inverse` holds the fact).
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson

from rtkit.books import BookMessage
from rtkit.books.wire import levels
from rtkit.instruments import Contract
from rtkit.kinds import Rows
from rtkit.validate import (
    BUY,
    MAX_TRADE_ID_CHARS,
    MAX_TS_MS,
    MAX_VALUE,
    MIN_TS_MS,
    SELL,
    Reject,
    epoch_ns,
    field,
    plain_number_text,
    positive,
    side_code,
    text_id,
)  # fmt: skip
from rtkit.venues.base import (
    Adapter,
    Control,
    NativeSymbols,
    chunks,
    each_trade,
    loads,
    plain_text_frame,
    split_glued,
)  # fmt: skip

CATEGORIES = ("spot", "linear", "inverse")
_URL = "wss://stream.bybit.com/v5/public/{category}"
#: args per subscribe request: spot refuses more than 10 ("args size >10");
#: linear documents no cap, so the character budget below decides
_ARGS_PER_REQUEST = {"spot": 10, "linear": 500, "inverse": 500}
#: characters of one request's ``args``, half of the documented 21,000
_ARGS_CHARS = 10_500
_TOPIC = "publicTrade."
_BOOK = "orderbook."
#: the book depths Bybit offers (``orderbook.<depth>``), and the one taken without depth=
BOOK_DEPTHS = (50, 200, 1000)
DEFAULT_BOOK_DEPTH = 50
_SIDES = {"Buy": BUY, "Sell": SELL}


def checked_category(category) -> str:
    """``category`` if Bybit's trade feed is supported for it, else a ValueError."""
    if category not in CATEGORIES:
        raise ValueError("bybit category must be 'spot', 'linear' or 'inverse' (pass e.g. "
                         f"category='linear'), not {category!r}")
    return category


class BybitAdapter(Adapter):
    name = "bybit"
    default_url = _URL.format(category="spot")
    native_example = "BTCUSDT"
    ids_consecutive = False  # ``i`` is a string (UUID on derivatives), not a sequence
    ping_interval_s = 20.0  # Bybit recommends a ping every 20 s
    kinds = ("trades", "quotes", "book")
    stale_after_s = 45.0  # pongs every 20 s keep even a quiet symbol's stream fresh

    def __init__(self, category: str = "spot") -> None:
        self.category = checked_category(category)
        self._symbols = NativeSymbols(split_glued)
        self._plain_frame = False  # the frame being read passed plain_text_frame
        self._last_quote: dict[str, int] = {}  # symbol → u of its last quote
        #: symbol → its contract's facts (inverse: 1 USD a contract), for the record
        self.contracts: dict[str, Contract] = {}
        self._to_tick = self._inverse_tick if category == "inverse" else self._tick

    def configure(self, kinds: tuple[str, ...], depth: int | None) -> None:
        if depth is not None and depth not in BOOK_DEPTHS:
            raise ValueError(f"bybit books come at depth {', '.join(map(str, BOOK_DEPTHS))}; "
                             f"pass depth= one of those, not {depth!r}")
        super().configure(kinds, depth)

    def book_max_levels(self) -> int | None:
        return self.depth or DEFAULT_BOOK_DEPTH

    def _topics(self, native: str) -> list[str]:
        collected = self.collected
        topics = [_TOPIC + native] if "trades" in collected else []
        if "quotes" in collected:
            topics.append(f"{_BOOK}1.{native}")
        if "book" in collected:
            topics.append(f"{_BOOK}{self.depth or DEFAULT_BOOK_DEPTH}.{native}")
        return topics

    def book_resubscribe_messages(self, symbols: list[str]) -> list[str]:
        """Unsubscribe then subscribe the books: Bybit answers with a fresh snapshot."""
        depth = self.depth or DEFAULT_BOOK_DEPTH
        topics = [f"{_BOOK}{depth}.{self.native_symbol(s)}" for s in symbols]
        out = []
        for op in ("unsubscribe", "subscribe"):
            for i, run in enumerate(chunks(topics, _ARGS_PER_REQUEST[self.category],
                                           _ARGS_CHARS), 1):
                out.append(orjson.dumps({"req_id": f"book-{op}-{i}", "op": op,
                                         "args": run}).decode())
        return out

    def url(self, base_url: str | None, symbols: list[str]) -> str:
        return base_url or _URL.format(category=self.category)

    def native_symbol(self, symbol: str) -> str:
        return self.normalise_symbol(symbol).replace("-", "")

    def subscribe_messages(self, symbols: list[str]) -> list[str]:
        for s in symbols:
            self._symbols.learn(self.native_symbol(s), s)
        topics = [t for s in symbols for t in self._topics(self.native_symbol(s))]
        runs = chunks(topics, _ARGS_PER_REQUEST[self.category], _ARGS_CHARS)
        return [orjson.dumps({"req_id": f"trades-{i}", "op": "subscribe", "args": run}).decode()
                for i, run in enumerate(runs, 1)]

    def ping_message(self) -> str:
        return '{"req_id":"ping","op":"ping"}'

    def parse(self, frame, received_at_ns: int):
        msg = loads(frame)
        if type(msg) is not dict:
            raise Reject("unknown_message", "not a JSON object")
        topic = msg.get("topic")
        if topic is None:
            return self._control(msg)
        if type(topic) is str and topic.startswith(_BOOK):
            return self._book(msg, topic, received_at_ns, plain_text_frame(frame))
        if type(topic) is not str or not topic.startswith(_TOPIC):
            raise Reject("unknown_message", f"topic={topic!r:.40}")
        trades = field(msg, "data")
        if type(trades) is not list or not trades:
            raise Reject("missing_field", f"data={trades!r:.40}")
        self._plain_frame = plain_text_frame(frame)
        return each_trade(trades, self._to_tick)

    def _tick(self, trade) -> tuple:
        # Fast path for a well-formed trade; the careful path below names what is wrong.
        try:
            tid, ms, taker, p, v = trade["i"], trade["T"], trade["S"], trade["p"], trade["v"]
            if (type(p) is str and type(v) is str and type(tid) is str and tid
                    and len(tid) <= MAX_TRADE_ID_CHARS
                    # the frame's one scan, or each value: no "1_000", " 1 ", non-ASCII
                    # digits, nor control characters in the id
                    and (self._plain_frame or (tid.isascii() and tid.isprintable()
                                               and plain_number_text(p) and plain_number_text(v)))):
                price, volume = float(p), float(v)
                if (type(ms) is int and MIN_TS_MS <= ms <= MAX_TS_MS and 0.0 < price <= MAX_VALUE
                        and 0.0 < volume <= MAX_VALUE and taker in _SIDES):
                    return (self._symbols(trade["s"]), tid, ms * 1_000_000, price, volume,
                            _SIDES[taker])
        except (KeyError, TypeError, ValueError):
            pass
        return self._tick_carefully(trade)

    def _inverse_tick(self, trade) -> tuple:
        """An inverse trade: its size of USD contracts (1 USD each) → base units."""
        symbol, tid, ts, price, usd, side = self._tick(trade)
        volume = usd / price
        if not 0.0 < volume <= MAX_VALUE:
            raise Reject("out_of_range", f"{usd!r} USD at {price!r} is {volume!r} base units")
        return symbol, tid, ts, price, volume, side

    def contract_symbols(self, symbols: list[str]) -> list[str]:
        """Inverse symbols are contracts (their fact is fixed: 1 USD a contract)."""
        return list(symbols) if self.category == "inverse" else []

    def set_contracts(self, contracts: Iterable[Contract]) -> None:
        for contract in contracts:
            self.contracts[contract.symbol] = contract

    def _tick_carefully(self, trade) -> tuple:
        symbol = self._symbols(field(trade, "s"))
        tid = text_id(field(trade, "i"), "trade id i")
        return (
            symbol,
            tid,
            epoch_ns(field(trade, "T"), "ms"),
            positive(trade.get("p"), "p"),
            positive(trade.get("v"), "v"),
            side_code(field(trade, "S"), "Buy", "Sell"),
        )

    def _book(self, msg: dict, topic: str, received_at_ns: int, plain: bool):
        """An ``orderbook.1`` frame → a quotes row; ``orderbook.<depth>`` → a BookMessage."""
        data = field(msg, "data")
        if type(data) is not dict:
            raise Reject("missing_field", f"data={data!r:.40}")
        symbol = self._symbols(field(data, "s"))
        u = field(data, "u")
        if type(u) is not int or not 0 < u < 2**63:
            raise Reject("bad_number", f"sequence u={u!r:.40}")
        ms = msg.get("ts")
        ts = ms * 1_000_000 if type(ms) is int and MIN_TS_MS <= ms <= MAX_TS_MS else \
            epoch_ns(field(msg, "ts"), "ms")
        bids = levels(data.get("b", []), "b", plain)
        asks = levels(data.get("a", []), "a", plain)
        if topic.startswith(f"{_BOOK}1."):
            if self._last_quote.get(symbol) == u:  # resent unchanged after 3 s
                return Control("heartbeat", f"{topic} unchanged at u {u}")
            if not bids or not asks:
                raise Reject("missing_field", f"{topic} u {u} has an empty side")
            self._last_quote[symbol] = u
            (bp, bs), (ap, asz) = bids[0], asks[0]
            return Rows(quotes=[(self.name, symbol, ts, received_at_ns, float(bp), float(bs),
                                 float(ap), float(asz), u)])
        kind = msg.get("type")
        if kind not in ("snapshot", "delta"):
            raise Reject("unknown_message", f"{topic} type={kind!r:.40}")
        # u 1 is a snapshot after a restart of Bybit's service, whatever the type says
        book = BookMessage(symbol, ts, received_at_ns, kind == "snapshot" or u == 1, bids, asks,
                           seq=u)
        return Rows(book=[book])

    @staticmethod
    def _control(msg: dict) -> Control:
        op, success = msg.get("op"), msg.get("success")
        detail = f"{op}: {msg.get('ret_msg')}"
        if success is False:
            return Control("error", detail)
        if op in ("ping", "pong"):  # spot/linear answer with op "ping" and ret_msg "pong"
            return Control("pong", detail)
        if success is True and op in ("subscribe", "unsubscribe"):
            return Control("ack", f"{detail} req_id={msg.get('req_id')}")
        raise Reject("unknown_message", f"op={op!r:.40}")


ADAPTERS = {"bybit": BybitAdapter}
