"""A plain JSON feed in the plan's shape, server side: it streams as soon as a
client connects, one ``{"symbol", "trade_id", "price", "volume",
"timestamp", "side"}`` object per frame, so ``rtkit.collect("generic", …)``
reads it with the adapter's defaults. An optional ``{"op": "subscribe",
"symbols": [...]}`` narrows the stream to those symbols, and
``{"op": "ping"}`` is answered with ``{"event": "pong"}``."""

from __future__ import annotations

import orjson

from rtkit.sim.dialects.base import Dialect, Session
from rtkit.sim.market import SimTrade
from rtkit.venues.base import split_symbol


def _error(message: str) -> str:
    return orjson.dumps({"event": "error", "message": message}).decode()


class GenericDialect(Dialect):
    venue = "generic"
    path = "/feed"

    def greeting(self, session: Session) -> list[str]:
        session.subscribe(self.example_symbols)
        return []

    def on_message(self, text: str, session: Session) -> list[str]:
        try:
            msg = orjson.loads(text)
            op = msg.get("op")
        except (orjson.JSONDecodeError, AttributeError):
            return [_error(f"not a JSON object: {text:.100}")]
        if op == "ping":
            return ['{"event":"pong"}']
        names = msg.get("symbols")
        if op != "subscribe" or not isinstance(names, list) or not names:
            return [_error('expected {"op": "subscribe", "symbols": [...]} or {"op": "ping"}')]
        parts = [split_symbol(n) if isinstance(n, str) else None for n in names]
        pairs = [p for p in parts if p is not None]
        if len(pairs) < len(parts):
            return [_error(f"unknown symbol in {names!r:.100}")]
        session.symbols.clear()
        session.subscribe([f"{base}-{quote}" for base, quote in pairs])
        return [orjson.dumps({"event": "subscribed", "symbols": session.symbols}).decode()]

    def encode(self, trades: list[SimTrade]) -> list[str]:
        return [
            '{"symbol":"%s","trade_id":%d,"price":"%s","volume":"%s","timestamp":%d,"side":"%s"}'
            % (t.symbol, t.trade_id, t.price, t.volume, t.ts_ns // 1_000_000, t.side)
            for t in trades
        ]

    def subscription_error(self, symbol: str) -> str:
        return _error(f"unknown symbol {symbol}")


DIALECTS = {"generic": GenericDialect}
