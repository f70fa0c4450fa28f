"""Each venue's REST side as data: base URL, paths, the published request limit and
the weight of each call, and how to read the venue's answers.

Pure (no I/O): :mod:`rtkit.rest.client` sends what this module builds, and the
simulator (:mod:`rtkit.sim.rest`) serves the same paths in the same JSON shapes.
The wire facts are the venues' published ones (depth, trades, instruments), checked in their
documentation; limits are the published public (per IP) limits, of which the
budget (:mod:`rtkit.rest.budget`) uses at most a share (half by default, a collector's
``rest_budget_share`` up to 0.9).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from rtkit.venues.kraken_symbols import COMMON_TO_LEGACY

Params = dict[str, Any]


class Request(NamedTuple):
    """One GET: a path under the venue's base URL, its query and its cost in the
    venue's budget unit (Binance weight, otherwise one request)."""

    path: str
    params: Params
    weight: int = 1


class DepthSnapshot(NamedTuple):
    """A REST order-book snapshot: levels as the venue's own decimal strings
    (bids high→low, asks low→high), the venue's sequence (Binance ``lastUpdateId``;
    Bitstamp and Coinbase Exchange have none: their ``microtimestamp`` / sequence
    where given, else 0) and the venue's time in ns (0 when it gives none)."""

    bids: list[tuple[str, str]]
    asks: list[tuple[str, str]]
    sequence: int
    time_ns: int


class RestTrade(NamedTuple):
    """One trade from a venue's trade-history endpoint."""

    trade_id: int
    ts_ns: int
    price: str
    size: str
    side: str  # taker side, 'buy' or 'sell'


@dataclass(frozen=True)
class Instrument:
    """One market a venue lists: ``symbol`` as BASE-QUOTE, the venue's own id, and
    for derivatives the contract value (OKX ``ctVal``, in ``ct_val_ccy``)."""

    symbol: str
    native: str
    kind: str = "spot"
    ct_val: float | None = None
    ct_val_ccy: str | None = None
    ct_type: str | None = None  # 'linear' / 'inverse' (OKX ctType)
    trading: bool = True


@dataclass(frozen=True)
class VenueRest:
    """One venue's REST facts."""

    venue: str
    base_url: str
    #: the published limit, in ``unit`` per ``window_s`` (public endpoints, per IP)
    limit: int
    window_s: float
    unit: str  # 'weight' (Binance) or 'requests'
    native: Callable[[str], str]
    depth: Callable[[str, int | None], Request] | None = None
    trades: Callable[..., Request] | None = None
    markets: Request | None = None
    #: how trade history pages: 'fromId' (ascending from an id), 'after' (descending
    #: below an id cursor), 'since' (Kraken's ns cursor), 'window' (a time window),
    #: 'recent' (only the latest trades; cannot fill by id)
    paging: str = "recent"
    #: most trades one trade-history call returns
    page_size: int = 100
    #: the largest depth the snapshot endpoint gives
    max_depth: int = 1000
    notes: dict[str, str] = field(default_factory=dict)


def split(symbol: str) -> tuple[str, str]:
    """``BASE-QUOTE`` (as rtkit normalises symbols) → ``(BASE, QUOTE)``."""
    base, _, quote = symbol.upper().partition("-")
    if not base or not quote:
        raise ValueError(f"symbol {symbol!r} is not BASE-QUOTE (e.g. 'BTC-USDT')")
    return base, quote


# --- weights ----------------------------------------------------------------------
def binance_spot_depth_weight(limit: int) -> int:
    """GET /api/v3/depth weight by ``limit``: ≤100 → 5, ≤500 → 25, ≤1000 → 50, else 250."""
    return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250


def binance_futures_depth_weight(limit: int) -> int:
    """GET /fapi/v1/depth weight by ``limit``: ≤50 → 2, 100 → 5, 500 → 10, 1000 → 20."""
    return 2 if limit <= 50 else 5 if limit <= 100 else 10 if limit <= 500 else 20


#: the depths /fapi/v1/depth accepts
BINANCE_FUTURES_DEPTHS = (5, 10, 20, 50, 100, 500, 1000)


def _futures_depth(limit: int | None) -> int:
    limit = 500 if limit is None else limit
    return next((d for d in BINANCE_FUTURES_DEPTHS if d >= limit), 1000)


# --- native symbols for REST (not always the WebSocket's spelling) ------------------
def _glued(symbol: str) -> str:
    return "".join(split(symbol))


def _dashed(symbol: str) -> str:
    return "-".join(split(symbol))


def _kraken(symbol: str) -> str:
    """``BTC-USD`` → ``XBTUSD``: Kraken REST takes a pair's altname (legacy codes)."""
    base, quote = split(symbol)
    return COMMON_TO_LEGACY.get(base, base) + COMMON_TO_LEGACY.get(quote, quote)


