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
retries, no answer), with the count; ``stats`` ``backfilled`` and ``gaps_open`` move.

A recording gets each page as a ``rest_trades`` event (:mod:`rtkit.recording`), so a
replay feeds the same trades at the same place (:mod:`rtkit.replay`).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
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
#: pages of trades one fill call walks on a venue paged by time (Kraken ``since``): each
#: call starts a page back, so more pages a call spend fewer requests per trade
SINCE_PAGES = 10
#: seconds a fill waits for the writer to store its trades before it gives the gap back
STORE_WAIT_S = 30.0
#: why a gap is left partial or unfillable
OLDER_THAN_KEPT = "older than the venue keeps"
OVER_MAX = "larger than backfill_max"
AGG_TRADES = ("binance trades collected on the aggTrade channel cannot be filled by "
              "historicalTrades ids")


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
    if adapter.name == "binance" and getattr(adapter, "channel", "trade") == "aggTrade":
        return AGG_TRADES
    return ""


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
        #: what the thread did: gaps finished, trades fetched, the last problem in words
        self.gaps_finished = 0
        self.fetched = 0
        self.problem = ""

    # --- the thread ----------------------------------------------------------------------
    def run(self) -> None:
        from rtkit.rest.client import RestClient  # httpx loads only where a backfill runs

        self.client = RestClient(self.venue, self.rest_url, timeout_s=TIMEOUT_S)
        conn = sqlite3.connect(self.db, timeout=10.0, check_same_thread=False)
        try:
            ledger = GapLedger(conn)
            while not self.stop.wait(self.poll_s):
                try:
                    gap = ledger.claim(self.venue)
                except sqlite3.Error:  # no gaps table yet, or the writer holds the lock
                    continue
                while gap is not None and not self.stop.is_set():
                    try:
                        self._fill(ledger, gap)
                    except BaseException:
                        ledger.release(gap.id)  # a later run (or claim) takes it up again
                        if self.stop.is_set():  # the client closed under a request: stopped
                            return
                        raise
                    gap = None if self.stop.is_set() else ledger.claim(self.venue)
        except Exception as exc:  # a bug here must not go unseen, nor kill the process
            self.problem = f"{type(exc).__name__}: {exc}"
            log.exception("rtkit: %s backfill stopped", self.venue)
        finally:
            self.client.close()
            conn.close()

    def abort(self) -> None:
        """Cut a request or a retry pause short (the collector stops): the gap being
        filled goes back to the ledger, for a later run."""
        if self.client is not None:
            self.client.close()

    def _fill(self, ledger: GapLedger, gap: Gap) -> None:
        from rtkit.rest.budget import Banned, RestError
        from rtkit.rest.client import RateLimited
        from rtkit.rest.history import CannotFill, fetch_trades

        assert self.client is not None
        if gap.first_missing is None or gap.last_missing is None:
            ledger.finish(gap.id, "unfillable", 0, "no id range to fill")
            return
        if why := can_backfill(self.pipeline.adapter):
            ledger.finish(gap.id, "unfillable", 0, why)
            return
        first, last = int(gap.first_missing), int(gap.last_missing)
        until = min(last, first + self.max_trades - 1)
        hint = self.pipeline.gap_hints.get((gap.symbol, first), gap.seen_at)
        since_ns = max(1, hint - HINT_SLACK_NS)
        until_ns = gap.seen_at + HINT_SLACK_NS
        paging = self.client.spec.paging
        # a page at a time (fed as it comes, stop() heard between two); Kraken's ``since``
        # re-reads the page it starts in, so it walks SINCE_PAGES pages a call
        chunk = until - first + 1 if paging == "window" else self.client.spec.page_size * (
            SINCE_PAGES if paging == "since" else 1)
        fetched, mark, problem = 0, None, ""
        cursor = first
        while cursor <= until:
            if self.stop.is_set():
                ledger.release(gap.id)  # a later run takes it up again
                return
            top = min(until, cursor + chunk - 1)
            if not self._room(gap.symbol):
                ledger.release(gap.id)
                return
            try:
                trades = fetch_trades(self.client, gap.symbol, cursor, top, since_ns=since_ns,
                                      until_ns=until_ns)
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
                problem = f"REST history failed: {exc}"
                break
            if self.stop.is_set():  # the writer may have had its last flush: feed nothing
                ledger.release(gap.id)
                return
            if trades:
                mark = self._feed(gap.symbol, trades)
                fetched += len(trades)
                since_ns = trades[-1].ts_ns
            cursor = top + 1
        if mark is not None and not self._stored(mark):
            ledger.release(gap.id)
            return
        status, reason = _verdict(last - first + 1, until - first + 1, fetched, problem,
                               self.max_trades)
        ledger.finish(gap.id, status, fetched, reason)
        with self.pipeline._counting:
            self.pipeline.gap_closed(fetched)
        self.gaps_finished += 1
        self.fetched += fetched
        if problem:
            self.problem = problem
            log.warning("rtkit: %s %s: gap %s..%s %s: %s", self.venue, gap.symbol, first, last,
                        status, problem)

    def _room(self, symbol: str) -> bool:
        """Wait, until ``stop``, for the shared budget to have room for a page (the
        client's own wait cannot be cut short); False when stopped first."""
        assert self.client is not None
        budget = self.client.budget
        weight = self.client.spec.trades(symbol).weight  # type: ignore[misc]
        while budget.used() + weight > budget.capacity and not budget.banned:
            if self.stop.wait(0.05):
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
