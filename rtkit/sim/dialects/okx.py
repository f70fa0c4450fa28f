"""OKX v5 public, server side: one ack (or 60018 error) per subscribe arg, the
plain-text ``ping`` → ``pong``, and one ``trades`` push per trade (``count`` 1,
so the stored rows are exactly the simulated trades). A SWAP or FUTURES id
(``BTC-USDT-SWAP``, ``BTC-USD-261225``) is a symbol of its own whose simulated
size text is its number of contracts, as OKX sends it.

Books: ``books`` (a ``snapshot`` with ``prevSeqId`` -1, then ``update`` pushes whose
``prevSeqId`` is the previous push's ``seqId``; ids step by :data:`SEQ_ID_STEP`, not
one, as OKX's are not contiguous), a restart of the venue's service as the update
whose ``seqId`` drops below its ``prevSeqId`` (OKX's sequence reset after
maintenance), ``checksum`` 0 as OKX sends now (the legacy CRC32 of the top 25 with
``checksum=True``), and ``bbo-tbt`` (the best bid and offer); unsubscribe too."""

from __future__ import annotations

import orjson

from rtkit.books.checksum import OKX_LEVELS, okx_crc32
from rtkit.instruments import okx_contract_id
from rtkit.sim.dialects.base import Dialect, Session
from rtkit.sim.market import SimTrade

#: the server's id of every simulated connection (OKX sends a short hex id)
_CONN_ID = "5e1c0a7d"
#: ``seqId`` per simulated book message (OKX's ids grow by more than one)
SEQ_ID_STEP = 3
_BOOK_CHANNELS = ("books", "bbo-tbt")
#: levels a side of OKX's public ``books`` channel
OKX_BOOK_LEVELS = 400


def seq_id(seq: int) -> int:
    """The ``seqId`` OKX would send for the simulated book's ``seq``."""
    return 1_000 + SEQ_ID_STEP * seq


class OkxDialect(Dialect):
    venue = "okx"
    path = "/ws/v5/public"
    has_books = True

    def __init__(self, checksum: bool = False) -> None:
        self.checksum = checksum
        self._last_seq_id: dict[str, int] = {}  # symbol → seqId of its last book push

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
        if op not in ("subscribe", "unsubscribe") or not isinstance(args, list):
            return [self._error("60012", f"Invalid request: {text:.200}", req_id)]
        replies, symbols = [], []
        for arg in args:
            inst = arg.get("instId") if isinstance(arg, dict) else None
            base, _, quote = inst.partition("-") if isinstance(inst, str) else ("", "", "")
            known = isinstance(inst, str) and inst.isupper() and (
                (base.isalnum() and quote.isalnum()) or okx_contract_id(inst) == inst)
            channel = arg.get("channel") if isinstance(arg, dict) else None
            if not (known and isinstance(inst, str)) or channel not in ("trades", *_BOOK_CHANNELS):
                replies.append(self.subscription_error(f"{inst!s:.40}"))
                continue
            if channel == "books":
                if op == "subscribe":
                    session.subscribe_book(inst, OKX_BOOK_LEVELS)
                else:
                    session.unsubscribe_book(inst)
            elif channel == "bbo-tbt":
                (session.quotes.add if op == "subscribe" else session.quotes.discard)(inst)
            elif op == "subscribe":
                symbols.append(inst)
            else:
                session.symbols[:] = [s for s in session.symbols if s != inst]
            ack = {"event": op, "arg": arg, "connId": _CONN_ID}
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

    def encode_book(self, symbol: str, snapshot: bool, bids: list[tuple[str, str]],
                    asks: list[tuple[str, str]], seq: int, prev_seq: int, ts_ns: int,
                    book, depth: int) -> str:
        prev = -1 if snapshot else seq_id(prev_seq)
        return self._book_push(symbol, "snapshot" if snapshot else "update", bids, asks,
                               seq_id(seq), prev, ts_ns, book)

    def encode_restart(self, symbol: str, book, ts_ns: int, depth: int) -> str:
        """After maintenance OKX goes on from a smaller ``seqId``: an update whose
        ``seqId`` is below its ``prevSeqId`` (the book itself unchanged)."""
        prev = self._last_seq_id.get(symbol, -1)
        return self._book_push(symbol, "update", [], [], seq_id(book.seq), prev, ts_ns, book)

    def _book_push(self, symbol: str, action: str, bids: list[tuple[str, str]],
                   asks: list[tuple[str, str]], seq: int, prev: int, ts_ns: int, book) -> str:
        self._last_seq_id[symbol] = seq
        checksum = 0
        if self.checksum:
            true_bids, true_asks, _ = book.snapshot(OKX_LEVELS)
            checksum = okx_crc32(true_bids, true_asks)
        return orjson.dumps({
            "arg": {"channel": "books", "instId": symbol}, "action": action,
            "data": [{"asks": [[p, s, "0", "1"] for p, s in asks],
                      "bids": [[p, s, "0", "1"] for p, s in bids],
                      "ts": str(ts_ns // 1_000_000), "checksum": checksum,
                      "prevSeqId": prev, "seqId": seq}]}).decode()

    def encode_quote(self, symbol: str, bid: tuple[str, str], ask: tuple[str, str], seq: int,
                     ts_ns: int) -> str | None:
        return orjson.dumps({
            "arg": {"channel": "bbo-tbt", "instId": symbol},
            "data": [{"asks": [[ask[0], ask[1], "0", "1"]], "bids": [[bid[0], bid[1], "0", "1"]],
                      "ts": str(ts_ns // 1_000_000), "seqId": seq_id(seq)}]}).decode()

    def encode(self, trades: list[SimTrade]) -> list[str]:
        return [
            '{"arg":{"channel":"trades","instId":"%s"},"data":[{"instId":"%s","tradeId":"%d",'
            '"px":"%s","sz":"%s","side":"%s","ts":"%d","count":"1","source":"0","seqId":%d}]}'
            % (t.symbol, t.symbol, t.trade_id, t.price, t.volume, t.side, t.ts_ns // 1_000_000,
               t.trade_id)
            for t in trades
        ]


DIALECTS = {"okx": OkxDialect}
