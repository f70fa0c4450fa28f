"""Binance spot, server side: SUBSCRIBE acks and one ``trade`` event per frame."""

from __future__ import annotations

import orjson

from rtkit.sim.dialects.base import Dialect, Session
from rtkit.sim.market import SimTrade
from rtkit.venues.base import split_glued


class BinanceDialect(Dialect):
    venue = "binance"
    path = "/ws"

    def on_message(self, text: str, session: Session) -> list[str]:
        try:
            msg = orjson.loads(text)
            method, req_id = msg["method"], msg.get("id")
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return ['{"error":{"code":-32600,"msg":"Invalid request"},"id":null}']
        if method == "SUBSCRIBE":
            symbols = []
            for stream in msg.get("params", []):
                parts = split_glued(stream.split("@")[0])
                if parts:
                    symbols.append(f"{parts[0]}-{parts[1]}")
            session.subscribe(symbols)
            return [orjson.dumps({"result": None, "id": req_id}).decode()]
        error = {"code": 2, "msg": f"Invalid request: unknown method {method}"}
        return [orjson.dumps({"error": error, "id": req_id}).decode()]

    def encode(self, trades: list[SimTrade]) -> list[str]:
        return [
            '{"e":"trade","E":%d,"s":"%s","t":%d,"p":"%s","q":"%s","T":%d,"m":%s,"M":true}'
            % (t.ts_ns // 1_000_000, t.symbol.replace("-", ""), t.trade_id, t.price, t.volume,
               t.ts_ns // 1_000_000, "true" if t.side == "sell" else "false")
            for t in trades
        ]

    def subscription_error(self, symbol: str) -> str:
        return '{"error":{"code":2,"msg":"Invalid request: invalid symbol %s"},"id":1}' % symbol


DIALECTS = {"binance": BinanceDialect}
