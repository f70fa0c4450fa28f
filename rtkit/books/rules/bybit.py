"""Bybit v5 ``orderbook.{depth}.{symbol}``: the snapshot on the socket, ``u`` +1 per message.

Bybit's order book page (bybit-exchange.github.io/docs/v5/websocket/public/orderbook):
the first message after subscribing is a ``snapshot``, then ``delta``s; a
later ``snapshot`` replaces the book; ``u`` rises by one per message of a
topic, and ``u == 1`` means the service restarted and the message is a new
snapshot. No checksum. ``u`` is the topic's, the same on every connection: a
book moved to another connection (a handover, ``redundancy=2``) drops the copies
it holds and continues with the delta after its last ``u`` (a fresh
subscription's snapshot, when newer, simply replaces it).
"""

from __future__ import annotations

from typing import Literal

from rtkit.books import BookMessage, BookView


class BybitRule:
    """``u`` == previous ``u`` + 1; a snapshot (or ``u`` 1) starts the book afresh."""

    name = "bybit"
    verified = True
    snapshot_from: Literal["rest", "ws"] = "ws"

    def drop_before_snapshot(self, msg: BookMessage, snapshot: BookMessage) -> bool:
        return False  # the snapshot comes on the socket, before every delta

    def bridges(self, msg: BookMessage, snapshot: BookMessage) -> str | None:
        return self.follows(msg, snapshot)

    def follows(self, msg: BookMessage, previous: BookMessage) -> str | None:
        if msg.seq is None or previous.seq is None:
            return f"u missing (u {msg.seq}, previous u {previous.seq})"
        if msg.seq == previous.seq + 1:
            return None
        if msg.seq == 1:
            return f"u 1 after u {previous.seq}: the venue restarted"
        return f"u {msg.seq} != previous u {previous.seq} + 1"

    def held(self, msg: BookMessage, last: BookMessage) -> bool:
        """Another connection's copy of a message the book holds (``u <=`` its last
        ``u``; ``u`` 1, the venue's restart, never is)."""
        return msg.seq is not None and last.seq is not None and 1 < msg.seq <= last.seq

    def joins(self, msg: BookMessage, last: BookMessage) -> str | None:
        """The first delta taken from another connection: the same topic counts ``u``
        alike on every connection, so it must simply follow."""
        return self.follows(msg, last)

    def verify(self, book: BookView, msg: BookMessage) -> str | None:
        return None


RULES = {"bybit": BybitRule}
