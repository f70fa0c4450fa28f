"""Bybit v5 spot, linear or inverse, server side: the category's ack and pong shapes,
spot's cap of 10 args per subscribe, ``publicTrade`` frames of up to 1024 trades of
one symbol with UUID trade ids (on ``inverse`` the size text is USD contracts), and the
books: ``orderbook.<depth>`` (a snapshot, then deltas, ``u`` one up per message; a
restart's snapshot has ``u`` 1) and ``orderbook.1`` (the best bid and offer); unsubscribe
too."""

from __future__ import annotations

import uuid
from itertools import groupby
from operator import attrgetter

import orjson

from rtkit.sim.dialects.base import Dialect, Session
from rtkit.sim.market import SimTrade
from rtkit.venues.base import split_glued
from rtkit.venues.bybit import checked_category

_TOPIC = "publicTrade."
_BOOK = "orderbook."
_BOOK_DEPTHS = (1, 50, 200, 1000)
_SPOT_MAX_ARGS = 10
#: the server's id of every simulated connection (Bybit sends a UUID per connection)
_CONN_ID = "7c1e6a52-3f0d-4b8e-9a61-5d2c8f4b0e17"
#: namespace of the simulated trade ids, so the same trade always gets the same UUID
_TRADE_ID_NAMESPACE = uuid.UUID("3b8f1c2e-6d4a-5e7b-8c9d-0a1b2c3d4e5f")


class BybitDialect(Dialect):
    venue = "bybit"
    max_batch = 1024
    has_books = True

    def __init__(self, category: str = "spot") -> None:
        self.category = checked_category(category)
        self.path = f"/v5/public/{category}"

    def _reply(self, op: str, ok: bool, ret_msg: str, req_id: str | None) -> str:
        """Bybit's answer shape; ``req_id`` None leaves it out (spot pongs, the args cap)."""
        reply = {"success": ok, "ret_msg": ret_msg, "conn_id": _CONN_ID}
        if req_id is not None:
            reply["req_id"] = req_id
        reply["op"] = op
        return orjson.dumps(reply).decode()

    def on_message(self, text: str, session: Session) -> list[str]:
        try:
            msg = orjson.loads(text)
            op, req_id, args = msg["op"], msg.get("req_id", ""), msg.get("args")
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
            return [self._reply("", False, "error:invalid request", "")]
        if op == "ping":
            return [self._reply("ping", True, "pong", None if self.category == "spot" else req_id)]
        if op not in ("subscribe", "unsubscribe") or not isinstance(args, list):
            return [self._reply(str(op), False, f"error:unsupported op {op!r:.40}", req_id)]
        if self.category == "spot" and len(args) > _SPOT_MAX_ARGS:
            return [self._reply("subscribe", False, "args size >10", None)]
        symbols, unknown = [], []
        for topic in args:
            if isinstance(topic, str) and topic.startswith(_BOOK):
                if not self._book_topic(topic, session, op == "subscribe"):
                    unknown.append(f"{topic!s:.60}")
                continue
            parts = (split_glued(topic[len(_TOPIC):])
                     if isinstance(topic, str) and topic.startswith(_TOPIC) else None)
            if parts:
                symbols.append(f"{parts[0]}-{parts[1]}")
            else:
                unknown.append(f"{topic!s:.60}")
        if op == "unsubscribe":
            session.symbols[:] = [s for s in session.symbols if s not in symbols]
            return [self._reply("unsubscribe", True, "", req_id)]
        session.subscribe(symbols)
        if unknown:
            return [self._not_found(unknown[0], req_id)]
        ok_text = "subscribe" if self.category == "spot" else ""
        return [self._reply("subscribe", True, ok_text, req_id)]

    @staticmethod
    def _book_topic(topic: str, session: Session, subscribe: bool) -> bool:
        """``orderbook.<depth>.<SYMBOL>`` (un)subscribed; False for a topic Bybit lacks."""
        _, depth_text, native = (topic.split(".", 2) + ["", ""])[:3]
        parts = split_glued(native)
        if not parts or not depth_text.isdigit() or int(depth_text) not in _BOOK_DEPTHS:
            return False
        symbol, depth = f"{parts[0]}-{parts[1]}", int(depth_text)
        if depth == 1:
            (session.quotes.add if subscribe else session.quotes.discard)(symbol)
        elif subscribe:
            session.subscribe_book(symbol, depth)
        else:
            session.unsubscribe_book(symbol)
        return True

    def encode_book(self, symbol: str, snapshot: bool, bids: list[tuple[str, str]],
                    asks: list[tuple[str, str]], seq: int, prev_seq: int, ts_ns: int,
                    book, depth: int) -> str:
        native = symbol.replace("-", "")
        ms = ts_ns // 1_000_000
        return orjson.dumps({
            "topic": f"{_BOOK}{depth}.{native}",
            "type": "snapshot" if snapshot else "delta", "ts": ms,
            "data": {"s": native, "b": bids, "a": asks, "u": seq, "seq": seq * 10},
            "cts": ms}).decode()

    def encode_quote(self, symbol: str, bid: tuple[str, str], ask: tuple[str, str], seq: int,
                     ts_ns: int) -> str | None:
        native = symbol.replace("-", "")
        ms = ts_ns // 1_000_000
        return orjson.dumps({
            "topic": f"{_BOOK}1.{native}", "type": "snapshot", "ts": ms,
            "data": {"s": native, "b": [bid], "a": [ask], "u": seq, "seq": seq * 10},
            "cts": ms}).decode()

    def _not_found(self, topic: str, req_id: str) -> str:
        return self._reply("subscribe", False, f"error:handler not found,topic:{topic}", req_id)

    def subscription_error(self, symbol: str) -> str:
        return self._not_found(_TOPIC + symbol.replace("-", ""), "")

    def expected_trade_id(self, trade: SimTrade) -> str:
        """A UUID like Bybit's derivative ids, derived from the trade so it never changes."""
        return str(uuid.uuid5(_TRADE_ID_NAMESPACE, f"{trade.symbol}:{trade.trade_id}"))

    def encode(self, trades: list[SimTrade]) -> list[str]:
        """One frame per run of consecutive trades of a symbol, cut at 1024 trades."""
        frames = []
        for symbol, same_symbol in groupby(trades, key=attrgetter("symbol")):
            native, run = symbol.replace("-", ""), list(same_symbol)
            for start in range(0, len(run), self.max_batch):
                data = [{"T": t.ts_ns // 1_000_000, "s": native,
                         "S": "Buy" if t.side == "buy" else "Sell", "v": t.volume, "p": t.price,
                         "i": self.expected_trade_id(t), "BT": False, "seq": t.trade_id}
                        for t in run[start : start + self.max_batch]]
                frames.append(orjson.dumps({"topic": _TOPIC + native, "type": "snapshot",
                                            "ts": data[-1]["T"], "data": data}).decode())
        return frames


DIALECTS = {"bybit": BybitDialect}
