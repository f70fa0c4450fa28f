"""Binance USD-M futures diff depth (``<sym>@depth@100ms``) on a REST snapshot.

From the USD-M "How to manage a local order book correctly"
(developers.binance.com, derivatives / usds-margined-futures /
websocket-market-streams): fetch ``GET /fapi/v1/depth``, drop events with
``u < lastUpdateId``; the first event applied has ``U <= lastUpdateId <= u``;
after it each event's ``pu`` equals the previous event's ``u``.

NOT the spot rule: on USD-M ``U`` is never the previous ``u`` + 1 (6,190 of
6,190 consecutive diffs in real captures), so a spot check
would desync on every message. ``seq`` is ``u``, ``first_seq`` ``U``,
``prev_seq`` ``pu``. A book moved to another connection (a handover,
``redundancy=2``) continues on it: copies of updates it holds (``u <=`` its
last ``u``) are dropped, the first one kept must chain or bridge
(:meth:`BinanceFuturesRule.joins`).
"""

from __future__ import annotations

from typing import Literal

from rtkit.books import BookMessage
from rtkit.books.rules._common import need


class BinanceFuturesRule:
    name = "binance-futures"
    verified = True
    snapshot_from: Literal["rest", "ws"] = "rest"

    def drop_before_snapshot(self, msg: BookMessage, snapshot: BookMessage) -> bool:
        return need(msg, "u", msg.seq) < need(snapshot, "lastUpdateId", snapshot.seq)

    def bridges(self, msg: BookMessage, snapshot: BookMessage) -> str | None:
        first, last = need(msg, "U", msg.first_seq), need(msg, "u", msg.seq)
        snap = need(snapshot, "lastUpdateId", snapshot.seq)
        if first <= snap <= last:
            return None
        return f"U {first} .. u {last} does not hold lastUpdateId {snap}"

    def follows(self, msg: BookMessage, previous: BookMessage) -> str | None:
        pu, prev = need(msg, "pu", msg.prev_seq), need(previous, "u", previous.seq)
        if pu == prev:
            return None
        return f"pu {pu} != previous u {prev}"

    def held(self, msg: BookMessage, last: BookMessage) -> bool:
        """Another connection's copy of an update the book holds (``u <= `` its last ``u``)."""
        return need(msg, "u", msg.seq) <= need(last, "u", last.seq)

    def joins(self, msg: BookMessage, last: BookMessage) -> str | None:
        """The first update taken from another connection: it chains (``pu`` == the
        last ``u``) or bridges the book at the last ``u`` as it would a snapshot's
        ``lastUpdateId`` (``U <= last u <= u``)."""
        why = self.follows(msg, last)
        if why is None or self.bridges(msg, last) is None:
            return None
        return why

    def verify(self, book, msg: BookMessage) -> str | None:
        return None  # Binance sends no checksum


RULE = BinanceFuturesRule()
RULES = {"binance-futures": BinanceFuturesRule}  # found by rtkit.books.rules.rule_for
