"""OKX v5 public, server side: one ack (or 60018 error) per subscribe arg, the
plain-text ``ping`` → ``pong``, and one ``trades`` push per trade (``count`` 1,
so the stored rows are exactly the simulated trades). A SWAP or FUTURES id
(``BTC-USDT-SWAP``, ``BTC-USD-261225``) is a symbol of its own whose simulated
size text is its number of contracts, as OKX sends it."""

from __future__ import annotations

import orjson

from rtkit.instruments import okx_contract_id
from rtkit.sim.dialects.base import Dialect, Session
from rtkit.sim.market import SimTrade

#: the server's id of every simulated connection (OKX sends a short hex id)
_CONN_ID = "5e1c0a7d"


class OkxDialect(Dialect):
    venue = "okx"
    path = "/ws/v5/public"

    @staticmethod
    def _error(code: str, text: str, req_id: str | None = None) -> str:
        reply = {"event": "error", "code": code, "msg": text, "connId": _CONN_ID}
        if req_id is not None:
            reply = {"id": req_id, **reply}
        return orjson.dumps(reply).decode()

    def on_message(self, text: str, session: Session) -> list[str]:
        if text == "ping":
            return ["pong"]
        try:
            msg = orjson.loads(text)
            op, args, req_id = msg["op"], msg["args"], msg.get("id")
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
            return [self._error("60012", f"Invalid request: {text:.200}")]
        if op != "subscribe" or not isinstance(args, list):
            return [self._error("60012", f"Invalid request: {text:.200}", req_id)]
        replies, symbols = [], []
        for arg in args:
            inst = arg.get("instId") if isinstance(arg, dict) else None
            base, _, quote = inst.partition("-") if isinstance(inst, str) else ("", "", "")
            known = isinstance(inst, str) and inst.isupper() and (
                (base.isalnum() and quote.isalnum()) or okx_contract_id(inst) == inst)
            if not known or arg.get("channel") != "trades":
                replies.append(self.subscription_error(f"{inst!s:.40}"))
                continue
            symbols.append(inst)
            ack = {"event": "subscribe", "arg": arg, "connId": _CONN_ID}
            replies.append(orjson.dumps(ack if req_id is None else {"id": req_id, **ack}).decode())
        session.subscribe(symbols)
        return replies

    def close_notice(self) -> str:
        return orjson.dumps({"event": "notice", "code": "64008", "msg": "The connection will "
                             "soon be closed for a service upgrade. Please reconnect.",
                             "connId": _CONN_ID}).decode()

    def subscription_error(self, symbol: str) -> str:
        return self._error("60018", f"Wrong URL or channel:trades,instId:{symbol} doesn't exist. "
                           "Please use the correct URL, channel and parameters referring to API "
                           "document.")

    def encode(self, trades: list[SimTrade]) -> list[str]:
        return [
            '{"arg":{"channel":"trades","instId":"%s"},"data":[{"instId":"%s","tradeId":"%d",'
            '"px":"%s","sz":"%s","side":"%s","ts":"%d","count":"1","source":"0","seqId":%d}]}'
            % (t.symbol, t.symbol, t.trade_id, t.price, t.volume, t.side, t.ts_ns // 1_000_000,
               t.trade_id)
            for t in trades
        ]


DIALECTS = {"okx": OkxDialect}
