"""The simulator's REST answers, venue by venue: pure functions from the simulator's
state (its trade tape, its books through a provider, its market list) to the
status, JSON body and headers the venue would send. :mod:`rtkit.sim.rest` serves them.

The shapes follow each venue's documentation; the paths are
those of :mod:`rtkit.rest.endpoints`, which the client uses.
"""

from __future__ import annotations

import bisect
import hashlib
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rtkit.rest.endpoints import (
    BINANCE_FUTURES_DEPTHS,
    binance_futures_depth_weight,
    binance_spot_depth_weight,
    venue_rest,
)
from rtkit.sim.dialects.base import iso_time
from rtkit.sim.market import START_PRICES, SimTrade
from rtkit.venues.base import split_glued
from rtkit.venues.kraken_symbols import COMMON_TO_LEGACY, kraken_symbol_parts

#: a book's levels for a REST snapshot: ``(venue, symbol, limit)`` →
#: ``(bids high→low, asks low→high, last_update_id or sequence, time in ns)``,
#: levels as ``(price, size)`` decimal strings; the book model registers its own
DepthProvider = Callable[[str, str, int], tuple[list[tuple[str, str]], list[tuple[str, str]],
                                                 int, int]]

#: trades the REST tape keeps per symbol (the oldest fall off, as a venue's retention)
TAPE_SIZE = 100_000


class Answer(tuple):
    """``(status, body, headers)``."""

    def __new__(cls, status: int, body: Any, headers: dict[str, str] | None = None):
        return super().__new__(cls, (status, body, headers or {}))


def default_depth(venue: str, symbol: str, limit: int) -> tuple[list, list, int, int]:
    """A steady book around the symbol's start price: ``limit`` levels a side one tick
    apart, sizes from a hash of the level (the same answer every time), sequence from
    the clock in ms so that it rises."""
    base = symbol.split("-")[0]
    mid = START_PRICES.get(base, 100.0)
    tick = 0.01 if mid >= 100 else 0.0001
    decimals = 2 if mid >= 100 else 4

    def size(side: str, i: int) -> str:
        digest = hashlib.blake2b(f"{symbol}{side}{i}".encode(), digest_size=4).digest()
        return f"{int.from_bytes(digest, 'big') % 100_000 / 10_000 + 0.0001:.4f}"

    bids = [(f"{mid - tick * (i + 1):.{decimals}f}", size("b", i)) for i in range(limit)]
    asks = [(f"{mid + tick * (i + 1):.{decimals}f}", size("a", i)) for i in range(limit)]
    now = time.time_ns()
    return bids, asks, now // 1_000_000, now


@dataclass
class Tape:
    """The last ``size`` trades of each symbol, in id order, each with a unique,
    rising time key in ns (the trade's ms plus its rank inside that ms): Kraken's
    ``since`` cursor needs one."""

    size: int = TAPE_SIZE
    trades: dict[str, deque[SimTrade]] = field(default_factory=dict)
    keys: dict[str, deque[int]] = field(default_factory=dict)

    def add(self, trade: SimTrade) -> None:
        trades = self.trades.setdefault(trade.symbol, deque(maxlen=self.size))
        keys = self.keys.setdefault(trade.symbol, deque(maxlen=self.size))
        key = trade.ts_ns
        if keys and keys[-1] >= key:
            key = keys[-1] + 1
        trades.append(trade)
        keys.append(key)

    def of(self, symbol: str) -> tuple[list[SimTrade], list[int]]:
        return list(self.trades.get(symbol, ())), list(self.keys.get(symbol, ()))


