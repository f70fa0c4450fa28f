"""What the receiver's connections do to the books: a reconnect starts them over, and
with two connections on the same streams each book is fed by one (its source,
:mod:`rtkit.books.sources`) and moves to the other when its own ends.

A move is not a resync where the venue's rule can prove the book goes on: the other
connection's messages the book left out are kept (its *tail*, at most
``HANDOVER_TAIL`` a book), and at the move they, then that connection's next ones,
must continue the book under the venue's own checks (:meth:`BookRestarts.hand_over`):

* a venue whose sequence is the book's, the same on every connection (Binance ``U/u``
  and ``pu``, Bybit ``u``, OKX ``prevSeqId/seqId``; the rule's ``held`` and
  ``joins``): the copies of updates the book holds are dropped, the first other one
  must chain onto (Binance: bridge) its last update, a newer socket snapshot replaces
  it; anything else is a real break, a desync;
* a venue without such a sequence (Kraken's checksum, Coinbase Advanced's count per
  connection, no proof at all): the tail is kept only from that connection's own
  snapshot (a subscription starts with one), and the book is rebuilt from it and the
  messages after it, each under the venue's checks, as a resubscribe would, without
  the round trip; with no such snapshot kept (it was pushed out of the bound), or on a
  REST-snapshot venue without proof (Bitstamp), the book resyncs from the other
  connection as before (a resync, no desync).

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

#: messages of a book kept from each connection that is not its source, at most: what
#: it continues from when it moves there (a handover overlaps at most
#: ``HANDOVER_MAX_S``, 10 s: 100 messages a second of one book fit); beyond it the oldest
#: go (a venue without a book sequence then drops that tail: its snapshot went first)
HANDOVER_TAIL = 1_000


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

    _joining: bool
    _events_after: int
    skipped: int

    def _move(self, step: Step, to: str, at: int, reason: str, seq: int | None = None) -> None:
        raise NotImplementedError

    def _event(self, step: Step, from_state: str, to_state: str, at: int, reason: str,
               seq: int | None, not_live_s: float | None = None) -> None:
        raise NotImplementedError

    def _load(self, snap: BookMessage, step: Step) -> bool:
        raise NotImplementedError

    def _quote_row(self, msg: BookMessage, step: Step) -> None:
        raise NotImplementedError

    def _apply_delta(self, msg: BookMessage, step: Step, joined: bool = False) -> None:
        raise NotImplementedError

    def _desync(self, step: Step, at: int, reason: str, seq: int | None,
                keep: BookMessage | None = None) -> None:
        raise NotImplementedError

    @property
    def can_join(self) -> bool:
        """Whether the venue's sequence is the book's on every connection (its rule has
        ``held`` and ``joins``): a delta of another connection can be proved to continue
        the book."""
        return hasattr(self.rule, "joins") and hasattr(self.rule, "held")

    @property
    def can_continue(self) -> bool:
        """Whether a move to another connection can ever go on without a resync: by the
        venue's sequence, or from that connection's own snapshot on the socket (not
        Bitstamp: no sequence, its snapshot over REST)."""
        return self.can_join or self.rule.snapshot_from == "ws"

    def held(self, msg: BookMessage) -> bool:
        """``msg`` (another connection's) is a copy of an update this book holds."""
        held = getattr(self.rule, "held", None)
        last = self.last
        return held is not None and last is not None and self.state == self.good \
            and bool(held(msg, last))

    def hand_over(self, at: int, reason: str, first: BookMessage | None) -> Step:
        """The connection that fed this book is gone while another one carries the same
        stream; ``first`` is that one's first message the book will take (None: not come
        yet). Where it can be proved to continue the book (a venue sequence the same on
        every connection, or that connection's own snapshot), the book stays good and
        goes on from it (a ``book_events`` row says it moved: state unchanged); else it
        resyncs (:meth:`switch_source`)."""
        if self.state == self.good and self.last is not None and (
                self.can_join or first is not None and first.is_snapshot):
            step = Step()
            self._joining = True
            self._event(step, self.state, self.state, at, reason, self.last.seq)
            self._events_after = at + 1  # what the new stream does to it comes after
            return step
        return self.switch_source(at, reason, ask=first is None or not first.is_snapshot)

    def _join(self, msg: BookMessage, step: Step) -> None:
        """A message of the book's new source connection while it is joined: a copy of an
        update it holds is dropped; a snapshot replaces the book; a delta must continue
        it (the rule's ``joins``), else the book desyncs: a real break."""
        if self.held(msg):
            self.skipped += 1
            return
        self._joining = False
        if msg.is_snapshot:  # that connection's fresh start: the book is its from now on
            if self._load(msg, step):
                self._quote_row(msg, step)
            return
        joins = getattr(self.rule, "joins", None)
        last = self.last
        why = joins(msg, last) if joins is not None and last is not None else \
            "no sequence proves it continues the book"
        if why is None:
            self._apply_delta(msg, step, joined=True)
        else:
            self._desync(step, msg.received_at,
                         f"the new source connection does not continue the book: {why}",
                         msg.seq, msg)

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
        self._fetch_on_delta = self._joining = False
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
        self._joining = False
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
        #: symbol → connection → that connection's messages the book left out and may go
        #: on from when it moves there (at most ``HANDOVER_TAIL`` each)
        self._tails: dict[str, dict[int, deque[BookMessage]]] = {}
        #: connection → the books it brought a copy of an update they hold (or their own
        #: snapshot) for: its stream from then on continues them (``books_overlap``)
        self._overlap: dict[int, set[str]] = {}

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
                    self._keep(msg, connection)
                    continue
                if moved is not None:  # its old source ended: it goes on from this one
                    self._hand_over(out, msg.symbol, msg.received_at, moved, [], msg)
                kept.append(msg)
        return kept, out

    def _keep(self, msg: BookMessage, connection: int) -> None:
        """A message of a connection that does not feed its book, kept in that
        connection's tail while it may be needed to continue the book there."""
        machine = self.machines.get(msg.symbol)
        if machine is None:
            return
        tails = self._tails.setdefault(msg.symbol, {})
        tail = tails.get(connection)
        overlap = self._overlap.setdefault(connection, set())
        if msg.is_snapshot or tail is None:  # a snapshot: what came before it is moot
            if not (msg.is_snapshot or machine.can_join):
                return  # without its snapshot, it proves nothing on such a venue
            tail = tails[connection] = deque()
            if msg.is_snapshot:
                overlap.add(msg.symbol)
        elif len(tail) >= HANDOVER_TAIL:
            if not machine.can_join:  # its snapshot would go: the tail proves nothing
                del tails[connection]
                overlap.discard(msg.symbol)
                return
            tail.popleft()
        tail.append(msg)
        while tail and machine.held(tail[0]):  # the book holds it already
            tail.popleft()
            overlap.add(msg.symbol)

    def books_overlap(self, connection: int) -> bool:
        """Whether ``connection``'s stream continues every good book fed by another one:
        it brought a copy of an update each holds (or its own snapshot), so nothing the
        book still needs lies between the two streams. Closing the other connection
        before that (a handover decided on trades alone) may leave the updates it had
        on the way unread and the new one's stream starting after them: a desync."""
        with self._lock:
            overlap = self._overlap.get(connection, set())
            for symbol, machine in self.machines.items():
                source = self.sources.of.get(symbol)
                if source is None or source == connection or symbol in overlap \
                        or machine.state != machine.good or not machine.can_continue:
                    continue
                tail = self._tails.get(symbol, {}).get(connection)
                if not tail or not machine.held(tail[0]):
                    return False
            return True

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
            self._tails.clear()
            self._overlap.clear()
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
                tail = self._tails.get(symbol, {}).pop(self.sources.of[symbol], None)
                self._hand_over(out, symbol, at, why, list(tail or ()), None)
            for tails in self._tails.values():
                tails.pop(connection, None)
            self._overlap.pop(connection, None)
        return out

    def _hand_over(self, out: Step, symbol: str, at: int, why: str, tail: list[BookMessage],
                   first: BookMessage | None) -> None:
        """``symbol``'s book is fed by another connection from now on: it goes on from
        ``tail`` (that connection's messages it left out) and ``first`` (the message
        about to be fed), or resyncs where that cannot be proved."""
        machine = self._machine(symbol)
        self._merge(out, machine.hand_over(at, why, tail[0] if tail else first), symbol,
                    "resync")
        for msg in tail:
            machine.feed(msg, out)
            if out.action is not None:
                self._act(out.action, symbol)
                out.action = None

    def _act(self, action: str, symbol: str) -> None:
        raise NotImplementedError

    def take_resubscribes_by_connection(self) -> dict[int | None, list[str]]:
        """:meth:`take_resubscribes` by the connection to send them on: each book's
        source (None: a book without one, sent on any connection)."""
        by_connection: dict[int | None, list[str]] = {}
        with self._lock:
            symbols, self._resubscribe = self._resubscribe, []
            for symbol in symbols:
                by_connection.setdefault(self.sources.of.get(symbol), []).append(symbol)
        return by_connection
