"""The runtime side of a venue's books: one machine per symbol, and their actions done.

The receive thread hands every ``BookMessage`` to :meth:`BookKeeper.feed`
(through the pipeline) and calls :meth:`BookKeeper.poll` after each read and
every quarter second; both return the rows to store (a merged
:class:`rtkit.books.Step`). What the machines ask for is carried out here:

* ``fetch_snapshot``: the injected ``fetch(symbol) -> BookMessage`` (the REST
  client, within its venue's budget) runs on a worker thread, never on the
  receive thread; its answer is given to the machine at the next ``poll``.
  One request per symbol at a time; a failed one is asked again after
  ``RETRY_S`` (doubling up to ``RETRY_MAX_S``);
* ``resubscribe``: the symbol waits in :meth:`take_resubscribes` for the
  receiver, which sends the adapter's resubscribe frames;
* an ``unverified`` book (a venue without proof) is audited every
  ``audit_every_s`` against a fetched snapshot. The machine notes the levels
  the stream sets from the moment the request goes out (those are left out of
  the comparison), and the answer waits until the stream has reached the
  snapshot's time (a message of that venue time or later came): until then a
  change the snapshot holds may still be on its way, and the comparison would
  see a difference that is none. A stream that stays behind the snapshot for
  ``AUDIT_GIVE_UP_S`` (a receiver far behind the venue, or a book that has
  not changed since) makes the audit void, asked again at the next period.
  A snapshot without the venue's time (``timestamp`` 0, as ``DepthSnapshot``
  says it; Coinbase Exchange's documented REST book has none) is compared
  ``AUDIT_SETTLE_S`` after it came, and a difference counts only when the
  next audit, asked at once, finds it again on a level the stream has not
  set meanwhile.

With a recording (:meth:`BookKeeper.record_to`) the keeper writes what its
books depend on besides the socket's frames: its start, each snapshot asked,
each answer at the moment it is taken (between two frames) and, when it
fetches, each poll between reads, so that ``rtkit.replay`` gives a keeper
built with ``replaying=True`` the same answers at the same places, polls it
at the same moments, and rebuilds the same ``book_deltas`` and ``book_events``.

Where two connections carry the same streams (``redundancy=2``, a make-before-break
handover), each book is fed by one of them at a time, its *source*: the first
connection that brought a message of that symbol. The other connection's copies are
counted (``book_ignored``) and left out of the book (the latest are kept aside, the
other connection's *tail*), so the book never sees a stream twice. When the source
ends while another connection that brought book messages is still open, the book
moves to that one (a ``book_events`` row, ``source connection lost`` or ``… (handed
over)``) and goes on there where the venue's rule proves the new stream continues it
(``rtkit.books.connections``: Binance, Bybit, OKX by their sequence; Kraken, Coinbase
from that connection's own snapshot): no resync, no REST request, the book stays
live, and a message that does not continue it is a desync. Where nothing proves it
(Bitstamp), it resyncs from the other connection (:meth:`BookMachine.switch_source`),
its resubscribe sent there (:meth:`take_resubscribes_by_connection`). A handover
closes the old connection once the new one's books overlap (:meth:`books_overlap`).
Messages fed without a connection (a replay, a unit test) all go to the books.

A lock guards the machines, so a notebook's ``c.book(...)`` reads a whole book.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

from rtkit.books import BookMessage, ContinuityRule, Step
from rtkit.books.answers import RecordedAnswers
from rtkit.books.connections import KeeperConnections
from rtkit.books.levels import DEFAULT_MAX_LEVELS, LocalBook
from rtkit.books.machine import BookMachine

log = logging.getLogger("rtkit")

#: seconds between two audits of an ``unverified`` book against a REST snapshot
DEFAULT_AUDIT_EVERY_S = 60.0
#: seconds before a failed snapshot request is asked again (doubling per failure)
RETRY_S = 1.0
RETRY_MAX_S = 30.0
#: seconds after which a snapshot without the venue's time is compared (the stream has had
#: that long to bring what it holds; a difference is then confirmed by a second audit)
AUDIT_SETTLE_S = 2.0
#: seconds an audit's snapshot waits for a stream that keeps coming but stays behind it
#: (the receiver lags the venue): then the audit is void, and asked at the next period
AUDIT_GIVE_UP_S = 30.0
#: worker threads fetching snapshots (the REST client's budget paces them further)
FETCH_WORKERS = 2

Fetch = Callable[[str], BookMessage]


class BookKeeper(KeeperConnections, RecordedAnswers):
    """The books of ``symbols`` on one venue, kept by ``make_rule()`` each."""

    def __init__(self, venue: str, symbols: Iterable[str], make_rule: Callable[[], ContinuityRule],
                 *, fetch: Fetch | None = None, max_levels: int | None = DEFAULT_MAX_LEVELS,
                 derive_quotes: bool = False, audit_every_s: float = DEFAULT_AUDIT_EVERY_S,
                 clock: Callable[[], int] = time.time_ns, replaying: bool = False) -> None:
        self.venue = venue
        self._make_rule, self._fetch, self._clock = make_rule, fetch, clock
        self._max_levels, self._derive_quotes = max_levels, derive_quotes
        self.audit_every_ns = int(audit_every_s * 1e9)
        self.machines: dict[str, BookMachine] = {}
        self._lock = threading.Lock()
        self._answers: queue.SimpleQueue = queue.SimpleQueue()  # (symbol, purpose, msg, error)
        self._asked: set[str] = set()  # symbols with a request in flight
        self._retry: dict[str, tuple[int, float, str]] = {}  # symbol → (due ns, delay, purpose)
        self._next_audit: dict[str, int] = {}
        #: symbol → the machine's token of the audit asked (``BookMachine.audit_asked``)
        self._audit_tokens: dict[str, int] = {}
        #: symbol → (snapshot, token, ns it came back): audits waiting for the stream
        self._audit_answers: dict[str, tuple[BookMessage, int, int]] = {}
        self._resubscribe: list[str] = []
        self._init_connections()
        self._pool: ThreadPoolExecutor | None = None
        self.snapshot_requests = 0
        self.snapshot_failures = 0
        self.last_fetch_error = ""
        #: a replay's keeper: its requests are answered by the recording (``give_answer``)
        self.replaying = replaying
        #: a replay's requests no answer has come to yet: symbol → (ns asked, purpose)
        self.unanswered: dict[str, tuple[int, str]] = {}
        self._recorder = None  # the run's RecordingWriter (``record_to``)
        #: ns the books were made (the start of every book's first ``not_live_s``)
        self.started_at = clock()
        for symbol in symbols:
            self._machine(symbol, self.started_at)

    def _machine(self, symbol: str, started_at: int | None = None) -> BookMachine:
        machine = self.machines.get(symbol)
        if machine is None:
            machine = self.machines[symbol] = BookMachine(
                self.venue, symbol, self._make_rule(), max_levels=self._max_levels,
                derive_quotes=self._derive_quotes,
                started_at=self._clock() if started_at is None else started_at)
        return machine

    def record_to(self, recorder) -> None:
        """Write to ``recorder`` (a ``RecordingWriter``, used on the receive thread) the
        books' start and, from now on, every snapshot asked and every answer taken."""
        self._recorder = recorder
        recorder.books(self.started_at, self.venue, list(self.machines),
                       self._max_levels, self._derive_quotes, self.audit_every_ns,
                       self._fetch is not None)

    # --- the receive thread ------------------------------------------------------------
    def feed(self, messages: list[BookMessage]) -> Step:
        """The book messages of one frame (or batch): the rows they make."""
        out = Step()
        machines = self.machines
        with self._lock:
            for msg in messages:
                machine = machines.get(msg.symbol) or self._machine(msg.symbol)
                machine.feed(msg, out)  # its rows straight into out
                if out.action is not None:
                    self._act(out.action, msg.symbol)
                    out.action = None
        return out

    def poll(self, now: int | None = None) -> Step:
        """Snapshots that came back, retries and audits that are due: their rows."""
        now = self._clock() if now is None else now
        out = Step()
        if self._recorder is not None and self._fetch is not None:
            # a poll between reads (retries, audits, answers are due by the clock): its
            # moment, so that a replay polls then too (one after a read has its frames' time)
            self._recorder.book_poll(now, self.venue)
        with self._lock:
            while True:
                try:
                    symbol, purpose, msg, error = self._answers.get_nowait()
                except queue.Empty:
                    break
                self._taken(out, symbol, purpose, msg, error, now)
            self._compare_audits(out, now)
            for symbol, (due, _, purpose) in list(self._retry.items()):
                if due <= now and symbol not in self._asked:
                    self._ask(symbol, purpose)
            if self.audit_every_ns > 0 and self._fetch is not None:
                for symbol, machine in self.machines.items():
                    if machine.state != "unverified":
                        continue
                    due = self._next_audit.setdefault(symbol, now + self.audit_every_ns)
                    if due <= now and symbol not in self._asked \
                            and symbol not in self._audit_answers:
                        self._next_audit[symbol] = now + self.audit_every_ns
                        self._ask(symbol, "audit")
        return out

    def _compare_audits(self, out: Step, now: int) -> None:
        """Audits whose snapshot the stream has passed (or that waited long enough)."""
        settle, give_up = int(AUDIT_SETTLE_S * 1e9), int(AUDIT_GIVE_UP_S * 1e9)
        for symbol, (snap, token, came) in list(self._audit_answers.items()):
            machine = self.machines[symbol]
            timed = snap.timestamp > 0  # 0: the venue did not say when it was taken
            if timed and machine.stream_at >= snap.timestamp or \
                    not timed and now - came >= settle:
                del self._audit_answers[symbol]
                self._merge(out, machine.audit(snap, token, confirm=not timed), symbol, "audit")
                if machine.recheck:  # a suspect to confirm: the next audit now
                    machine.recheck = False
                    self._next_audit[symbol] = now
            elif now - came >= give_up:
                del self._audit_answers[symbol]
                machine.audit_given_up()

    def _taken(self, out: Step, symbol: str, purpose: str, msg: BookMessage | None, error: str,
               now: int) -> None:
        """An answer to a snapshot request (``msg``, or None and why it failed), taken at
        ``now`` between two frames: its rows into ``out``; written to the recording."""
        if self._recorder is not None:
            self._recorder.rest_answer(now, self.venue, symbol, purpose, msg, error)
        self._asked.discard(symbol)
        self.unanswered.pop(symbol, None)
        machine = self.machines[symbol]
        if msg is None:
            self.snapshot_failures += 1
            self.last_fetch_error = error
            delay = min(RETRY_MAX_S, self._retry.get(symbol, (0, RETRY_S / 2, ""))[1] * 2)
            self._retry[symbol] = (now + int(delay * 1e9), delay, purpose)
            # in the book's health record: the state stays, the reason says why
            machine._event(out, machine.state, machine.state, now,
                           f"{purpose} snapshot request failed ({error}); asked again "
                           f"in {delay:g} s", None)
            return
        self._retry.pop(symbol, None)
        if purpose == "audit":  # compared once the stream has passed it (_compare_audits)
            self._audit_answers[symbol] = (msg, self._audit_tokens.pop(symbol, -1), now)
            return
        self._merge(out, machine.snapshot(msg), symbol, purpose)

    def take_resubscribes(self) -> list[str]:
        """Symbols whose book asked to be subscribed again (for the receiver)."""
        with self._lock:
            symbols, self._resubscribe = self._resubscribe, []
        return symbols

    def _merge(self, out: Step, step: Step, symbol: str, purpose: str) -> None:
        out.deltas += step.deltas
        out.events += step.events
        out.quotes += step.quotes
        if step.action is not None:
            self._act(step.action, symbol)

    def _act(self, action: str, symbol: str) -> None:
        if action == "fetch_snapshot":
            if symbol not in self._asked:
                self._ask(symbol, "resync")
        elif action == "resubscribe" and symbol not in self._resubscribe:
            self._resubscribe.append(symbol)

    def _ask(self, symbol: str, purpose: str) -> None:
        """Fetch ``symbol``'s snapshot on a worker thread (the answer waits for ``poll``)."""
        if self._recorder is not None:
            self._recorder.rest_request(self._clock(), self.venue, symbol, purpose)
        fetch = self._fetch
        if purpose == "audit":  # from now on, the levels the stream sets are moot
            self._audit_tokens[symbol] = self.machines[symbol].audit_asked()
        if self.replaying:  # the recording answers (give_answer), or says it cannot
            self._asked.add(symbol)
            self.snapshot_requests += 1
            self.unanswered[symbol] = (self._clock(), purpose)
            return
        if fetch is None:
            self.last_fetch_error = (f"{self.venue} books need a REST snapshot but no fetch was "
                                     "given")
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(FETCH_WORKERS, thread_name_prefix="rtkit-book")
        self._asked.add(symbol)
        self.snapshot_requests += 1
        answers = self._answers

        def run() -> None:
            try:
                answers.put((symbol, purpose, fetch(symbol), ""))
            except Exception as exc:  # the REST client's failure: retried, never fatal
                answers.put((symbol, purpose, None, f"{type(exc).__name__}: {exc}"))

        self._pool.submit(run)

    def close(self) -> None:
        """Stop the fetch workers (requests in flight are cut short where the fetch can
        be closed: ``rtkit.venues.book_fetch``)."""
        if (close_fetch := getattr(self._fetch, "close", None)) is not None:
            close_fetch()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    # --- any thread ----------------------------------------------------------------------
    def read(self, symbol: str, reader: Callable[[LocalBook], object]):
        """``reader(book)`` under the lock: a whole book, never half a message."""
        with self._lock:
            machine = self.machines.get(symbol)
            if machine is None:
                raise KeyError(symbol)
            return reader(machine.book)

    def state(self, symbol: str) -> tuple[str, int]:
        """``(state, since ns)`` of ``symbol``'s book."""
        with self._lock:
            machine = self.machines[symbol]
            return machine.state, machine.since

    def stats(self) -> dict[str, int]:
        with self._lock:
            machines = list(self.machines.values())
            return {
                "book_messages": sum(m.messages for m in machines),
                "book_desyncs": sum(m.desyncs for m in machines),
                "book_resyncs": sum(m.resyncs for m in machines),
                "books_good": sum(m.state == m.good for m in machines),
                "book_snapshot_requests": self.snapshot_requests,
                "book_snapshot_failures": self.snapshot_failures,
                "book_audits": sum(m.audits for m in machines),
                "book_audits_void": sum(m.audits_void for m in machines),
                "book_ignored": self.sources.ignored,
                # messages dropped from a full buffer while a snapshot was awaited
                "book_buffer_overflow": sum(m.buffer_overflow for m in machines),
                "book_source_switches": self.sources.switches,
            }


