"""One symbol's book as a pure state machine: messages in, rows and an action out.

States (``rtkit.books.STATES``)::

    subscribing → buffering → snapshot → live → desynced → resyncing → snapshot → live

* a venue whose snapshot comes over REST (``rule.snapshot_from == "rest"``):
  the first delta moves the book to ``buffering`` and asks for a snapshot
  (``fetch_snapshot``); deltas are buffered until it comes (:meth:`snapshot`);
  the ones it already holds are dropped (``rule.drop_before_snapshot``), the
  first kept one must bridge it (``rule.bridges``, else it is fetched again);
* a venue that sends its snapshot on the socket: deltas before it are skipped;
  the snapshot message starts the book, and a later one replaces it.

Once live, each delta must chain onto the previous one (``rule.follows``) and
leave a book that proves right (``rule.verify``: a checksum) and is not
crossed (best bid ≥ best ask): anything else is a desync, which asks at once
for a resync (``fetch_snapshot`` or ``resubscribe``, the venue's way).
A venue without proof (``rule.verified`` False) is ``unverified`` instead of
``live``; :meth:`audit` compares it against a REST snapshot. The snapshot and
the stream are at different instants, so the comparison is made fair: the
keeper calls :meth:`audit_asked` as it sends the request, the machine notes
every level the stream sets from then on, and those levels are left out (the
snapshot may hold them before or after the change); every other level of the
range both books cover must agree. The keeper compares only once the stream
has passed the snapshot's time, so no change the snapshot holds is still on
its way (a level not noted but not yet received would differ falsely).

Rows, in the kinds' column order: ``book_deltas`` (each (re)sync starts with
the full snapshot, ``is_snapshot`` 1), ``book_events`` (every transition, with
why and how long the book was not live) and, for a venue without a BBO
channel, derived ``quotes`` when the top of the book changes. The machine
never does I/O; ``rtkit.books.keeper`` carries out its actions.
"""

from __future__ import annotations

from collections import deque

from rtkit.books import BookMessage, ContinuityRule, Step
from rtkit.books.audit import BookAudits
from rtkit.books.connections import BookRestarts
from rtkit.books.levels import DEFAULT_MAX_LEVELS, LocalBook

#: messages buffered while a snapshot is awaited; the oldest go first beyond it (the
#: snapshot then fails to bridge and is fetched again): bounds a slow snapshot's memory
MAX_BUFFERED = 10_000


