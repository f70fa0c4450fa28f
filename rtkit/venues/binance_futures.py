"""Binance USDⓈ-M futures ``<symbol>@aggTrade`` (perpetual contracts).

The same envelope, SUBSCRIBE request and ``m`` convention as spot
(:mod:`rtkit.venues.binance`), on another host. Since Binance split the
futures streams by path (announced 2026-03-06, legacy URLs retired
2026-04-23), ``aggTrade`` is served under ``/market``: the bare ``/ws`` path
only carries high-frequency book data and would stay silent. Aggregate ids
``a`` step by one per symbol, so gaps are visible. The server pings every
3 minutes and the collector's reader answers; a quiet perpetual may trade
less often than spot, so silence counts as stale only after those 3 minutes.
"""

from __future__ import annotations

from rtkit.venues.binance import BinanceAdapter


class BinanceFuturesAdapter(BinanceAdapter):
    name = "binance-futures"
    default_url = "wss://fstream.binance.com/market/ws"
    stale_after_s = 200.0  # the server's ping every 180 s is the heartbeat

    def __init__(self, channel: str = "aggTrade",
                 connection_lifetime_s: float | None = 24 * 3600.0) -> None:
        if channel != "aggTrade":
            raise ValueError(f"binance-futures streams trades as channel 'aggTrade' only, "
                             f"not {channel!r}")
        super().__init__(channel, connection_lifetime_s)

    def normalise_symbol(self, symbol: str) -> str:
        normalised = super().normalise_symbol(symbol)
        if not normalised.rpartition("-")[2].isalpha():
            raise ValueError(f"symbol {symbol!r}: dated futures are not supported; "
                             "collect perpetuals such as 'BTC-USDT' or 'btcusdt'")
        return normalised


ADAPTERS = {"binance-futures": BinanceFuturesAdapter}