def _lower_glued(symbol: str) -> str:
    return _glued(symbol).lower()


def _ms(params: Params, key: str, value) -> None:
    if value is not None:
        params[key] = int(value)


# --- the venues ---------------------------------------------------------------------
def _binance_trades(symbol: str, *, from_id: int | None = None, limit: int = 1000,
                    agg: bool = False) -> Request:
    params: Params = {"symbol": _glued(symbol), "limit": limit}
    _ms(params, "fromId", from_id)
    if agg:
        return Request("/api/v3/aggTrades", params, 4)
    return Request("/api/v3/historicalTrades", params, 25)


def _futures_trades(symbol: str, *, from_id: int | None = None, limit: int = 1000,
                    agg: bool = True) -> Request:
    params: Params = {"symbol": _glued(symbol), "limit": limit}
    _ms(params, "fromId", from_id)
    return Request("/fapi/v1/aggTrades", params, 20)


def _coinbase_exchange_trades(symbol: str, *, after: int | None = None,
                              limit: int = 1000) -> Request:
    params: Params = {"limit": limit}
    _ms(params, "after", after)
    return Request(f"/products/{_dashed(symbol)}/trades", params)


def _coinbase_trades(symbol: str, *, start_s: int | None = None, end_s: int | None = None,
                     limit: int = 1000) -> Request:
    params: Params = {"limit": limit}
    _ms(params, "start", start_s)
    _ms(params, "end", end_s)
    return Request(f"/api/v3/brokerage/market/products/{_dashed(symbol)}/ticker", params)


def _kraken_trades(symbol: str, *, since: int | None = None, limit: int = 1000) -> Request:
    params: Params = {"pair": _kraken(symbol), "count": limit}
    _ms(params, "since", since)
    return Request("/0/public/Trades", params)


def _okx_trades(symbol: str, *, after: int | None = None, limit: int = 100) -> Request:
    params: Params = {"instId": _dashed(symbol), "type": 1, "limit": limit}
    _ms(params, "after", after)
    return Request("/api/v5/market/history-trades", params)


def _bybit_trades(symbol: str, *, limit: int = 60, category: str = "spot") -> Request:
    return Request("/v5/market/recent-trade",
                   {"category": category, "symbol": _glued(symbol), "limit": limit})


def _bitstamp_trades(symbol: str, *, time: str = "hour") -> Request:
    return Request(f"/api/v2/transactions/{_lower_glued(symbol)}/", {"time": time})


VENUES: dict[str, VenueRest] = {}


def _add(spec: VenueRest, *aliases: str) -> None:
    for name in (spec.venue, *aliases):
        VENUES[name] = spec


_add(VenueRest(
    "binance", "https://api.binance.com", 6000, 60.0, "weight", _glued,
    depth=lambda s, limit: Request(
        "/api/v3/depth", {"symbol": _glued(s), "limit": limit or 100},
        binance_spot_depth_weight(limit or 100)),
    trades=_binance_trades, markets=Request("/api/v3/exchangeInfo", {}, 20),
    paging="fromId", page_size=1000, max_depth=5000))
_add(VenueRest(
    "binance-futures", "https://fapi.binance.com", 2400, 60.0, "weight", _glued,
    depth=lambda s, limit: Request(
        "/fapi/v1/depth", {"symbol": _glued(s), "limit": _futures_depth(limit)},
        binance_futures_depth_weight(_futures_depth(limit))),
    trades=_futures_trades, markets=Request("/fapi/v1/exchangeInfo", {}, 1),
    paging="fromId", page_size=1000, max_depth=1000))
_add(VenueRest(
    # 10 requests/s per IP for public endpoints (bursts to 15)
    "coinbase-exchange", "https://api.exchange.coinbase.com", 10, 1.0, "requests", _dashed,
    depth=lambda s, limit: Request(f"/products/{_dashed(s)}/book", {"level": 2}),
    trades=_coinbase_exchange_trades, markets=Request("/products", {}),
    paging="after", page_size=1000, max_depth=1_000_000))
_add(VenueRest(
    # Advanced Trade public market endpoints: 10 requests/s per IP
    "coinbase", "https://api.coinbase.com", 10, 1.0, "requests", _dashed,
    depth=lambda s, limit: Request(
        "/api/v3/brokerage/market/product_book",
        {"product_id": _dashed(s), **({"limit": limit} if limit else {})}),
    trades=_coinbase_trades, markets=Request("/api/v3/brokerage/market/products", {}),
    paging="window", page_size=1000, max_depth=1_000_000))
