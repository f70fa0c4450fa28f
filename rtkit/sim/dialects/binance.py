"""Binance spot, server side: SUBSCRIBE acks, one ``trade`` event per frame, and the
books: ``<sym>@depth@100ms`` diffs (``U`` the first update id of the diff, ``u`` the
last) and ``<sym>@bookTicker`` (no event time on spot). A book's snapshot is not
sent on the socket: the client asks the REST side (``GET /api/v3/depth``, from
the simulator's books through :class:`rtkit.sim.rest.SimRest`) and its
``lastUpdateId`` is the book's sequence, the diffs' ``u``."""

from __future__ import annotations

import orjson

from rtkit.sim.dialects.base import Dialect, Session
from rtkit.sim.market import SimTrade
from rtkit.venues.base import split_glued

_TRADE_STREAMS = ("trade", "aggTrade")
_DEPTH_STREAMS = ("depth", "depth@100ms")


class BinanceDialect(Dialect):
    """``channel="aggTrade"``: trades go out as ``aggTrade`` events (``a`` the aggregate
    id: one trade per aggregate here, so ``a`` is the trade's id), as a client that
    streams ``<symbol>@aggTrade`` receives them."""

    venue = "binance"
    path = "/ws"
    has_books = True

    def __init__(self, channel: str = "trade") -> None:
        if channel not in _TRADE_STREAMS:
            raise ValueError(f"the binance simulator streams trades as 'trade' or 'aggTrade', "
                             f"not {channel!r}")
        self.channel = channel

    def on_message(self, text: str, session: Session) -> list[str]:
        try:
            msg = orjson.loads(text)
            method, req_id = msg["method"], msg.get("id")
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return ['{"error":{"code":-32600,"msg":"Invalid request"},"id":null}']
        if method == "SUBSCRIBE":
            symbols = []
            for stream in msg.get("params", []):
                native, _, channel = str(stream).partition("@")
                parts = split_glued(native)
                if not parts:
                    continue
                symbol = f"{parts[0]}-{parts[1]}"
                if channel == "bookTicker":
                    session.quotes.add(symbol)
                elif channel in _DEPTH_STREAMS:
                    # no snapshot on the socket (not ``subscribe_book``): it comes over REST
                    session.books[symbol] = 0
                elif channel in _TRADE_STREAMS or not channel:
                    symbols.append(symbol)
            session.subscribe(symbols)
            return [orjson.dumps({"result": None, "id": req_id}).decode()]
        error = {"code": 2, "msg": f"Invalid request: unknown method {method}"}
        return [orjson.dumps({"error": error, "id": req_id}).decode()]

    def encode(self, trades: list[SimTrade]) -> list[str]:
        if self.channel == "aggTrade":
            return [
                '{"e":"aggTrade","E":%d,"s":"%s","a":%d,"p":"%s","q":"%s","f":%d,"l":%d,"T":%d,'
                '"m":%s,"M":true}'
                % (t.ts_ns // 1_000_000, t.symbol.replace("-", ""), t.trade_id, t.price,
                   t.volume, t.trade_id, t.trade_id, t.ts_ns // 1_000_000,
                   "true" if t.side == "sell" else "false")
                for t in trades
            ]
        return [
            '{"e":"trade","E":%d,"s":"%s","t":%d,"p":"%s","q":"%s","T":%d,"m":%s,"M":true}'
            % (t.ts_ns // 1_000_000, t.symbol.replace("-", ""), t.trade_id, t.price, t.volume,
               t.ts_ns // 1_000_000, "true" if t.side == "sell" else "false")
            for t in trades
        ]

    def _diff(self, native: str, bids, asks, seq: int, prev_seq: int, ms: int) -> dict:
        """Spot's ``depthUpdate``: ``U`` one past the previous diff's ``u``."""
        return {"e": "depthUpdate", "E": ms, "s": native, "U": prev_seq + 1, "u": seq,
                "b": bids, "a": asks}

    def encode_book(self, symbol: str, snapshot: bool, bids: list[tuple[str, str]],
                    asks: list[tuple[str, str]], seq: int, prev_seq: int, ts_ns: int,
                    book, depth: int) -> str:
        # a snapshot asked on the socket (a restart) goes out as a diff of its levels
        return orjson.dumps(self._diff(symbol.replace("-", ""), bids, asks, seq, prev_seq,
                                       ts_ns // 1_000_000)).decode()

    def encode_restart(self, symbol: str, book, ts_ns: int, depth: int) -> str:
        """Binance has no restart message: the update ids simply start again, which
        the client sees as a diff that does not follow."""
        return self.encode_book(symbol, False, [], [], book.seq, book.seq - 1, ts_ns, book,
                                depth)

    def encode_quote(self, symbol: str, bid: tuple[str, str], ask: tuple[str, str], seq: int,
                     ts_ns: int) -> str | None:
        return orjson.dumps({"u": seq, "s": symbol.replace("-", ""), "b": bid[0], "B": bid[1],
                             "a": ask[0], "A": ask[1]}).decode()

    def subscription_error(self, symbol: str) -> str:
        return '{"error":{"code":2,"msg":"Invalid request: invalid symbol %s"},"id":1}' % symbol


DIALECTS = {"binance": BinanceDialect}
