"""Reading each venue's REST answers: depth snapshots, trade pages and market lists,
into :class:`~rtkit.rest.endpoints.DepthSnapshot`, :class:`~rtkit.rest.endpoints.RestTrade`
and :class:`~rtkit.rest.endpoints.Instrument`.

Prices and sizes stay the venue's decimal strings (a checksum or an exact compare
needs them as sent). An answer that is not the venue's shape is a
:class:`RestShapeError` that names the venue and what was missing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from rtkit.rest.endpoints import DepthSnapshot, Instrument, RestTrade
from rtkit.venues.kraken_symbols import kraken_symbol_parts


class RestShapeError(ValueError):
    """A venue's REST answer was not in the shape its documentation gives."""


#: what reading a body of another shape raises (a list for an object, 1e308 for a time,
#: an empty ``result``): each becomes a RestShapeError that callers expect
_SHAPE_ERRORS = (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError,
                 StopIteration)


def _iso_ns(text: str) -> int:
    """``2023-09-25T07:49:37.708706Z`` → ns since the epoch."""
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(when.timestamp()) * 10**9 + when.microsecond * 1000


def _levels(rows) -> list[tuple[str, str]]:
    return [(str(row[0]), str(row[1])) for row in rows]


def _dict_levels(rows) -> list[tuple[str, str]]:
    return [(str(row["price"]), str(row["size"])) for row in rows]


def _okx_data(body: Any) -> list:
    if not isinstance(body, dict) or str(body.get("code")) != "0":
        raise RestShapeError(f"okx answered an error: {str(body)[:200]}")
    return body["data"]


def _kraken_result(body: Any) -> dict:
    if not isinstance(body, dict) or body.get("error"):
        raise RestShapeError(f"kraken answered an error: {str(body)[:200]}")
    return body["result"]


def _bybit_result(body: Any) -> dict:
    if not isinstance(body, dict) or body.get("retCode") != 0:
        raise RestShapeError(f"bybit answered an error: {str(body)[:200]}")
    return body["result"]


def _read(readers: Mapping[str, Callable[[Any], Any]], venue: str, body: Any, what: str) -> Any:
    """``venue``'s reader of ``what`` applied to ``body``; any answer not in its shape (or
    a venue without a reader) is a :class:`RestShapeError` that quotes it."""
    try:
        return readers[venue](body)
    except _SHAPE_ERRORS as exc:
        if isinstance(exc, RestShapeError):
            raise
        raise RestShapeError(f"{venue} {what} not understood ({exc!r}): "
                             f"{str(body)[:200]}") from None


# --- depth -----------------------------------------------------------------------------
def depth(venue: str, body: Any) -> DepthSnapshot:
    """A venue's snapshot answer → :class:`DepthSnapshot`."""
    return _read(_DEPTH, venue, body, "depth answer")


def _binance_depth(body) -> DepthSnapshot:
    ms = body.get("T") or body.get("E") or 0
    return DepthSnapshot(_levels(body["bids"]), _levels(body["asks"]), int(body["lastUpdateId"]),
                         int(ms) * 1_000_000)


def _coinbase_exchange_depth(body) -> DepthSnapshot:
    at = _iso_ns(body["time"]) if body.get("time") else 0
    return DepthSnapshot(_levels(body["bids"]), _levels(body["asks"]), int(body["sequence"]), at)


def _coinbase_depth(body) -> DepthSnapshot:
    book = body["pricebook"]
    at = _iso_ns(book["time"]) if book.get("time") else 0
    return DepthSnapshot(_dict_levels(book["bids"]), _dict_levels(book["asks"]), 0, at)


def _kraken_depth(body) -> DepthSnapshot:
    book = next(iter(_kraken_result(body).values()))
    times = [float(row[2]) for row in book["bids"] + book["asks"]]
    return DepthSnapshot(_levels(book["bids"]), _levels(book["asks"]), 0,
                         int(max(times, default=0) * 1e9))