_kraken_spec = VenueRest(
    # public endpoints: about one call per second per IP (written as 2 per 2 s, so that
    # half of it is one whole request)
    "kraken", "https://api.kraken.com", 2, 2.0, "requests", _kraken,
    depth=lambda s, limit: Request("/0/public/Depth", {"pair": _kraken(s), "count": limit or 500}),
    trades=_kraken_trades, markets=Request("/0/public/AssetPairs", {}),
    paging="since", page_size=1000, max_depth=500)
_add(_kraken_spec)
_add(VenueRest(**{**_kraken_spec.__dict__, "venue": "kraken-v1"}))
_add(VenueRest(
    # market data: 20 requests / 2 s per IP (history-trades, instruments); books 40 / 2 s
    "okx", "https://www.okx.com", 20, 2.0, "requests", _dashed,
    depth=lambda s, limit: Request("/api/v5/market/books",
                                   {"instId": _dashed(s), "sz": limit or 400}),
    trades=_okx_trades, markets=Request("/api/v5/public/instruments", {"instType": "SPOT"}),
    paging="after", page_size=100, max_depth=400))
_add(VenueRest(
    # 600 requests / 5 s per IP
    "bybit", "https://api.bybit.com", 600, 5.0, "requests", _glued,
    depth=lambda s, limit: Request(
        "/v5/market/orderbook", {"category": "spot", "symbol": _glued(s), "limit": limit or 200}),
    trades=_bybit_trades, markets=Request("/v5/market/instruments-info", {"category": "spot"}),
    paging="recent", page_size=60, max_depth=200))
_add(VenueRest(
    # 400 requests/s, and 10,000 per 10 minutes by default: the second binds
    "bitstamp", "https://www.bitstamp.net", 10_000, 600.0, "requests", _lower_glued,
    depth=lambda s, limit: Request(f"/api/v2/order_book/{_lower_glued(s)}/", {}),
    trades=_bitstamp_trades, markets=Request("/api/v2/trading-pairs-info/", {}),
    paging="recent", page_size=1_000_000, max_depth=1_000_000))


def venue_rest(venue: str) -> VenueRest:
    """The REST facts of ``venue``; a ValueError names the venues that have a REST side."""
    spec = VENUES.get(venue.lower() if isinstance(venue, str) else venue)
    if spec is None:
        raise ValueError(f"venue {venue!r} has no REST side in rtkit; venues with one: "
                         f"{', '.join(sorted(VENUES))}")
    return spec


def okx_instruments(inst_type: str = "SWAP") -> Request:
    """OKX's instrument list of a type (``SPOT``, ``SWAP``, ``FUTURES``): ``ctVal`` lives here."""
    return Request("/api/v5/public/instruments", {"instType": inst_type})


# --- base URLs ------------------------------------------------------------------------
#: loopback WebSocket address ``host:port`` → the base URL of the REST server that a
#: simulator in this process serves next to it (:mod:`rtkit.sim.rest` registers here)
SIMULATED_REST: dict[str, str] = {}


def http_base(url: object, name: str = "rest_url") -> str:
    """A user-given REST base ``scheme://host[:port]`` (no path), or a ValueError saying
    what it must look like."""
    text = url if isinstance(url, str) else ""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/") \
            or parts.query or parts.fragment:
        from rtkit.redact import redact_url

        shown = redact_url(url) if isinstance(url, str) else url
        raise ValueError(f"{name}= must be a base URL 'http(s)://host:port' without a path "
                         f"(rtkit appends the venue's paths), not {shown!r}")
    return f"{parts.scheme}://{parts.netloc}"


def resolve_rest_url(venue: str, rest_url: str | None, ws_url: str | None) -> str | None:
    """The REST base a collector uses.

    ``rest_url`` when given; else, when ``url=`` points elsewhere than the venue (a
    simulator, a proxy): the REST server a simulator of this process serves next to
    that address, or failing that the same host and port with ``ws``→``http``
    (``wss``→``https``): a proxy that serves both on one port; else the venue's own.
    Never the public venue when ``url=`` points elsewhere, so a test against a
    simulator cannot reach a real venue by accident. None: a venue with no REST side.
    """
    if rest_url is not None:
        return http_base(rest_url)
    if ws_url:
        parts = urlsplit(ws_url)
        simulated = SIMULATED_REST.get(parts.netloc)
        if simulated:
            return simulated
        scheme = "https" if parts.scheme == "wss" else "http"
        if parts.netloc and not _venue_host(venue, parts.hostname or ""):
            return f"{scheme}://{parts.netloc}"
    spec = VENUES.get(venue)
    return spec.base_url if spec else None


def _venue_host(venue: str, host: str) -> bool:
    """True when ``host`` is under the venue's own domain (``stream.binance.com``)."""
    spec = VENUES.get(venue)
    if spec is None:
        return False
    own = urlsplit(spec.base_url).hostname or ""
    domain = ".".join(own.split(".")[-2:])
    return host == domain or host.endswith("." + domain)
