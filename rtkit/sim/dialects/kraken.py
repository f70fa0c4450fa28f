"""Kraken WebSocket v2, server side: a status frame on connect, one ack per symbol,
pongs, a heartbeat every second, trades batched per symbol with JSON-float
prices, and on every subscribe a snapshot of each symbol's last trades."""

from __future__ import annotations

import orjson

from rtkit.sim.dialects.base import Dialect, Session, batches_by_symbol, iso_time
from rtkit.sim.market import SimTrade
from rtkit.venues.kraken import KrakenAdapter

#: trades in the snapshot that follows a subscribe, per symbol (both protocols)
SNAPSHOT_TRADES = 50
#: the status frame a v2 connection opens with; the real connection_id exceeds int64
_STATUS = ('{"channel":"status","type":"update","data":[{"api_version":"v2",'
           '"connection_id":15564437896659189083,"system":"online","version":"2.0.7"}]}')


def order_type(trade: SimTrade) -> str:
    """The taker's order type, derived from the trade so runs repeat exactly."""
    return "market" if trade.trade_id % 3 == 0 else "limit"


def ends_taker_order(trade: SimTrade) -> bool:
    """Kraken sends the fills of one match together. Here a fill whose size ends
    in 0, 1 or 2 is followed by another of the same taker order, so most frames
    carry one trade and some carry several."""
    return trade.volume[-1] not in "012"


def snapshot_batches(trades: list[SimTrade]) -> list[list[SimTrade]]:
    """Each symbol's newest ``SNAPSHOT_TRADES`` trades, oldest first (as in the docs'
    example), one batch per symbol: what Kraken re-sends after a subscribe."""
    return [batch[-SNAPSHOT_TRADES:] for batch in batches_by_symbol(trades, len(trades))]


class KrakenDialect(Dialect):
    venue = "kraken"
    path = "/v2"
    heartbeat_interval_s = 1.0
    max_batch = 50
    example_symbols = ("BTC-USD", "ETH-USD")

    def __init__(self) -> None:
        self._symbols = KrakenAdapter()  # the venue's own symbol rules

    def greeting(self, session: Session) -> list[str]:
        return [_STATUS]

    def on_message(self, text: str, session: Session) -> list[str]:
        try:
            msg = orjson.loads(text)
            method, req_id = msg.get("method"), msg.get("req_id")
        except (orjson.JSONDecodeError, AttributeError):
            return [self._error(None, None, "Malformed request")]
        if method == "ping":
            now = iso_time()
            return [orjson.dumps({"method": "pong", "req_id": req_id, "time_in": now,
                                  "time_out": now}).decode()]
        if method != "subscribe":
            return [self._error(method, req_id, f"Method not supported: {method}")]
        params = msg.get("params")
        if type(params) is not dict or params.get("channel") != "trade":
            return [self._error(method, req_id, "Channel not supported")]
        replies = []
        for native in params.get("symbol") or []:
            try:
                symbol = self._symbols.normalise_symbol(native)
            except ValueError:
                replies.append(self._error(method, req_id,
                                           f"Currency pair not in ISO 4217-A3 format {native}"))
                continue
            session.subscribe([symbol])
            now = iso_time()
            result = {"channel": "trade", "snapshot": params.get("snapshot", False),
                      "symbol": self._symbols.native_symbol(symbol)}
            replies.append(orjson.dumps({"method": "subscribe", "result": result, "success": True,
                                         "time_in": now, "time_out": now,
                                         "req_id": req_id}).decode())
        return replies

    @staticmethod
    def _error(method, req_id, message: str) -> str:
        now = iso_time()
        return orjson.dumps({"method": method, "success": False, "error": message,
                             "req_id": req_id, "time_in": now, "time_out": now}).decode()

    def encode(self, trades: list[SimTrade]) -> list[str]:
        return self._frames("update", batches_by_symbol(trades, self.max_batch, ends_taker_order))

    def encode_overlap(self, trades: list[SimTrade]) -> list[str]:
        return self._frames("snapshot", snapshot_batches(trades))

    def _frames(self, kind: str, batches: list[list[SimTrade]]) -> list[str]:
        frames = []
        for batch in batches:
            native = self._symbols.native_symbol(batch[0].symbol)
            data = ",".join(
                '{"symbol":"%s","side":"%s","price":%s,"qty":%s,"ord_type":"%s",'
                '"trade_id":%d,"timestamp":"%s"}'
                % (native, t.side, t.price, t.volume, order_type(t), t.trade_id,
                   iso_time(t.ts_ns))
                for t in batch
            )
            frames.append('{"channel":"trade","type":"%s","data":[%s]}' % (kind, data))
        return frames

    def heartbeat(self, session: Session) -> str | None:
        return '{"channel":"heartbeat"}'

    def subscription_error(self, symbol: str) -> str:
        native = self._symbols.native_symbol(symbol)
        return self._error("subscribe", 1, f"Currency pair not supported {native}")


DIALECTS = {"kraken": KrakenDialect}
