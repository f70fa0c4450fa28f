"""What the receiver's connections do to the books: a reconnect starts them over, and
with two connections on the same streams each book is fed by one (its source,
:mod:`rtkit.books.sources`) and moves to the other when its own ends.

Mixins of :class:`rtkit.books.keeper.BookKeeper` (:class:`KeeperConnections`) and of
:class:`rtkit.books.machine.BookMachine` (:class:`BookRestarts`), apart so that those
stay about keeping a book right.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from rtkit.books import BookMessage, ContinuityRule, Step
from rtkit.books.sources import Sources


class BookRestarts:
    """A machine's starts over: after a reconnect, or from another connection."""

    # set by the machine this is part of
    rule: ContinuityRule
    state: str
    good: str
    not_live_since: int | None
    loads: int
    last: BookMessage | None
    _snapshot: BookMessage | None
    _buffer: deque
    _quote: tuple | None
    _fetch_on_delta: bool

    def _move(self, step: Step, to: str, at: int, reason: str, seq: int | None = None) -> None:
        raise NotImplementedError

    def restart(self, at: int, reason: str) -> Step:
        """The connection was opened again: the book starts over (its snapshot comes again)."""
        step = Step()
        if self.state == "subscribing":
            return step
        if self.state == self.good:
            self.not_live_since = at
        self.loads += 1
        self._move(step, "subscribing", at, reason)
        self.last = self._snapshot = None
        self._buffer.clear()
        self._fetch_on_delta = False
        return step

    def switch_source(self, at: int, reason: str, ask: bool = True) -> Step:
        """The connection that fed this book is gone while another one carries the same
        stream (``redundancy=2``, a handover): the book starts again from the other's,
        a resync without a desync (nothing was wrong with the book). A socket-snapshot
        venue resubscribes on that connection; a REST one fetches its snapshot once the
        first delta of that connection is buffered. ``ask`` False: the snapshot is on its
        way already (the message that comes next is the new connection's snapshot)."""
        step = Step()
        if self.state == self.good:
            self.not_live_since = at
        self._move(step, "resyncing", at, reason)
        self.last = self._snapshot = None
        self._quote = None
        self._buffer.clear()
        if self.rule.snapshot_from == "rest":
            self._fetch_on_delta = True
        elif ask:
            step.action = "resubscribe"
        return step


class KeeperConnections:
    """A keeper's side of the connections: which one feeds each book, and what a
    connection that opens or ends does to the books."""

    # set by the keeper this is part of
    machines: dict[str, Any]
    _lock: threading.Lock
    _resubscribe: list[str]

    def _init_connections(self) -> None:
        #: the connection that feeds each book (``rtkit.books.sources``)
        self.sources = Sources()

    def _machine(self, symbol: str, started_at: int | None = None) -> Any:
        raise NotImplementedError

    def _merge(self, out: Step, step: Step, symbol: str, purpose: str) -> None:
        raise NotImplementedError

    def admit(self, messages: list[BookMessage], connection: int
              ) -> tuple[list[BookMessage], Step]:
        """Of one batch read from ``connection`` (the receiver's number of it), the
        messages that feed their books: the other connection's copies are counted and
        left out. Also the rows of the books that move to ``connection`` now (their old
        source ended): each resyncs from it. Then :meth:`feed` the messages kept."""
        out = Step()
        kept = []
        with self._lock:
            sources = self.sources
            sources.seen(connection)
            for msg in messages:
                taken, moved = sources.admit(msg.symbol, connection)
                if not taken:  # the other connection's copy: its book has one
                    continue
                if moved is not None:  # its old source ended: it resyncs from this one
                    self._switch(out, msg.symbol, msg.received_at, moved, not msg.is_snapshot)
                kept.append(msg)
        return kept, out

    def connection_opened(self, at: int, first: bool) -> Step:
        """A (re)connect: every book starts over, its snapshot coming again."""
        out = Step()
        if first:
            return out
        with self._lock:
            for symbol, machine in self.machines.items():
                self._merge(out, machine.restart(at, "the connection was opened again"), symbol,
                            "resync")
            self.sources.clear()  # the first connection to bring a symbol's book feeds it
            self._resubscribe.clear()  # the new connection subscribes every book anyway
        return out

    def connection_closed(self, connection: int, at: int, why: str) -> Step:
        """``connection`` ended (``why``: ``source connection lost``…): each book it fed
        moves to the newest other connection that brings book messages and resyncs from
        it. With none yet, each moves to the next connection that brings it a message
        (and resyncs then); after a reconnect, the open starts every book over anyway."""
        out = Step()
        with self._lock:
            for symbol in self.sources.closed(connection, why):
                self._switch(out, symbol, at, why)
        return out

    def _switch(self, out: Step, symbol: str, at: int, why: str, ask: bool = True) -> None:
        """``symbol``'s book is fed by another connection from now on: it resyncs."""
        self._merge(out, self._machine(symbol).switch_source(at, why, ask), symbol, "resync")

    def take_resubscribes_by_connection(self) -> dict[int | None, list[str]]:
        """:meth:`take_resubscribes` by the connection to send them on: each book's
        source (None: a book without one, sent on any connection)."""
        by_connection: dict[int | None, list[str]] = {}
        with self._lock:
            symbols, self._resubscribe = self._resubscribe, []
            for symbol in symbols:
                by_connection.setdefault(self.sources.of.get(symbol), []).append(symbol)
        return by_connection
