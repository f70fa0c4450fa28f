"""Reading each venue's REST answers: depth snapshots, trade pages and market lists,
into :class:`~rtkit.rest.endpoints.DepthSnapshot`, :class:`~rtkit.rest.endpoints.RestTrade`
and :class:`~rtkit.rest.endpoints.Instrument`.

Prices and sizes stay the venue's decimal strings (a checksum or an exact compare
needs them as sent). An answer that is not the venue's shape is a
:class:`RestShapeError` that names the venue and what was missing.
"""

from __future__ import annotations

from datetime import datetime
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


# --- depth -----------------------------------------------------------------------------
def depth(venue: str, body: Any) -> DepthSnapshot:
    """A venue's snapshot answer → :class:`DepthSnapshot`."""
    try:
        return _DEPTH[venue](body)
    except _SHAPE_ERRORS as exc:
        if isinstance(exc, RestShapeError):
            raise
        raise RestShapeError(f"{venue} depth answer not understood ({exc!r}): "
                             f"{str(body)[:200]}") from None


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
    try:
        return _TRADES[venue](body)
    except _SHAPE_ERRORS as exc:
        if isinstance(exc, RestShapeError):
            raise
        raise RestShapeError(f"{venue} trades answer not understood ({exc!r}): "
                             f"{str(body)[:200]}") from None


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


def _coinbase_exchange_trades(body) -> tuple[list[RestTrade], Any]:
    # ``side`` is the maker's: the taker did the opposite
    return [RestTrade(int(t["trade_id"]), _iso_ns(t["time"]), t["price"], t["size"],
                      _side(t["side"] == "sell")) for t in body], None


def _coinbase_trades(body) -> tuple[list[RestTrade], Any]:
    return [RestTrade(int(t["trade_id"]), _iso_ns(t["time"]), t["price"], t["size"],
                      _side(t["side"].upper() == "SELL")) for t in body["trades"]], None


def _kraken_trades(body) -> tuple[list[RestTrade], Any]:
    result = _kraken_result(body)
    rows = next(v for k, v in result.items() if k != "last")
    out = [RestTrade(int(r[6]), int(round(float(r[2]) * 1e6)) * 1000, r[0], r[1],
                     _side(r[3] == "b")) for r in rows]
    return out, int(result["last"])


def _okx_trades(body) -> tuple[list[RestTrade], Any]:
    return [RestTrade(int(t["tradeId"]), int(t["ts"]) * 1_000_000, t["px"], t["sz"],
                      t["side"]) for t in _okx_data(body)], None


def _bybit_trades(body) -> tuple[list[RestTrade], Any]:
    out = []
    for t in _bybit_result(body)["list"]:
        exec_id = str(t["execId"])
        out.append(RestTrade(int(exec_id) if exec_id.isdigit() else 0, int(t["time"]) * 1_000_000,
                             t["price"], t["size"], t["side"].lower()))
    return out, None


def _bitstamp_trades(body) -> tuple[list[RestTrade], Any]:
    return [RestTrade(int(t["tid"]), int(t["date"]) * 10**9, t["price"], t["amount"],
                      _side(int(t["type"]) == 0)) for t in body], None


_TRADES = {
    "binance": _binance_trades, "binance-futures": _binance_trades,
    "coinbase-exchange": _coinbase_exchange_trades, "coinbase": _coinbase_trades,
    "kraken": _kraken_trades, "kraken-v1": _kraken_trades, "okx": _okx_trades,
    "bybit": _bybit_trades, "bitstamp": _bitstamp_trades,
}


# --- markets -----------------------------------------------------------------------------
def instruments(venue: str, body: Any) -> list[Instrument]:
    """A venue's market list → its :class:`Instrument` s."""
    try:
        return _MARKETS[venue](body)
    except _SHAPE_ERRORS as exc:
        if isinstance(exc, RestShapeError):
            raise
        raise RestShapeError(f"{venue} market list not understood ({exc!r}): "
                             f"{str(body)[:200]}") from None


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
