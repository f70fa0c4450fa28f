"""Binance USDⓈ-M futures ``<symbol>@aggTrade`` (perpetual contracts).

The same envelope, SUBSCRIBE request and ``m`` convention as spot
(:mod:`rtkit.venues.binance`), on another host. Since Binance split the
futures streams by path (announced 2026-03-06, legacy URLs retired
2026-04-23), ``aggTrade`` is served under ``/market``: the bare ``/ws`` path
only carries high-frequency book data and would stay silent. Aggregate ids
``a`` step by one per symbol, so gaps are visible. The server pings every
3 minutes and the collector's reader answers; a quiet perpetual may trade
less often than spot, so silence counts as stale only after those 3 minutes.

Books: ``<symbol>@bookTicker`` and ``<symbol>@depth@100ms`` (diffs with ``pu``,
chained by :mod:`rtkit.books.rules.binance_futures`) on a ``GET /fapi/v1/depth``
snapshot whose ``limit`` is ``depth=`` (5, 10, 20, 50, 100, 500 or 1000; default
100, weight 5, so that 200 books start within one minute of half the budget).
Those streams are the "high-frequency" ones Binance serves under ``/public``
since the split: on the venue itself a collector takes trades (``/market``) or
quotes and books (``/public``), not both; with ``url=`` (a simulator, a proxy)
every kind comes on the one connection given.
"""

from __future__ import annotations

from rtkit.rest.endpoints import BINANCE_FUTURES_DEPTHS
from rtkit.venues.binance import DEFAULT_BOOK_DEPTH, BinanceAdapter

#: where Binance serves the depth and book-ticker streams since the split
BOOKS_URL = "wss://fstream.binance.com/public/ws"


class BinanceFuturesAdapter(BinanceAdapter):
    name = "binance-futures"
    default_url = "wss://fstream.binance.com/market/ws"
    stale_after_s = 200.0  # the server's ping every 180 s is the heartbeat
    _diffs_have_pu = True

    def __init__(self, channel: str = "aggTrade",
                 connection_lifetime_s: float | None = 24 * 3600.0) -> None:
        if channel != "aggTrade":
            raise ValueError(f"binance-futures streams trades as channel 'aggTrade' only, "
                             f"not {channel!r}")
        super().__init__(channel, connection_lifetime_s)

    def check_depth(self, depth: int) -> None:
        if depth not in BINANCE_FUTURES_DEPTHS or type(depth) is not int:
            raise ValueError(f"binance-futures books take depth= one of "
                             f"{', '.join(map(str, BINANCE_FUTURES_DEPTHS))} (the REST "
                             f"snapshot's limit; default {DEFAULT_BOOK_DEPTH}), not {depth!r}")

    def url(self, base_url: str | None, symbols: list[str]) -> str:
        if base_url:
            return base_url
        books = {"quotes", "book"} & set(self.collected)
        if books and "trades" in self.collected:
            raise ValueError("binance-futures serves trades under /market and quotes and books "
                             "under /public, on separate connections: run one collector with "
                             "kinds=['trades'] and another with kinds=['quotes', 'book']")
        return BOOKS_URL if books else self.default_url

    def normalise_symbol(self, symbol: str) -> str:
        normalised = super().normalise_symbol(symbol)
        if not normalised.rpartition("-")[2].isalpha():
            raise ValueError(f"symbol {symbol!r}: dated futures are not supported; "
                             "collect perpetuals such as 'BTC-USDT' or 'btcusdt'")
        return normalised


ADAPTERS = {"binance-futures": BinanceFuturesAdapter}
