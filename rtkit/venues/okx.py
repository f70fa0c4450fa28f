"""OKX v5 ``trades``; with the ``quotes`` and ``book`` kinds also ``bbo-tbt`` (the best
bid and offer, tick by tick) and ``books`` (the L2 book: 400 levels a side, a snapshot
then updates chained by ``prevSeqId``).

Wire format: OKX's API v5 reference, https://www.okx.com/docs-v5/en/ (market data,
WebSocket "Trades channel").

OKX aggregates: one push per taker order, fill price and source, where
``count`` maker fills stand behind one message and ``tradeId`` is the *last*
of their ids. Ids are consecutive per instrument, so each tick carries a 7th
element, the group's first id (``tradeId - count + 1``), and the gap detector
sees that a group 121..123 after 120 misses nothing. Everything is a string
except ``seqId``; ``side`` is the taker's. The keep-alive is the plain text
``ping``, answered by the plain text ``pong``.

``SWAP`` and ``FUTURES`` instruments (``BTC-USDT-SWAP``, ``BTC-USD-220527``) keep
their id as the symbol, so they never mix with the spot pair, and their ``sz`` is
a number of contracts: it becomes base units with the contract's value
(:mod:`rtkit.instruments`), which the adapter must be taught (``contract_values=``
or the collector's fetch at start). A contract whose value is unknown is an
``unknown_symbol`` reject, never a size stored in the wrong unit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import orjson

from rtkit.books.parse import okx as okx_books
from rtkit.instruments import Contract, contracts_from_option, okx_contract_id
from rtkit.kinds import Rows
from rtkit.validate import (
    MAX_VALUE,
    Reject,
    epoch_ns,
    field,
    positive,
    side_code,
    whole_number,
)  # fmt: skip
from rtkit.venues.base import (
    Adapter,
    Control,
    NativeSymbols,
    chunks,
    each_trade,
    loads,
    split_symbol,
)  # fmt: skip

#: instruments per subscribe request; the documented limit is 64 KB of args
_ARGS_PER_REQUEST = 500
_ARGS_CHARS = 32_000
#: ``notice`` code announcing that the connection closes for a service upgrade
_SERVICE_UPGRADE = "64008"
#: the public L2 channel and its depth: ``books`` (400 levels, every 100 ms) is the only
#: snapshot-then-updates channel OKX serves without a login (``books-l2-tbt`` and
#: ``books50-l2-tbt`` need a VIP tier; OKX notice of 2022-04-14)
_BOOK_CHANNEL = "books"
BOOK_DEPTHS = (400,)
#: the best bid and offer, tick by tick, public to every user (same notice)
_BBO_CHANNEL = "bbo-tbt"


class OkxAdapter(Adapter):
    name = "okx"
    default_url = "wss://ws.okx.com:8443/ws/v5/public"
    native_example = "ETH-USDC"
    ids_consecutive = True
    ids_grouped = True
    ping_interval_s = 20.0  # OKX drops a connection after 30 s without traffic
    stale_after_s = 45.0  # pongs every 20 s keep even a quiet instrument's stream fresh
    kinds = ("trades", "quotes", "book")

    def __init__(self, contract_values: Mapping | None = None) -> None:
        self._symbols = NativeSymbols(split_symbol)
        #: contract id → its facts: the SWAP/FUTURES whose sizes can be converted
        self.contracts: dict[str, Contract] = {}
        if contract_values:
            self.set_contracts(contracts_from_option(self.name, contract_values).values())

    def normalise_symbol(self, symbol: str) -> str:
        """``BTC-USDT``, ``btc/usdt``…; a SWAP/FUTURES id stays itself, upper case."""
        return okx_contract_id(symbol) or super().normalise_symbol(symbol)

    def configure(self, kinds: tuple[str, ...], depth: int | None) -> None:
        if depth is not None and depth not in BOOK_DEPTHS:
            raise ValueError(f"okx books come at depth {BOOK_DEPTHS[0]} only (the public "
                             f"'books' channel); pass depth={BOOK_DEPTHS[0]} or leave it out, "
                             f"not {depth!r}")
        super().configure(kinds, depth)

    def book_max_levels(self) -> int | None:
        return BOOK_DEPTHS[0]

    def _channels(self) -> list[str]:
        """The channels of the collected kinds, trades first."""
        collected = self.collected
        return ([c for c, kind in (("trades", "trades"), (_BBO_CHANNEL, "quotes"),
                                   (_BOOK_CHANNEL, "book")) if kind in collected])

    def book_resubscribe_messages(self, symbols: list[str]) -> list[str]:
        """Unsubscribe then subscribe the books: OKX answers with a fresh snapshot."""
        args = [{"channel": _BOOK_CHANNEL, "instId": self.native_symbol(s)} for s in symbols]
        return [orjson.dumps({"id": f"book{op[0]}{i}", "op": op, "args": run}).decode()
                for op in ("unsubscribe", "subscribe")
                for i, run in enumerate(chunks(args, _ARGS_PER_REQUEST, _ARGS_CHARS), 1)]

    def native_symbol(self, symbol: str) -> str:
        return self.normalise_symbol(symbol)

    def contract_symbols(self, symbols: list[str]) -> list[str]:
        """The SWAP/FUTURES among (normalised) ``symbols``: they need a contract value."""
        return [s for s in symbols if okx_contract_id(s)]

    def set_contracts(self, contracts: Iterable[Contract]) -> None:
        for contract in contracts:
            self.contracts[contract.symbol] = contract
            self._symbols.learn(contract.symbol, contract.symbol)

    def subscribe_messages(self, symbols: list[str]) -> list[str]:
        for s in symbols:
            okx_books.SYMBOLS.learn(self.native_symbol(s), s)
        channels = self._channels()
        args = [{"channel": c, "instId": self.native_symbol(s)} for s in symbols for c in channels]
        return [orjson.dumps({"id": f"trades{i}", "op": "subscribe", "args": run}).decode()
                for i, run in enumerate(chunks(args, _ARGS_PER_REQUEST, _ARGS_CHARS), 1)]

    def ping_message(self) -> str:
        return "ping"

    def parse(self, frame, received_at_ns: int):
        if frame == b"pong" or frame == "pong":
            return Control("pong")
        msg = loads(frame)
        if type(msg) is not dict:
            raise Reject("unknown_message", "not a JSON object")
        trades = msg.get("data")
        if trades is None:
            return self._control(msg)
        arg = msg.get("arg")
        channel = arg.get("channel") if type(arg) is dict else None
        if channel in (_BOOK_CHANNEL, _BBO_CHANNEL):
            book, quotes = okx_books.parse(msg, received_at_ns)
            return Rows(book=book) if book else Rows(quotes=quotes)
        if channel not in ("trades", "trades-all"):
            raise Reject("unknown_message", f"channel={channel!r:.40}")
        if type(trades) is not list or not trades:
            raise Reject("missing_field", f"data={trades!r:.40}")
        return each_trade(trades, self._tick)

    def _tick(self, trade) -> tuple:
        native = field(trade, "instId")
        try:
            symbol = self._symbols(native)  # a contract's id is learnt with its value
        except Reject:
            if okx_contract_id(native) == native:
                raise Reject("unknown_symbol", f"{native} is a contract of unknown value: "
                             "collect it by name (its value is fetched) or pass "
                             "contract_values=") from None
            raise
        contract = self.contracts.get(symbol) if self.contracts else None
        last = whole_number(field(trade, "tradeId"), "tradeId")
        count = trade.get("count")  # absent on ``trades-all``: one trade per push
        count = 1 if count is None else whole_number(count, "count")
        if not 1 <= count <= last:
            raise Reject("bad_number", f"count={count} for tradeId={last}")
        ts = epoch_ns(field(trade, "ts"), "ms")
        price = positive(trade.get("px"), "px")
        volume = positive(trade.get("sz"), "sz")
        if contract is not None:
            volume = _base_units(contract, volume, price)
        return (symbol, last, ts, price, volume, side_code(field(trade, "side"), "buy", "sell"),
                last - count + 1)

    @staticmethod
    def _control(msg: dict) -> Control:
        event = msg.get("event")
        if event in ("subscribe", "unsubscribe"):
            return Control("ack", f"{event} {msg.get('arg')}")
        detail = f"{msg.get('code')}: {msg.get('msg')}"
        if event == "error":
            return Control("error", detail)
        if event == "notice":
            return Control("reconnect" if str(msg.get("code")) == _SERVICE_UPGRADE else "info",
                           detail)
        raise Reject("unknown_message", f"event={event!r:.40}")


def _base_units(contract: Contract, contracts: float, price: float) -> float:
    """A size in contracts → base units, still a stored volume's range."""
    volume = contract.base_volume(contracts, price)
    if not 0.0 < volume <= MAX_VALUE:
        raise Reject("out_of_range", f"{contracts!r} contracts of {contract.symbol} are "
                     f"{volume!r} base units")
    return volume


ADAPTERS = {"okx": OkxAdapter}