class _VenueBase:
    """The state the answers read, and the helpers they share."""

    def __init__(self, venue: str, tape: Tape, symbols: Callable[[], list[str]],
                 depth: Callable[[], DepthProvider]) -> None:
        self.venue = venue
        self.spec = venue_rest(venue)
        self.tape = tape
        self.symbols = symbols
        self.depth_provider = depth

    # --- symbols ------------------------------------------------------------------------
    def symbol_of(self, native: str) -> str | None:
        """The venue's spelling → BASE-QUOTE (None when it cannot be read)."""
        for symbol in self.symbols():
            if self.spec.native(symbol) == native:
                return symbol
        if self.venue.startswith("kraken"):
            parts = kraken_symbol_parts(native)
        elif "-" in native:
            parts = tuple(native.upper().split("-")[:2])  # type: ignore[assignment]
        else:
            parts = split_glued(native)
        return f"{parts[0]}-{parts[1]}" if parts and len(parts) == 2 else None

    # --- helpers ------------------------------------------------------------------------
    def _known(self, native: str) -> str:
        symbol = self.symbol_of(native)
        if symbol is None:
            raise ValueError(f"invalid symbol {native!r}")
        return symbol

    def _book(self, symbol: str, limit: int):
        return self.depth_provider()(self.venue, symbol, limit)

    def _from_id(self, symbol: str, from_id: int | None, limit: int) -> list[SimTrade]:
        """Up to ``limit`` trades from ``from_id`` upwards (None: the latest ``limit``)."""
        trades, _ = self.tape.of(symbol)
        if from_id is None:
            return trades[-limit:]
        ids = [t.trade_id for t in trades]
        start = bisect.bisect_left(ids, from_id)
        return trades[start:start + limit]

    def _below(self, symbol: str, after: int | None, limit: int) -> list[SimTrade]:
        """Up to ``limit`` trades with ids below ``after``, newest first."""
        trades, _ = self.tape.of(symbol)
        ids = [t.trade_id for t in trades]
        end = len(ids) if after is None else bisect.bisect_left(ids, after)
        return trades[max(0, end - limit):end][::-1]


class _BinanceCoinbase(_VenueBase):
    """Binance (spot, USD-M) and Coinbase (Exchange, Advanced Trade)."""

    # --- Binance ------------------------------------------------------------------------
    def _binance_depth(self, native: str, limit: int, futures: bool) -> Answer:
        bids, asks, last_id, at = self._book(self._known(native), limit)
        body: dict[str, Any] = {"lastUpdateId": last_id}
        if futures:
            body.update(E=at // 1_000_000, T=at // 1_000_000)
        body.update(bids=[list(x) for x in bids[:limit]], asks=[list(x) for x in asks[:limit]])
        return Answer(200, body)

    def _binance_trades(self, q: dict[str, str], agg: bool) -> Answer:
        limit = min(int(q.get("limit", 500)), 1000)
        from_id = int(q["fromId"]) if "fromId" in q else None
        trades = self._from_id(self._known(q["symbol"]), from_id, limit)
        if agg:
            rows = [{"a": t.trade_id, "p": t.price, "q": t.volume, "f": t.trade_id,
                     "l": t.trade_id, "T": t.ts_ns // 1_000_000, "m": t.side == "sell"}
                    for t in trades]
        else:
            rows = [{"id": t.trade_id, "price": t.price, "qty": t.volume,
                     "quoteQty": f"{float(t.price) * float(t.volume):.8f}",
                     "time": t.ts_ns // 1_000_000, "isBuyerMaker": t.side == "sell",
                     "isBestMatch": True} for t in trades]
        return Answer(200, rows)

    def _binance_info(self, futures: bool) -> Answer:
        symbols = []
        for s in self.symbols():
            base, quote = s.split("-")
            row = {"symbol": base + quote, "status": "TRADING", "baseAsset": base,
                   "quoteAsset": quote}
            if futures:
                row["contractType"] = "PERPETUAL"
            symbols.append(row)
        return Answer(200, {"timezone": "UTC", "serverTime": time.time_ns() // 1_000_000,
                            "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT",
                                            "interval": "MINUTE", "intervalNum": 1,
                                            "limit": self.spec.limit}],
                            "symbols": symbols})

    # --- Coinbase -----------------------------------------------------------------------
    def _coinbase_exchange_book(self, native: str) -> Answer:
        bids, asks, seq, at = self._book(self._known(native), 1000)
        return Answer(200, {"bids": [[p, s, 1] for p, s in bids],
                            "asks": [[p, s, 1] for p, s in asks],
                            "sequence": seq, "auction_mode": False, "auction": None,
                            "time": iso_time(at)})

    def _coinbase_exchange_trades(self, native: str, q: dict[str, str]) -> Answer:
        limit = min(int(q.get("limit", 1000)), 1000)
        after = int(q["after"]) if "after" in q else None
        page = self._below(self._known(native), after, limit)
        headers = {}
        if page:
            headers = {"CB-BEFORE": str(page[0].trade_id), "CB-AFTER": str(page[-1].trade_id)}
        return Answer(200, [{"time": iso_time(t.ts_ns), "trade_id": t.trade_id, "price": t.price,
                             "size": t.volume, "side": "sell" if t.side == "buy" else "buy"}
                            for t in page], headers)

    def _coinbase_book(self, q: dict[str, str]) -> Answer:
        symbol = self._known(q["product_id"])
        bids, asks, _, at = self._book(symbol, int(q.get("limit", 1000)))
        return Answer(200, {"pricebook": {
            "product_id": symbol, "time": iso_time(at),
            "bids": [{"price": p, "size": s} for p, s in bids],
            "asks": [{"price": p, "size": s} for p, s in asks]}})

    def _coinbase_ticker(self, native: str, q: dict[str, str]) -> Answer:
        limit = min(int(q.get("limit", 1000)), 1000)
        start = int(q["start"]) * 10**9 if "start" in q else 0
        end = (int(q["end"]) + 1) * 10**9 if "end" in q else 1 << 62
        trades, _ = self.tape.of(self._known(native))
        window = [t for t in trades if start <= t.ts_ns < end][-limit:][::-1]
        return Answer(200, {"trades": [
            {"trade_id": str(t.trade_id), "product_id": t.symbol, "price": t.price,
             "size": t.volume, "time": iso_time(t.ts_ns),
             "side": "SELL" if t.side == "buy" else "BUY"} for t in window],
            "best_bid": "", "best_ask": ""})


