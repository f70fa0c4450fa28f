"""Bitstamp, server side: one ``bts:subscribe`` per channel, its
``bts:subscription_succeeded`` ack, the answer to the client's
``bts:heartbeat``, and one ``trade`` event per frame carrying both the JSON
numbers and the exact ``_str`` texts, as the venue does.

Books: ``diff_order_book_<pair>`` sends one ``data`` event per book message,
its ``bids``/``asks`` the levels set (absolute amounts, ``"0"`` removes), with
``timestamp`` (s) and ``microtimestamp`` (µs) and nothing else: no sequence,
and no snapshot on the socket (a client starts from the REST
``/api/v2/order_book/<pair>/``, answered from the same books by the REST side).
No BBO channel."""

from __future__ import annotations

import orjson

from rtkit.sim.dialects.base import Dialect, Session
from rtkit.sim.market import SimTrade
from rtkit.venues.base import split_glued

_PREFIX = "live_trades_"
_BOOK_PREFIX = "diff_order_book_"
#: the depth of a diff channel: the whole simulated book
_WHOLE_BOOK = 1_000_000
#: order ids at the venue's scale (~1.2e15, near float's 2**53 limit)
_ORDER_ID_BASE = 1_207_733_765_000_000


def _error(message: str) -> str:
    return orjson.dumps({"event": "bts:error", "channel": "",
                         "data": {"code": None, "message": message}}).decode()


class BitstampDialect(Dialect):
    venue = "bitstamp"
    path = "/"
    has_books = True
    example_symbols = ("BTC-USD", "ETH-USD")

    def on_message(self, text: str, session: Session) -> list[str]:
        try:
            msg = orjson.loads(text)
            event = msg["event"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return [_error("Incorrect JSON format.")]
        if event == "bts:heartbeat":
            return ['{"event":"bts:heartbeat","channel":"","data":{"status":"success"}}']
        data = msg.get("data")
        channel = data.get("channel") if isinstance(data, dict) else None
        if event != "bts:subscribe" or not isinstance(channel, str):
            return [_error("Bad subscription string.")]
        prefix = _BOOK_PREFIX if channel.startswith(_BOOK_PREFIX) else _PREFIX
        pair = channel[len(prefix):]
        parts = split_glued(pair) if channel.startswith(prefix) and pair.islower() else None
        if not parts:
            return [_error("Invalid channel provided.")]
        symbol = f"{parts[0]}-{parts[1]}"
        if prefix == _BOOK_PREFIX:
            # diffs only: no snapshot is owed on the socket (Session.subscribe_book's)
            session.books[symbol] = _WHOLE_BOOK
        else:
            session.subscribe([symbol])
        ack = {"event": "bts:subscription_succeeded", "channel": channel, "data": {}}
        return [orjson.dumps(ack).decode()]

    def encode(self, trades: list[SimTrade]) -> list[str]:
        return [
            '{"data":{"buy_order_id":%d,"amount_str":"%s","timestamp":"%d","microtimestamp":"%d",'
            '"id":%d,"amount":%s,"sell_order_id":%d,"price_str":"%s","type":%d,"price":%s},'
            '"event":"trade","channel":"%s%s"}'
            % (_ORDER_ID_BASE + 2 * t.trade_id, t.volume, t.ts_ns // 10**9, t.ts_ns // 1000,
               t.trade_id, t.volume, _ORDER_ID_BASE + 2 * t.trade_id + 1, t.price,
               0 if t.side == "buy" else 1, t.price, _PREFIX, t.symbol.replace("-", "").lower())
            for t in trades
        ]

    def close_notice(self) -> str:
        return '{"event":"bts:request_reconnect","channel":"","data":""}'

    def encode_book(self, symbol: str, snapshot: bool, bids: list[tuple[str, str]],
                    asks: list[tuple[str, str]], seq: int, prev_seq: int, ts_ns: int,
                    book, depth: int) -> str:
        """A diff. The socket carries no snapshot; ``snapshot`` is never asked here (a
        sequence-reset fault, which Bitstamp cannot have, is the only other caller)."""
        return orjson.dumps({
            "data": {"timestamp": str(ts_ns // 10**9), "microtimestamp": str(ts_ns // 1000),
                     "bids": [list(level) for level in bids],
                     "asks": [list(level) for level in asks]},
            "channel": _BOOK_PREFIX + symbol.replace("-", "").lower(), "event": "data"}).decode()

    def subscription_error(self, symbol: str) -> str:
        return _error("Invalid channel provided.")


DIALECTS = {"bitstamp": BitstampDialect}
