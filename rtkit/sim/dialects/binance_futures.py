"""Binance USDⓈ-M futures, server side: spot's SUBSCRIBE handling on the
``/market/ws`` path, and one ``aggTrade`` event per frame (no ``M`` field on
futures). Each simulated trade is one aggregate whose fills ``f``..``l`` are
derived from its id, so they are deterministic."""

from __future__ import annotations

from rtkit.sim.dialects.binance import BinanceDialect
from rtkit.sim.market import SimTrade

#: raw fills per aggregate at most, for the ``f``..``l`` range
_FILLS = 4


class BinanceFuturesDialect(BinanceDialect):
    venue = "binance-futures"
    path = "/market/ws"

    def encode(self, trades: list[SimTrade]) -> list[str]:
        return [
            '{"e":"aggTrade","E":%d,"s":"%s","a":%d,"p":"%s","q":"%s","f":%d,"l":%d,"T":%d,'
            '"m":%s}'
            % (t.ts_ns // 1_000_000, t.symbol.replace("-", ""), t.trade_id, t.price, t.volume,
               t.trade_id * _FILLS, t.trade_id * _FILLS + t.trade_id % _FILLS,
               t.ts_ns // 1_000_000, "true" if t.side == "sell" else "false")
            for t in trades
        ]


DIALECTS = {"binance-futures": BinanceFuturesDialect}