def keeper_for(adapter, symbols: Iterable[str], *, fetch: Fetch | None = None,
               audit_every_s: float = DEFAULT_AUDIT_EVERY_S) -> BookKeeper:
    """The keeper of ``adapter``'s books: its venue's rule (``adapter.book_rule`` or its
    name), its depth cap, quotes derived where it has no BBO channel."""
    from rtkit.books.rules import rule_for

    venue_rule = adapter.book_rule or adapter.name
    rule_for(venue_rule)  # a venue without a rule fails now, with the venues that have one
    return BookKeeper(adapter.name, symbols, lambda: rule_for(venue_rule), fetch=fetch,
                      max_levels=adapter.book_max_levels() or DEFAULT_MAX_LEVELS,
                      derive_quotes=not adapter.quotes_channel, audit_every_s=audit_every_s)


def books_of(adapter, symbols: Iterable[str], kinds: tuple[str, ...],
             audit_every_s: float = DEFAULT_AUDIT_EVERY_S,
             rest_url: str | None = None) -> BookKeeper | None:
    """A collector's keeper when it collects ``book`` (REST snapshots through the
    adapter's ``book_snapshot_fetch``, at ``rest_url`` or the venue's API), else None."""
    if "book" not in kinds:
        return None
    return keeper_for(adapter, symbols, fetch=adapter.book_snapshot_fetch(rest_url),
                      audit_every_s=audit_every_s)