def _okx_depth(body) -> DepthSnapshot:
    book = _okx_data(body)[0]
    return DepthSnapshot(_levels(book["bids"]), _levels(book["asks"]),
                         int(book.get("seqId", 0)), int(book["ts"]) * 1_000_000)


def _bybit_depth(body) -> DepthSnapshot:
    book = _bybit_result(body)
    return DepthSnapshot(_levels(book["b"]), _levels(book["a"]), int(book["u"]),
                         int(book["ts"]) * 1_000_000)


def _bitstamp_depth(body) -> DepthSnapshot:
    micro = int(body["microtimestamp"])
    return DepthSnapshot(_levels(body["bids"]), _levels(body["asks"]), micro, micro * 1000)


_DEPTH = {
    "binance": _binance_depth, "binance-futures": _binance_depth,
    "coinbase-exchange": _coinbase_exchange_depth, "coinbase": _coinbase_depth,
    "kraken": _kraken_depth, "kraken-v1": _kraken_depth, "okx": _okx_depth,
    "bybit": _bybit_depth, "bitstamp": _bitstamp_depth,
}


# --- trades ----------------------------------------------------------------------------
def trades(venue: str, body: Any) -> tuple[list[RestTrade], Any]:
    """A venue's trade page → (trades in the venue's order, the venue's own cursor: Kraken's
    ``last``; None elsewhere: those page by trade id, see :mod:`rtkit.rest.history`)."""
    return _read(_TRADES, venue, body, "trades answer")


def _side(buy: bool) -> str:
    return "buy" if buy else "sell"


def _binance_trades(body) -> tuple[list[RestTrade], Any]:
    out = []
    for t in body:
        if "a" in t:  # aggTrades
            out.append(RestTrade(int(t["a"]), int(t["T"]) * 1_000_000, t["p"], t["q"],
                                 _side(not t["m"])))
        else:  # historicalTrades
            out.append(RestTrade(int(t["id"]), int(t["time"]) * 1_000_000, t["price"], t["qty"],
                                 _side(not t["isBuyerMaker"])))
    return out, None


def _ms(value) -> int:
    return int(value) * 1_000_000


def _bybit_id(value) -> int:
    exec_id = str(value)
    return int(exec_id) if exec_id.isdigit() else 0


@dataclass(frozen=True)
class _TradeFields:
    """Where a venue's trade page keeps each field of a trade (a key, or a position in a
    row), and how the id, the time and the side read."""

    rows: Callable[[Any], tuple[Iterable, Any]]  # the page → (its trades, the venue's cursor)
    id: str | int
    time: str | int
    price: str | int
    size: str | int
    side: Callable[[Any], str]  # a trade → "buy" / "sell"
    to_ns: Callable[[Any], int] = _ms
    to_id: Callable[[Any], int] = int


def _kraken_rows(body) -> tuple[Iterable, Any]:
    result = _kraken_result(body)
    return next(v for k, v in result.items() if k != "last"), int(result["last"])


_TRADE_FIELDS = {
    # Coinbase Exchange's ``side`` is the maker's: the taker did the opposite
    "coinbase-exchange": _TradeFields(lambda b: (b, None), "trade_id", "time", "price", "size",
                                      lambda t: _side(t["side"] == "sell"), _iso_ns),
    "coinbase": _TradeFields(lambda b: (b["trades"], None), "trade_id", "time", "price", "size",
                             lambda t: _side(t["side"].upper() == "SELL"), _iso_ns),
    "kraken": _TradeFields(_kraken_rows, 6, 2, 0, 1, lambda r: _side(r[3] == "b"),
                           lambda s: int(round(float(s) * 1e6)) * 1000),
    "okx": _TradeFields(lambda b: (_okx_data(b), None), "tradeId", "ts", "px", "sz",
                        lambda t: t["side"]),
    "bybit": _TradeFields(lambda b: (_bybit_result(b)["list"], None), "execId", "time", "price",
                          "size", lambda t: t["side"].lower(), to_id=_bybit_id),
    "bitstamp": _TradeFields(lambda b: (b, None), "tid", "date", "price", "amount",
                             lambda t: _side(int(t["type"]) == 0), lambda s: int(s) * 10**9),
}
_TRADE_FIELDS["kraken-v1"] = _TRADE_FIELDS["kraken"]


