"""Backfill: the trades a gap is missing, fetched from the venue's REST history and fed
through the same checks into the ring and every sink, exactly once.

A :class:`Backfiller` is a third thread of a collector (started and ended with it):
it claims the oldest ``pending`` row of the ``gaps`` ledger (:class:`rtkit.gaps.GapLedger`,
over its own SQLite connection), fetches the missing ids a page at a time
(:func:`rtkit.rest.history.fetch_trades`, within the venue's shared REST budget), and
hands each page to the pipeline (:meth:`rtkit.pipeline_ids.IdChecks.accept_backfill`,
under the pipeline's batch lock, as one more batch of the receive path: the id checks
drop what came live meanwhile). Its ``received_at`` is when the page was fetched. Once
the writer has stored them, the gap is finished: ``filled``, ``partial`` (capped by
``backfill_max``, or the venue no longer has them) or ``unfillable`` (418, 429 past the
retries, a venue that kept failing), with the count; ``stats`` ``backfilled`` and
``gaps_open`` move. A venue that fails for a while (a 5xx, no answer, no connection)
does not end a gap: it stays ``pending`` and is tried again after a doubling wait
(``RETRY_INITIAL_S`` up to ``RETRY_MAX_S``) while the other gaps are filled; ``stats``
``backfill_retry_waiting`` counts the gaps waiting so.

Binance spot's ``aggTrade`` channel carries aggregate ids (``a``): its gaps are filled
from ``aggTrades`` by ``fromId``, its ``trade`` channel's from ``historicalTrades``.

A recording gets each page as a ``rest_trades`` event (:mod:`rtkit.recording`), so a
replay feeds the same trades at the same place (:mod:`rtkit.replay`).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rtkit.gaps import FILLABLE_VENUES, Gap, GapLedger
from rtkit.validate import BUY, SELL, UNKNOWN_SIDE, Reject, epoch_ns, positive, whole_number

if TYPE_CHECKING:
    from rtkit.pipeline import Pipeline
    from rtkit.rest.client import RestClient

log = logging.getLogger("rtkit")

#: trades one gap is filled with at most; a larger gap is filled up to it and ``partial``
DEFAULT_BACKFILL_MAX = 50_000
#: seconds between two looks at the ledger for a pending gap
POLL_S = 0.2
#: how far before the frame that preceded a gap a fill by time starts (Kraken ``since``,
#: Coinbase Advanced Trade's window): the venue's clock and the network's delay
HINT_SLACK_NS = 10 * 10**9
#: seconds a backfill request may take (a page of history is small): a request in flight
#: cannot be cut short, so after ``stop()`` the thread ends within this, then gives its gap
#: back to the ledger
TIMEOUT_S = 5.0
#: pages of trades one fill call walks on a venue paged by time (Kraken ``since``) before
#: they are fed; the next call goes on from the venue's cursor
SINCE_PAGES = 10
#: seconds a fill waits for the writer to store its trades before it gives the gap back
STORE_WAIT_S = 30.0
#: why a gap is left partial or unfillable
OLDER_THAN_KEPT = "older than the venue keeps"
OVER_MAX = "larger than backfill_max"
KEPT_FAILING = "venue kept failing"
#: seconds before a gap whose venue failed for a while (a 5xx, no answer within TIMEOUT_S,
#: a refused or dropped connection) is tried again; the wait doubles at each failure in a
#: row, up to RETRY_MAX_S. Meanwhile the gap stays ``pending`` (claimed: no other
#: backfiller takes it) and the thread fills the other gaps
RETRY_INITIAL_S = 1.0
RETRY_MAX_S = 60.0
#: a gap ends (``unfillable``, or ``partial`` with what came; why ``venue kept failing:
#: <last error>``) after this many failures in a row, or once it has kept failing this
#: long: with the doublings above, 1+2+4+…+60 s ≈ 2 min of trying, well under the
#: ledger's stale claim (300 s), after which another backfiller could take it over
RETRY_ATTEMPTS = 8
RETRY_MAX_AGE_S = 180.0


@dataclass
class Progress:
    """Where the fill of one gap stands: the next id to ask for, the trades fetched and fed,
    the time cursor (Kraken ``since``) and the writer's queue mark; for a gap waiting for
    a retry, the failures in a row, since when, when it is tried again, and the last error."""

    cursor: int
    since_ns: int
    #: Kraken: the venue's own cursor to go on from (None: not asked yet)
    since_cursor: int | None = None
    fetched: int = 0
    mark: int | None = None
    failures: int = 0
    failing_since: float = 0.0
    retry_at: float = 0.0
    error: str = ""


def transient(exc: BaseException) -> bool:
    """True for a failure that says nothing about the gap (a 5xx, no answer, no connection):
    worth trying again later. 429 (``RateLimited``) and 418 (``Banned``) have their own
    handling; a 4xx or an answer not understood would fail the same way again."""
    from rtkit.rest.budget import Banned, RestError
    from rtkit.rest.client import RateLimited

    if isinstance(exc, Banned | RateLimited) or not isinstance(exc, RestError):
        return False
    return exc.status == 0 or exc.status >= 500


class Retries:
    """The gaps a backfiller holds back after their venue failed, each until its doubling
    wait is over (``initial_s`` … ``max_s``); a gap that failed ``attempts`` times in a
    row, or for ``max_age_s``, is not held back again. Read from any thread (``stats``)."""

    def __init__(self) -> None:
        self.initial_s = RETRY_INITIAL_S
        self.max_s = RETRY_MAX_S
        self.attempts = RETRY_ATTEMPTS
        self.max_age_s = RETRY_MAX_AGE_S
        self._waiting: dict[int, tuple[Gap, Progress]] = {}  # id → (gap, progress)
        self._lock = threading.Lock()
        self.count = 0  # retries scheduled so far

    def hold(self, gap: Gap, progress: Progress, exc: BaseException) -> float | None:
        """One more failure of ``gap``: the seconds it now waits, or None when it has failed
        too often or too long (the caller ends it)."""
        now = time.monotonic()
        if progress.failures == 0:
            progress.failing_since = now
        progress.failures += 1
        progress.error = " ".join(str(exc).split())[:300]
        if progress.failures >= self.attempts or now - progress.failing_since >= self.max_age_s:
            return None
        wait = min(self.initial_s * 2 ** (progress.failures - 1), self.max_s)
        progress.retry_at = now + wait
        with self._lock:
            self._waiting[gap.id] = (gap, progress)
        self.count += 1
        return wait

    def due(self) -> tuple[Gap, Progress] | None:
        """The gap whose wait ended first, no longer held; None when none is due."""
        now = time.monotonic()
        with self._lock:
            due = [w for w in self._waiting.values() if w[1].retry_at <= now]
            if not due:
                return None
            gap, progress = min(due, key=lambda w: w[1].retry_at)
            del self._waiting[gap.id]
            return gap, progress

    def drop(self, gap_id: int | None = None) -> list[int]:
        """Stop holding ``gap_id`` (None: every gap); the ids dropped."""
        with self._lock:
            ids = list(self._waiting) if gap_id is None else [gap_id]
            return [i for i in ids if self._waiting.pop(i, None) is not None]

    def snapshot(self) -> dict[str, Any]:
        """The gaps waiting, the seconds until the next retry, the retries so far."""
        now = time.monotonic()
        with self._lock:
            waits = [p.retry_at - now for _, p in self._waiting.values()]
        return {"backfill_retry_waiting": len(waits),
                "backfill_next_retry_s": round(max(min(waits), 0.0), 3) if waits else None,
                "backfill_retries": self.count}


def rest_ticks(adapter: Any, symbol: str, trades) -> tuple[list[tuple], list[Reject]]:
    """REST trades (``RestTrade`` or ``[id, ts_ns, price, size, side]``) as the ring's ticks
    ``(symbol, id, ts_ns, price, volume, side)``, checked as a frame's values are; OKX
    contract sizes become base units (``rtkit.instruments``). Bad ones are rejects."""
    contracts = getattr(adapter, "contracts", None) or {}
    contract = contracts.get(symbol)
    ticks, rejects = [], []
    for trade_id, ts_ns, price_text, size_text, side in trades:
        try:
            if type(trade_id) is not int or type(ts_ns) is not int:
                raise Reject("bad_number", f"id {trade_id!r:.40}, time {ts_ns!r:.40}")
            whole_number(trade_id, "id")  # the ring's int64 column, as a frame's id
            epoch_ns(ts_ns, "ns")  # 2000..2100, as a frame's time
            price = positive(price_text, "price")
            volume = positive(size_text, "size")
            if contract is not None:
                # in a stored volume's range, as a frame's (``okx._base_units``)
                volume = positive(contract.base_volume(volume, price), "size in base units")
        except Reject as reject:
            rejects.append(reject)
            continue
        code = BUY if side == "buy" else SELL if side == "sell" else UNKNOWN_SIDE
        ticks.append((symbol, trade_id, ts_ns, price, volume, code))
    return ticks, rejects


def can_backfill(adapter: Any) -> str:
    """Why gaps of this adapter cannot be filled, or "" when they can."""
    if adapter.name not in FILLABLE_VENUES:
        return f"{adapter.name} cannot fill by id"
    return ""


def aggregate_ids(adapter: Any) -> bool:
    """True when the adapter's trade ids are Binance spot aggregate ids (its ``aggTrade``
    channel's ``a``): their gaps are filled from ``aggTrades``, not ``historicalTrades``."""
    return adapter.name == "binance" and getattr(adapter, "channel", "trade") == "aggTrade"