class BookMachine(BookRestarts, BookAudits):
    """The book of ``symbol`` on ``venue``, kept by the venue's ``rule``."""

    def __init__(self, venue: str, symbol: str, rule: ContinuityRule, *,
                 max_levels: int | None = DEFAULT_MAX_LEVELS, derive_quotes: bool = False,
                 max_buffered: int = MAX_BUFFERED, started_at: int = 0) -> None:
        self.venue, self.symbol, self.rule = venue, symbol, rule
        self.book = LocalBook(max_levels)
        self.derive_quotes = derive_quotes
        #: the state a good book is in: ``live``, or ``unverified`` without proof
        self.good = "live" if rule.verified else "unverified"
        self.state = "subscribing"
        self.since = started_at  # ns of the last transition
        self.not_live_since: int | None = started_at  # ns the book stopped being good
        self.last: BookMessage | None = None  # the message the next one must follow
        self._snapshot: BookMessage | None = None  # the next message must bridge it
        self._buffer: deque[BookMessage] = deque(maxlen=max_buffered)
        self._quote: tuple | None = None  # the last derived top of book
        self._init_audits()
        # counters (``keeper.stats``)
        self.messages = 0
        self.desyncs = 0
        self.resyncs = 0
        self.skipped = 0  # deltas before a socket snapshot, or stale REST answers
        self.buffer_overflow = 0
        self.refetches = 0  # snapshots that did not bridge the buffered deltas
        self.stream_at = 0  # the venue's time of the latest delta from the socket
        self.stream_received = 0  # when it came (this machine's clock)
        #: a REST-snapshot book moved to another connection asks its snapshot at the first
        #: delta of that connection (so the buffer holds the delta that must bridge it)
        self._fetch_on_delta = False
        #: the book was moved to another connection and goes on there: the first message
        #: of that one must continue it (``BookRestarts.hand_over``)
        self._joining = False
        #: ns before which no later transition is dated: a move to another connection is
        #: written at its moment, and what its kept messages (received before it) then
        #: do to the book comes after it in ``book_events``, not before
        self._events_after = 0

    # --- inputs -------------------------------------------------------------------
    def feed(self, msg: BookMessage, step: Step | None = None) -> Step:
        """One message from the socket; its rows are appended to ``step`` (a new one when
        None), whose ``action`` says what to do next."""
        self.messages += 1
        if msg.timestamp > self.stream_at and not msg.is_snapshot:  # a delta's venue time
            self.stream_at = msg.timestamp  # (a socket snapshot may carry none: its arrival)
        self.stream_received = msg.received_at
        if step is None:
            step = Step()
        state = self.state
        if state == self.good:
            if self._joining:  # the first messages of a new source connection
                self._join(msg, step)
            elif msg.is_snapshot:
                self._replace(msg, step)
            else:
                self._apply_delta(msg, step)
        elif self.rule.snapshot_from == "ws":
            if msg.is_snapshot:
                self._start(msg, step, f"snapshot on the socket{_seq(msg)}")
            else:
                self.skipped += 1
        elif state == "subscribing":
            self._move(step, "buffering", msg.received_at, "first delta; snapshot asked")
            self._buffered(msg)
            step.action = "fetch_snapshot"
        else:  # buffering / resyncing: waiting for a REST snapshot
            self._buffered(msg)
            if self._fetch_on_delta:
                self._fetch_on_delta = False
                step.action = "fetch_snapshot"
        return step

    def snapshot(self, snap: BookMessage) -> Step:
        """A REST snapshot, answering ``fetch_snapshot``."""
        step = Step()
        if self.rule.snapshot_from != "rest" or self.state not in ("buffering", "resyncing"):
            self.skipped += 1  # an answer nobody waits for any more
            return step
        rule, buffer = self.rule, self._buffer
        while buffer and rule.drop_before_snapshot(buffer[0], snap):
            buffer.popleft()
        if buffer:
            why = rule.bridges(buffer[0], snap)
            if why is not None:
                self.refetches += 1
                self._event(step, self.state, self.state, snap.received_at,
                            f"snapshot does not bridge the buffered deltas: {why}; asked again",
                            snap.seq)
                step.action = "fetch_snapshot"
                return step
        # "drop any event" the snapshot holds: one held back behind a later one too
        pending = [msg for msg in buffer if not rule.drop_before_snapshot(msg, snap)]
        buffer.clear()
        if not self._start(snap, step, f"REST snapshot{_seq(snap)}, {len(pending)} buffered "
                           "deltas to apply"):
            return step
        for msg in pending:
            if self.state != self.good:  # a buffered delta broke it: the resync is asked
                self._buffered(msg)
            else:
                self._apply_delta(msg, step)
        return step

    # --- transitions ------------------------------------------------------------------
    def _start(self, snap: BookMessage, step: Step, reason: str) -> bool:
        """Load ``snap`` as the whole book; True when it left the book good."""
        resync = self.state == "resyncing"
        self._move(step, "snapshot", snap.received_at, reason, snap.seq)
        if not self._load(snap, step):
            return False
        self.resyncs += resync
        self._move(step, self.good, snap.received_at, "snapshot applied", snap.seq)
        self._quote_row(snap, step)
        return True

    def _replace(self, msg: BookMessage, step: Step) -> None:
        """A snapshot on the socket while live: it replaces the book (Bybit sends one
        after a restart of its service, OKX after a repeated subscribe)."""
        why = self.rule.follows(msg, self.last) if self.last is not None else None
        if why is None:
            if self._load(msg, step):
                self._quote_row(msg, step)
            return
        self.not_live_since = msg.received_at
        self._start(msg, step, f"new snapshot: {why}")

    def _load(self, snap: BookMessage, step: Step) -> bool:
        """Replace the whole book by ``snap`` (its rows ``is_snapshot`` 1); True when the
        book it makes is right, else the desync is under way."""
        book = self.book
        book.clear()
        self.loads += 1
        rows = step.deltas
        head = (self.venue, self.symbol, snap.timestamp, snap.received_at,
                snap.seq if snap.seq is not None else 0, 1)
        try:
            for side, is_ask, levels in (("bid", False, snap.bids), ("ask", True, snap.asks)):
                for price, size in levels:
                    p, s = book.set_level(is_ask, price, size)
                    if s > 0.0:
                        rows.append((*head, side, p, s))
        except ValueError as exc:
            self._desync(step, snap.received_at, f"unreadable level in the snapshot: {exc}",
                         snap.seq)
            return False
        book.trim()
        self.last = self._snapshot = snap
        if (why := self._wrong(snap)) is not None:
            self._desync(step, snap.received_at, why, snap.seq)
            return False
        return True

    def _apply_delta(self, msg: BookMessage, step: Step, joined: bool = False) -> None:
        """Apply one delta that must chain on (``joined``: its rule's ``joins`` said it
        continues the book from another connection)."""
        snap = self._snapshot
        if joined:
            why = None
        elif snap is not None:  # the first delta after a snapshot bridges it
            if snap.source == "rest" and self.rule.drop_before_snapshot(msg, snap):
                self.skipped += 1  # the REST snapshot was ahead of the socket: it holds this
                return
            why = self.rule.bridges(msg, snap) if snap.source == "rest" else \
                self.rule.follows(msg, snap)
        else:
            why = self.rule.follows(msg, self.last) if self.last is not None else None
        if why is not None:
            self._desync(step, msg.received_at, why, msg.seq, msg)
            return
        book = self.book
        head = (self.venue, self.symbol, msg.timestamp, msg.received_at,
                msg.seq if msg.seq is not None else 0, 0)
        touched = self._touched
        if touched is not None:  # an audit's snapshot is on its way: these levels are moot
            touched[0].update(float(price) for price, _ in msg.bids)
            touched[1].update(float(price) for price, _ in msg.asks)
        try:
            book.apply(False, msg.bids, head, "bid", step.deltas)
            book.apply(True, msg.asks, head, "ask", step.deltas)
        except ValueError as exc:
            self._desync(step, msg.received_at, f"unreadable level: {exc}", msg.seq)
            return
        book.trim()
        self.last, self._snapshot = msg, None
        if (why := self._wrong(msg)) is not None:
            self._desync(step, msg.received_at, why, msg.seq)
        elif self.derive_quotes:
            self._quote_row(msg, step)

    def _wrong(self, msg: BookMessage) -> str | None:
        """Why the book just changed by ``msg`` is wrong (checksum, crossed), or None."""
        why = self.rule.verify(self.book, msg)
        if why is not None:
            return why
        crossed = self.book.crossed()
        if crossed is not None:
            return f"crossed book: best bid {crossed[0]:g} >= best ask {crossed[1]:g}"
        return None

    def _desync(self, step: Step, at: int, reason: str, seq: int | None,
                keep: BookMessage | None = None) -> None:
        """Mark the book wrong and ask for its resync at once."""
        self.desyncs += 1
        if self.state == self.good:
            self.not_live_since = at
        self._move(step, "desynced", at, reason, seq)
        self._move(step, "resyncing", at, "snapshot asked" if self.rule.snapshot_from == "rest"
                   else "resubscribe asked", seq)
        self.last = self._snapshot = None
        self._quote = None
        self._buffer.clear()
        self._fetch_on_delta = self._joining = False
        if self.rule.snapshot_from == "rest":
            if keep is not None:  # the delta after the hole may be the snapshot's bridge
                self._buffer.append(keep)
            step.action = "fetch_snapshot"
        else:
            step.action = "resubscribe"

    def _buffered(self, msg: BookMessage) -> None:
        self.buffer_overflow += len(self._buffer) == self._buffer.maxlen  # the oldest goes
        self._buffer.append(msg)

    def _move(self, step: Step, to: str, at: int, reason: str, seq: int | None = None) -> None:
        at = max(at, self._events_after)
        not_live_s = None
        if to == self.good and self.not_live_since is not None:
            not_live_s = max(0, at - self.not_live_since) / 1e9
            self.not_live_since = None
        self._event(step, self.state, to, at, reason, seq, not_live_s)
        self.state, self.since = to, at

    def _event(self, step: Step, from_state: str, to_state: str, at: int, reason: str,
               seq: int | None, not_live_s: float | None = None) -> None:
        step.events.append((self.venue, self.symbol, max(at, self._events_after), from_state,
                            to_state, reason, seq, not_live_s))

    def _quote_row(self, msg: BookMessage, step: Step) -> None:
        if not self.derive_quotes:
            return
        bid, ask = self.book.best_bid(), self.book.best_ask()
        if bid is None or ask is None:
            return
        top = (bid[0], bid[1], ask[0], ask[1])
        if top != self._quote:
            self._quote = top
            step.quotes.append((self.venue, self.symbol, msg.timestamp, msg.received_at, *top,
                                msg.seq if msg.seq is not None else 0))


def _seq(msg: BookMessage) -> str:
    return f" at seq {msg.seq}" if msg.seq is not None else ""
