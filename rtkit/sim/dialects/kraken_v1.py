"""Kraken WebSocket v1 (legacy), server side: ``systemStatus`` on connect, one
``subscriptionStatus`` per pair, pongs, heartbeats, and trade arrays per pair
with every value a string and no trade id; the last trades of each pair
again after every subscribe, in the same shape."""

from __future__ import annotations

import zlib

import orjson

from rtkit.sim.dialects.base import Dialect, Session, batches_by_symbol
from rtkit.sim.dialects.kraken import ends_taker_order, order_type, snapshot_batches
from rtkit.sim.market import SimTrade
from rtkit.venues.kraken_v1 import KrakenV1Adapter, synthetic_trade_id

_STATUS = ('{"connectionID":8628615390848610000,"event":"systemStatus",'
           '"status":"online","version":"1.9.1"}')
_SUBSCRIPTION = {"name": "trade"}


def _channel_id(symbol: str) -> int:
    return zlib.crc32(symbol.encode()) & 0xFFFF


def trade_entry(trade: SimTrade) -> list[str]:
    """One trade as v1 sends it: price, volume, time, side, order type, misc."""
    secs, ns = divmod(trade.ts_ns, 10**9)
    return [trade.price, trade.volume, "%d.%06d" % (secs, ns // 1000), trade.side[0],
            order_type(trade)[0], ""]


class KrakenV1Dialect(Dialect):
    venue = "kraken-v1"
    path = "/"
    heartbeat_interval_s = 1.0
    max_batch = 50
    example_symbols = ("BTC-USD", "ETH-USD")

    def __init__(self) -> None:
        self._symbols = KrakenV1Adapter()  # the venue's own symbol rules

    def greeting(self, session: Session) -> list[str]:
        return [_STATUS]

    def on_message(self, text: str, session: Session) -> list[str]:
        try:
            msg = orjson.loads(text)
            event, req_id = msg.get("event"), msg.get("reqid")
        except (orjson.JSONDecodeError, AttributeError):
            return ['{"event":"error","errorMessage":"Malformed request"}']
        if event == "ping":
            return [orjson.dumps({"event": "pong", "reqid": req_id}).decode()]
        if event != "subscribe":
            return [orjson.dumps({"event": "error", "errorMessage": f"Unsupported event {event}",
                                  "reqid": req_id}).decode()]
        if msg.get("subscription") != _SUBSCRIPTION:
            return [orjson.dumps({"event": "error", "errorMessage": "Subscription name invalid",
                                  "reqid": req_id}).decode()]
        replies = []
        for native in msg.get("pair") or []:
            try:
                symbol = self._symbols.normalise_symbol(native)
            except ValueError:
                replies.append(self._error(str(native), "Currency pair not in ISO 4217-A3 format"))
                continue
            session.subscribe([symbol])
            pair = self._symbols.native_symbol(symbol)
            replies.append(orjson.dumps({
                "channelID": _channel_id(symbol), "channelName": "trade",
                "event": "subscriptionStatus", "pair": pair, "reqid": req_id,
                "status": "subscribed", "subscription": _SUBSCRIPTION}).decode())
        return replies

    @staticmethod
    def _error(pair: str, message: str) -> str:
        return orjson.dumps({"errorMessage": f"{message} {pair}", "event": "subscriptionStatus",
                             "pair": pair, "status": "error",
                             "subscription": _SUBSCRIPTION}).decode()

    def encode(self, trades: list[SimTrade]) -> list[str]:
        return self._frames(batches_by_symbol(trades, self.max_batch, ends_taker_order))

    def encode_overlap(self, trades: list[SimTrade]) -> list[str]:
        return self._frames(snapshot_batches(trades))

    def _frames(self, batches: list[list[SimTrade]]) -> list[str]:
        return [
            orjson.dumps([_channel_id(batch[0].symbol), [trade_entry(t) for t in batch],
                          "trade", self._symbols.native_symbol(batch[0].symbol)]).decode()
            for batch in batches
        ]

    def heartbeat(self, session: Session) -> str | None:
        return '{"event":"heartbeat"}'

    def expected_trade_id(self, trade: SimTrade) -> str:
        """The synthetic id the adapter derives (no identical twin in the same frame)."""
        return str(synthetic_trade_id(trade_entry(trade)))

    def subscription_error(self, symbol: str) -> str:
        return self._error(self._symbols.native_symbol(symbol), "Currency pair not supported")


DIALECTS = {"kraken-v1": KrakenV1Dialect}