class _KrakenOkxBybitBitstamp(_VenueBase):
    """Kraken, OKX, Bybit and Bitstamp."""

    # --- Kraken -------------------------------------------------------------------------
    def _kraken_depth(self, q: dict[str, str]) -> Answer:
        symbol = self._known(q["pair"])
        bids, asks, _, at = self._book(symbol, int(q.get("count", 100)))
        stamp = at // 10**9
        return Answer(200, {"error": [], "result": {self.spec.native(symbol): {
            "asks": [[p, s, stamp] for p, s in asks], "bids": [[p, s, stamp] for p, s in bids]}}})

    def _kraken_trades(self, q: dict[str, str]) -> Answer:
        symbol = self._known(q["pair"])
        count = min(int(q.get("count", 1000)), 1000)
        since = int(q.get("since", 0))
        trades, keys = self.tape.of(symbol)
        start = bisect.bisect_right(keys, since)
        # the time is a JSON number of seconds, as Kraken sends it (µs survive the float)
        rows = [[t.price, t.volume, round(k / 1e9, 6), "b" if t.side == "buy" else "s", "l", "",
                 t.trade_id] for t, k in zip(trades[start:start + count],
                                             keys[start:start + count], strict=True)]
        last = keys[min(start + count, len(keys)) - 1] if rows else since
        return Answer(200, {"error": [], "result": {self.spec.native(symbol): rows,
                                                    "last": str(last)}})

    def _kraken_pairs(self) -> Answer:
        pairs = {}
        for s in self.symbols():
            base, quote = (COMMON_TO_LEGACY.get(x, x) for x in s.split("-"))
            pairs[base + quote] = {"altname": base + quote, "wsname": f"{base}/{quote}",
                                   "base": base, "quote": quote, "status": "online"}
        return Answer(200, {"error": [], "result": pairs})

    # --- OKX ----------------------------------------------------------------------------
    def _okx_books(self, q: dict[str, str]) -> Answer:
        bids, asks, _, at = self._book(self._known(q["instId"]), int(q.get("sz", 400)))
        return Answer(200, {"code": "0", "msg": "", "data": [{
            "asks": [[p, s, "0", "1"] for p, s in asks],
            "bids": [[p, s, "0", "1"] for p, s in bids],
            "ts": str(at // 1_000_000)}]})

    def _okx_trades(self, q: dict[str, str]) -> Answer:
        limit = min(int(q.get("limit", 100)), 100)
        after = int(q["after"]) if "after" in q else None
        page = self._below(self._known(q["instId"]), after, limit)
        return Answer(200, {"code": "0", "msg": "", "data": [
            {"instId": t.symbol, "side": t.side, "sz": t.volume, "px": t.price,
             "tradeId": str(t.trade_id), "ts": str(t.ts_ns // 1_000_000)} for t in page]})

    def _okx_instruments(self, inst_type: str) -> Answer:
        rows = []
        symbols = self.symbols()
        # a traded SWAP/FUTURES id (BTC-USD-SWAP) stands for its pair here
        for s in dict.fromkeys("-".join(s.split("-")[:2]) for s in symbols):
            base, quote = s.split("-")
            if inst_type == "SPOT":
                rows.append({"instType": "SPOT", "instId": s, "baseCcy": base, "quoteCcy": quote,
                             "ctVal": "", "ctValCcy": "", "ctType": "", "state": "live"})
            elif inst_type == "SWAP":
                # linear (USDT-margined): ctVal in the base; inverse (USD): ctVal in USD
                linear = quote != "USD"
                rows.append({"instType": "SWAP", "instId": f"{s}-SWAP", "baseCcy": "",
                             "quoteCcy": "", "ctType": "linear" if linear else "inverse",
                             "ctVal": _okx_ct_val(base) if linear else "100",
                             "ctValCcy": base if linear else "USD", "state": "live"})
            elif inst_type == "FUTURES":
                rows.append({"instType": "FUTURES", "instId": f"{s}-261225", "baseCcy": "",
                             "quoteCcy": "", "ctType": "linear" if quote != "USD" else "inverse",
                             "ctVal": _okx_ct_val(base) if quote != "USD" else "100",
                             "ctValCcy": base if quote != "USD" else "USD", "state": "live"})
        return Answer(200, {"code": "0", "msg": "", "data": rows})

    # --- Bybit --------------------------------------------------------------------------
    def _bybit_book(self, q: dict[str, str]) -> Answer:
        symbol = self._known(q["symbol"])
        bids, asks, seq, at = self._book(symbol, int(q.get("limit", 200)))
        return Answer(200, {"retCode": 0, "retMsg": "OK", "result": {
            "s": self.spec.native(symbol), "b": [list(x) for x in bids],
            "a": [list(x) for x in asks], "ts": at // 1_000_000, "u": seq, "seq": seq},
            "time": at // 1_000_000})

    def _bybit_trades(self, q: dict[str, str]) -> Answer:
        limit = min(int(q.get("limit", 60)), 60 if q.get("category", "spot") == "spot" else 1000)
        page = self._below(self._known(q["symbol"]), None, limit)
        return Answer(200, {"retCode": 0, "retMsg": "OK", "result": {"category": "spot", "list": [
            {"execId": f"{t.trade_id:x}-{t.ts_ns % 997}", "symbol": q["symbol"],
             "price": t.price, "size": t.volume, "side": t.side.capitalize(),
             "time": str(t.ts_ns // 1_000_000), "isBlockTrade": False} for t in page]}})

    def _bybit_instruments(self) -> Answer:
        return Answer(200, {"retCode": 0, "retMsg": "OK", "result": {"category": "spot", "list": [
            {"symbol": self.spec.native(s), "baseCoin": s.split("-")[0],
             "quoteCoin": s.split("-")[1], "status": "Trading"} for s in self.symbols()]}})

    # --- Bitstamp -----------------------------------------------------------------------
    def _bitstamp_book(self, native: str) -> Answer:
        bids, asks, _, at = self._book(self._known(native), 1000)
        return Answer(200, {"timestamp": str(at // 10**9), "microtimestamp": str(at // 1000),
                            "bids": [list(x) for x in bids], "asks": [list(x) for x in asks]})

    def _bitstamp_trades(self, native: str, q: dict[str, str]) -> Answer:
        span = {"minute": 60, "hour": 3600, "day": 86_400}[q.get("time", "hour")]
        trades, _ = self.tape.of(self._known(native))
        since = time.time_ns() - span * 10**9
        return Answer(200, [{"date": str(t.ts_ns // 10**9), "tid": str(t.trade_id),
                             "price": t.price, "amount": t.volume,
                             "type": "0" if t.side == "buy" else "1"}
                            for t in reversed(trades) if t.ts_ns >= since])


class Venue(_BinanceCoinbase, _KrakenOkxBybitBitstamp):
    """The REST answers of one venue from the simulator's state."""

    # --- routing ------------------------------------------------------------------------
    def answer(self, path: str, query: dict[str, str]) -> tuple[Answer, int]:
        """``(answer, cost)``: the venue's reply to GET ``path?query`` and its cost in the
        venue's budget unit."""
        try:
            return self._route(path, query)
        except (KeyError, ValueError) as exc:
            return self.error(400, f"bad request: {exc}"), 1

    def error(self, status: int, message: str) -> Answer:
        v = self.venue
        if v.startswith("binance"):
            return Answer(status, {"code": -1100, "msg": message})
        if v.startswith("kraken"):
            return Answer(status, {"error": [f"EGeneral:{message}"], "result": {}})
        if v == "okx":
            return Answer(status, {"code": "51000", "msg": message, "data": []})
        if v == "bybit":
            return Answer(status, {"retCode": 10001, "retMsg": message, "result": {}})
        return Answer(status, {"message": message})

    def _route(self, path: str, q: dict[str, str]) -> tuple[Answer, int]:
        v = self.venue
        if v == "binance":
            if path == "/api/v3/depth":
                limit = min(int(q.get("limit", 100)), 5000)
                return self._binance_depth(q["symbol"], limit, False), \
                    binance_spot_depth_weight(limit)
            if path == "/api/v3/historicalTrades":
                return self._binance_trades(q, agg=False), 25
            if path == "/api/v3/aggTrades":
                return self._binance_trades(q, agg=True), 4
            if path == "/api/v3/exchangeInfo":
                return self._binance_info(futures=False), 20
        elif v == "binance-futures":
            if path == "/fapi/v1/depth":
                limit = int(q.get("limit", 500))
                if limit not in BINANCE_FUTURES_DEPTHS:
                    raise ValueError(f"limit must be one of {BINANCE_FUTURES_DEPTHS}")
                return self._binance_depth(q["symbol"], limit, True), \
                    binance_futures_depth_weight(limit)
            if path == "/fapi/v1/aggTrades":
                return self._binance_trades(q, agg=True), 20
            if path == "/fapi/v1/exchangeInfo":
                return self._binance_info(futures=True), 1
        elif v == "coinbase-exchange":
            if m := re.fullmatch(r"/products/([^/]+)/book", path):
                return self._coinbase_exchange_book(m.group(1)), 1
            if m := re.fullmatch(r"/products/([^/]+)/trades", path):
                return self._coinbase_exchange_trades(m.group(1), q), 1
            if path == "/products":
                return Answer(200, [{"id": s, "base_currency": s.split("-")[0],
                                     "quote_currency": s.split("-")[1], "status": "online"}
                                    for s in self.symbols()]), 1
        elif v == "coinbase":
            if path == "/api/v3/brokerage/market/product_book":
                return self._coinbase_book(q), 1
            if m := re.fullmatch(r"/api/v3/brokerage/market/products/([^/]+)/ticker", path):
                return self._coinbase_ticker(m.group(1), q), 1
            if path == "/api/v3/brokerage/market/products":
                return Answer(200, {"products": [
                    {"product_id": s, "base_currency_id": s.split("-")[0],
                     "quote_currency_id": s.split("-")[1], "trading_disabled": False}
                    for s in self.symbols()], "num_products": len(self.symbols())}), 1
        elif v.startswith("kraken"):
            if path == "/0/public/Depth":
                return self._kraken_depth(q), 1
            if path == "/0/public/Trades":
                return self._kraken_trades(q), 1
            if path == "/0/public/AssetPairs":
                return self._kraken_pairs(), 1
        elif v == "okx":
            if path == "/api/v5/market/books":
                return self._okx_books(q), 1
            if path == "/api/v5/market/history-trades":
                return self._okx_trades(q), 1
            if path == "/api/v5/public/instruments":
                return self._okx_instruments(q.get("instType", "SPOT")), 1
        elif v == "bybit":
            if path == "/v5/market/orderbook":
                return self._bybit_book(q), 1
            if path == "/v5/market/recent-trade":
                return self._bybit_trades(q), 1
            if path == "/v5/market/instruments-info":
                return self._bybit_instruments(), 1
        elif v == "bitstamp":
            if m := re.fullmatch(r"/api/v2/order_book/([^/]+)/", path):
                return self._bitstamp_book(m.group(1)), 1
            if m := re.fullmatch(r"/api/v2/transactions/([^/]+)/", path):
                return self._bitstamp_trades(m.group(1), q), 1
            if path == "/api/v2/trading-pairs-info/":
                return Answer(200, [{"name": s.replace("-", "/"),
                                     "url_symbol": self.spec.native(s), "trading": "Enabled"}
                                    for s in self.symbols()]), 1
        return self.error(404, f"no such path on the simulated {v}: {path}"), 1


def _okx_ct_val(base: str) -> str:
    """OKX's contract values of its linear swaps: 0.01 BTC, 0.1 ETH, 1 SOL…"""
    return {"BTC": "0.01", "ETH": "0.1", "SOL": "1", "XRP": "100", "DOGE": "1000"}.get(base, "1")