class Backfiller:
    """The body of a collector's backfill thread (``run``), and what it did.

    ``writing()`` says whether the writer still runs (a fill waits for its trades to be
    stored); ``recorder()`` is the run's recording writer, or None.
    """

    def __init__(self, pipeline: Pipeline, db: str | Path, rest_url: str | None, *,
                 max_trades: int, stop: threading.Event,
                 writing: Callable[[], bool] = lambda: True,
                 recorder: Callable[[], Any] = lambda: None, poll_s: float = POLL_S) -> None:
        self.pipeline = pipeline
        self.venue = pipeline.venue
        self.db = Path(db)
        self.rest_url = rest_url
        self.max_trades = max_trades
        self.stop = stop
        self.writing = writing
        self.recorder = recorder
        self.poll_s = poll_s
        self.client: RestClient | None = None
        #: gaps waiting for a retry after their venue failed (still claimed by this thread)
        self.retries = Retries()
        #: what the thread did: gaps finished, trades fetched, the last problem in words
        self.gaps_finished = 0
        self.fetched = 0
        self.problem = ""
        #: gaps seen before (an earlier run's, taken up from the file) are not this run's
        #: ``gaps_open``: filling them leaves that count alone
        self.started_ns = time.time_ns()

    # --- the thread ----------------------------------------------------------------------
    def run(self) -> None:
        conn = sqlite3.connect(self.db, timeout=10.0, check_same_thread=False)
        ledger = GapLedger(conn, recorder=self.recorder)  # a replay ends gaps alike
        try:
            while not self.stop.wait(self.poll_s):
                while not self.stop.is_set():
                    work = self._next(ledger)
                    if work is None:
                        break
                    gap, progress = work
                    try:
                        self._fill(ledger, gap, progress)
                    except BaseException:
                        self.retries.drop(gap.id)
                        ledger.release(gap.id)  # a later run (or claim) takes it up again
                        if self.stop.is_set():  # the client closed under a request: stopped
                            return
                        raise
        except Exception as exc:  # a bug here must not go unseen, nor kill the process
            self.problem = f"{type(exc).__name__}: {exc}"
            log.exception("rtkit: %s backfill stopped", self.venue)
        finally:
            for gap_id in self.retries.drop():  # the next run takes them up again
                # if the database refuses, it stays claimed: taken up once the claim is stale
                with contextlib.suppress(sqlite3.Error):
                    ledger.release(gap_id)
            if self.client is not None:
                self.client.close()
            conn.close()

    def _rest(self) -> RestClient:
        """The venue's REST client, made when the first gap is filled: importing httpx
        and loading the CA bundle take ~60 ms of the interpreter lock, which at the
        collector's start made the receive thread's first ticks wait up to 10 ms."""
        if self.client is None:
            from rtkit.rest.client import RestClient

            # a 5xx or a timeout comes straight back here: the gap waits (RETRY_INITIAL_S…)
            # while the others are filled, rather than the client retrying it at once
            self.client = RestClient(self.venue, self.rest_url, timeout_s=TIMEOUT_S,
                                     retry_transient=False)
            if self.stop.is_set():  # abort() looked before it was there: close it here
                self.client.close()
        return self.client

    def _next(self, ledger: GapLedger) -> tuple[Gap, Progress | None] | None:
        """The gap to work on now: a waiting one whose retry is due, else the oldest
        pending one nobody has claimed; None when there is none."""
        due = self.retries.due()
        if due is not None:
            return due
        try:
            claimed = ledger.claim(self.venue)
        except sqlite3.Error:  # no gaps table yet, or the writer holds the lock
            return None
        return None if claimed is None else (claimed, None)

    def _hold(self, ledger: GapLedger, gap: Gap, progress: Progress,
              exc: BaseException) -> bool:
        """The venue failed on ``gap``: keep it claimed and ``pending``, to be tried again
        after the next doubling wait; False when it has failed too often or too long."""
        wait = self.retries.hold(gap, progress, exc)
        if wait is None:
            return False
        # the claim is renewed: no other backfiller takes the gap over while it waits
        with contextlib.suppress(sqlite3.Error), ledger.conn:
            ledger.conn.execute("UPDATE gaps SET claimed_at = ? WHERE id = ? AND "
                                "status = 'pending'", (time.time_ns(), gap.id))
        self.problem = (f"{gap.symbol} gap {gap.first_missing}..{gap.last_missing}: "
                        f"{progress.error}; retry {progress.failures} in {wait:g} s")
        log.warning("rtkit: %s backfill: %s", self.venue, self.problem)
        return True

    def snapshot(self) -> dict[str, Any]:
        """What ``stats`` shows of the backfill: gaps waiting for a retry after the venue
        failed, the seconds until the next one, the retries so far and the last problem."""
        return {**self.retries.snapshot(), "backfill_problem": self.problem}

    def abort(self) -> None:
        """Cut a request or a retry pause short (the collector stops): the gap being
        filled goes back to the ledger, for a later run."""
        if self.client is not None:
            self.client.close()

    def _fill(self, ledger: GapLedger, gap: Gap, progress: Progress | None = None) -> None:
        """Fill ``gap`` (from where ``progress`` left it, after a retry wait), then finish
        it in the ledger, or leave it waiting for a retry, or give it back (stopped)."""
        from rtkit.rest.budget import Banned, RestError
        from rtkit.rest.client import RateLimited
        from rtkit.rest.history import CannotFill, fetch_trades, since_pages

        if gap.first_missing is None or gap.last_missing is None:
            ledger.finish(gap.id, "unfillable", 0, "no id range to fill")
            return
        if why := can_backfill(self.pipeline.adapter):
            ledger.finish(gap.id, "unfillable", 0, why)
            return
        client = self._rest()  # made only for a gap that asks the venue something
        first, last = int(gap.first_missing), int(gap.last_missing)
        until = min(last, first + self.max_trades - 1)
        if progress is None:
            hint = self.pipeline.gap_hints.get((gap.symbol, first), gap.seen_at)
            progress = Progress(first, max(1, hint - HINT_SLACK_NS))
        until_ns = gap.seen_at + HINT_SLACK_NS
        paging = client.spec.paging
        agg = aggregate_ids(self.pipeline.adapter)
        # a page at a time (fed as it comes, stop() heard between two); Kraken walks
        # SINCE_PAGES pages a call, on from the venue's own cursor
        chunk = until - first + 1 if paging in ("window", "since") else \
            client.spec.page_size
        problem = ""
        while progress.cursor <= until:
            if self.stop.is_set():
                ledger.release(gap.id)  # a later run takes it up again
                return
            top = min(until, progress.cursor + chunk - 1)
            if not self._room(gap.symbol, agg):
                ledger.release(gap.id)
                return
            since_next = None
            try:
                if paging == "since":
                    if progress.since_cursor is None:  # trades after it: keep the hint's
                        progress.since_cursor = progress.since_ns - 1
                    trades, since_next = since_pages(client, gap.symbol, progress.cursor,
                                                     top, progress.since_cursor, SINCE_PAGES)
                else:
                    trades = fetch_trades(client, gap.symbol, progress.cursor, top,
                                          since_ns=progress.since_ns, until_ns=until_ns,
                                          agg=agg)
            except CannotFill as exc:
                problem = str(exc)
                break
            except Banned as exc:
                problem = f"budget exhausted: {exc}"
                break
            except RateLimited as exc:
                problem = f"budget exhausted: {exc}"
                break
            except (RestError, ValueError) as exc:
                if self.stop.is_set():  # cut short by stop(): not the venue's answer
                    ledger.release(gap.id)
                    return
                if not transient(exc):
                    problem = f"REST history failed: {exc}"
                    break
                if self._hold(ledger, gap, progress, exc):
                    return  # still pending: tried again after the wait
                problem = f"{KEPT_FAILING} ({progress.failures} times): {progress.error}"
                break
            if self.stop.is_set():  # the writer may have had its last flush: feed nothing
                ledger.release(gap.id)
                return
            progress.failures = 0  # the venue answered: a later failure starts afresh
            if trades:
                progress.mark = self._feed(gap.symbol, trades)
                progress.fetched += len(trades)
                progress.since_ns = trades[-1].ts_ns
            if since_next is not None:  # Kraken, more to ask: on from its cursor
                progress.since_cursor = since_next
                if trades:
                    progress.cursor = trades[-1].trade_id + 1
            else:
                progress.cursor = top + 1
        fetched = progress.fetched
        if progress.mark is not None and not self._stored(progress.mark):
            ledger.release(gap.id)
            return
        status, reason = _verdict(last - first + 1, until - first + 1, fetched, problem,
                                  self.max_trades)
        ledger.finish(gap.id, status, fetched, reason)
        with self.pipeline._counting:
            self.pipeline.gap_closed(fetched, own=gap.seen_at >= self.started_ns)
        self.gaps_finished += 1
        self.fetched += fetched
        if problem:
            self.problem = problem
            log.warning("rtkit: %s %s: gap %s..%s %s: %s", self.venue, gap.symbol, first, last,
                        status, problem)

    def _room(self, symbol: str, agg: bool = False) -> bool:
        """Wait, until ``stop``, for the shared budget to have room for a page (the
        client's own wait cannot be cut short): exactly as long as the budget says, so a
        page goes out as soon as it may; False when stopped first."""
        assert self.client is not None
        budget = self.client.budget
        page = self.client.spec.trades(symbol, **({"agg": True} if agg else {}))  # type: ignore[misc]
        while (wait := budget.room_in(page.weight)) > 0:
            if self.stop.wait(wait):
                return False
        return not self.stop.is_set()

    def _feed(self, symbol: str, trades) -> int:
        """One page into the pipeline (and the recording); the queue mark that says when
        the writer has stored it."""
        at = time.time_ns()
        rows = [tuple(t) for t in trades]
        recorder = self.recorder()
        pipeline = self.pipeline
        if recorder is not None:
            recorder.rest_trades(at, self.venue, symbol, rows)
        feed_rest_trades(pipeline, symbol, rows, at)
        return pipeline.queued

    def _stored(self, mark: int) -> bool:
        """Wait until the writer has stored the queue up to ``mark`` (or it ended)."""
        p = self.pipeline
        deadline = time.monotonic() + STORE_WAIT_S
        idle = threading.Event()
        while p.stored + p.duplicates + p.unstorable < mark:
            if time.monotonic() > deadline or (self.stop.is_set() and not self.writing()):
                return p.stored + p.duplicates + p.unstorable >= mark
            idle.wait(0.02)
        return True


def feed_rest_trades(pipeline: Pipeline, symbol: str, rows, received_at_ns: int) -> int:
    """REST trade rows ``[id, ts_ns, price, size, side]`` of ``symbol`` through the checks
    into ``pipeline`` (a live backfill's page, or a replayed ``rest_trades`` event);
    returns the ticks kept."""
    ticks, rejects = rest_ticks(pipeline.adapter, symbol, rows)
    return pipeline.accept_backfill(ticks, received_at_ns, rejects,
                                    f"REST trades of {symbol}")


def _verdict(missing: int, asked: int, fetched: int, problem: str,
             max_trades: int) -> tuple[str, str | None]:
    """The ledger status and why, of a gap of ``missing`` ids of which ``asked`` were asked
    for (``backfill_max``) and ``fetched`` came."""
    if fetched == missing:
        return "filled", None
    why: str
    if problem:
        why = problem
    elif fetched < asked:
        why = f"{OLDER_THAN_KEPT}: {asked - fetched:,} of {missing:,} ids not returned"
    else:
        why = (f"{OVER_MAX} ({max_trades:,}): the first {asked:,} of {missing:,} ids "
               "filled")
    return ("partial" if fetched else "unfillable"), why[:500]