def _trade_page(fields: _TradeFields, body) -> tuple[list[RestTrade], Any]:
    rows, cursor = fields.rows(body)
    return [RestTrade(fields.to_id(t[fields.id]), fields.to_ns(t[fields.time]), t[fields.price],
                      t[fields.size], fields.side(t)) for t in rows], cursor


_TRADES: dict[str, Callable[[Any], tuple[list[RestTrade], Any]]] = {
    "binance": _binance_trades, "binance-futures": _binance_trades,
    **{venue: partial(_trade_page, fields) for venue, fields in _TRADE_FIELDS.items()},
}


# --- markets -----------------------------------------------------------------------------
def instruments(venue: str, body: Any) -> list[Instrument]:
    """A venue's market list → its :class:`Instrument` s."""
    return _read(_MARKETS, venue, body, "market list")


def _binance_markets(body) -> list[Instrument]:
    kind = "spot"
    out = []
    for s in body["symbols"]:
        if "contractType" in s:
            kind = "perpetual" if s["contractType"] == "PERPETUAL" else "future"
        out.append(Instrument(f"{s['baseAsset']}-{s['quoteAsset']}", s["symbol"], kind,
                              trading=s.get("status") == "TRADING"))
    return out


def _coinbase_exchange_markets(body) -> list[Instrument]:
    return [Instrument(f"{p['base_currency']}-{p['quote_currency']}", p["id"],
                       trading=p.get("status", "online") == "online") for p in body]


def _coinbase_markets(body) -> list[Instrument]:
    return [Instrument(f"{p['base_currency_id']}-{p['quote_currency_id']}", p["product_id"],
                       trading=not p.get("trading_disabled", False)) for p in body["products"]]


def _kraken_markets(body) -> list[Instrument]:
    out = []
    for pair in _kraken_result(body).values():
        parts = kraken_symbol_parts(pair.get("wsname") or pair["altname"])
        if parts:
            out.append(Instrument(f"{parts[0]}-{parts[1]}", pair["altname"],
                                  trading=pair.get("status", "online") == "online"))
    return out


def _okx_markets(body) -> list[Instrument]:
    out = []
    for i in _okx_data(body):
        kind = i["instType"].lower()
        if kind == "spot":
            symbol = f"{i['baseCcy']}-{i['quoteCcy']}"
        else:  # BTC-USDT-SWAP: the underlying's pair, the contract's own id in ``native``
            symbol = "-".join(i["instId"].split("-")[:2])
        ct_val = float(i["ctVal"]) if i.get("ctVal") else None
        out.append(Instrument(symbol, i["instId"], kind, ct_val, i.get("ctValCcy") or None,
                              i.get("ctType") or None, i.get("state", "live") == "live"))
    return out


def _bybit_markets(body) -> list[Instrument]:
    return [Instrument(f"{i['baseCoin']}-{i['quoteCoin']}", i["symbol"],
                       trading=i.get("status") == "Trading") for i in _bybit_result(body)["list"]]


def _bitstamp_markets(body) -> list[Instrument]:
    return [Instrument(p["name"].replace("/", "-"), p["url_symbol"],
                       trading=p.get("trading") == "Enabled") for p in body]


_MARKETS = {
    "binance": _binance_markets, "binance-futures": _binance_markets,
    "coinbase-exchange": _coinbase_exchange_markets, "coinbase": _coinbase_markets,
    "kraken": _kraken_markets, "kraken-v1": _kraken_markets, "okx": _okx_markets,
    "bybit": _bybit_markets, "bitstamp": _bitstamp_markets,
}
