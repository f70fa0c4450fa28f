"""Binance USDⓈ-M futures, server side: spot's SUBSCRIBE handling on the
``/market/ws`` path, and one ``aggTrade`` event per frame (no ``M`` field on
futures). Each simulated trade is one aggregate whose fills ``f``..``l`` are
derived from its id, so they are deterministic. Book diffs carry ``pu`` (the
previous diff's ``u``) and the transaction time ``T``; their ``U`` is not the
previous ``u`` + 1 (as on the venue, where it never is): here it is ``pu``
itself, so a client that used the spot rule would desync on every diff. Book
tickers carry ``e``, ``E`` and ``T``. The REST snapshot is ``GET /fapi/v1/depth``."""

from __future__ import annotations

import orjson

from rtkit.sim.dialects.binance import BinanceDialect
from rtkit.sim.market import SimTrade

#: raw fills per aggregate at most, for the ``f``..``l`` range
_FILLS = 4


class BinanceFuturesDialect(BinanceDialect):
    venue = "binance-futures"
    path = "/market/ws"

    def _diff(self, native: str, bids, asks, seq: int, prev_seq: int, ms: int) -> dict:
        return {"e": "depthUpdate", "E": ms, "T": ms, "s": native, "U": prev_seq, "u": seq,
                "pu": prev_seq, "b": bids, "a": asks}

    def encode_quote(self, symbol: str, bid: tuple[str, str], ask: tuple[str, str], seq: int,
                     ts_ns: int) -> str | None:
        ms = ts_ns // 1_000_000
        return orjson.dumps({"e": "bookTicker", "u": seq, "E": ms, "T": ms,
                             "s": symbol.replace("-", ""), "b": bid[0], "B": bid[1],
                             "a": ask[0], "A": ask[1]}).decode()

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
