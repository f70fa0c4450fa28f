"""Live hooks: a function called with each new batch of a kind, on a thread of its own.

``collector.on("trades", fn)`` calls ``fn(df)`` with every new batch of trades as a
small DataFrame (the columns and dtypes of ``collector.df``; another kind's
DataFrame has that kind's columns). The receive thread never calls user code: it
only appends the batch's rows to each hook's queue, without waiting, and goes
on. Each hook has its own thread, which takes everything queued at once (a slow
hook gets fewer, larger batches) and calls the function. So a slow or failing
hook never slows collection nor loses a stored row:

* a hook that raises is counted (``errors``, ``last_error``; its first traceback
  is logged) and called again with the next batch;
* a hook that falls behind by more than ``max_pending`` rows has the newest rows
  skipped, and counted (``skipped``): what it was given plus what it skipped is
  every row the collector took.

A hook's thread ends with the collector (after one last call with what was
queued, if that call starts before ``stop()``'s bound) or at ``off()``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from rtkit.frame import tick_frame
from rtkit.kinds import get_kind

log = logging.getLogger("rtkit")

#: rows queued for one hook (not yet given to it) beyond which new rows are skipped
#: and counted: what a hook that falls behind may hold in memory (a batch that comes
#: when nothing is queued is queued whole, however large)
DEFAULT_MAX_PENDING_ROWS = 100_000
#: seconds a hook's thread sleeps between two looks at whether its collector still runs
_IDLE_CHECK_S = 0.2

HookFn = Callable[[pd.DataFrame], Any]


def trades_frame(venue: str, batches: list[tuple[int, list]]) -> pd.DataFrame:
    """The ring's tick tuples, grouped by receive time, as ``collector.df``'s DataFrame."""
    rows = [t for _, ticks in batches for t in ticks]
    received = np.repeat(np.array([r for r, _ in batches], np.int64),
                         [len(ticks) for _, ticks in batches])
    symbol, trade_id, ts, price, volume, side = zip(*rows, strict=True)
    symbol_codes, symbols = pd.factorize(np.array(symbol, dtype=object))
    ids = np.array(trade_id, dtype=object)
    if all(type(i) is int for i in trade_id):
        ids = ids.astype(np.int64)
    sides = np.array(side, dtype=np.int8)
    return tick_frame(
        timestamp=np.array(ts, np.int64), received_at=received,
        venue_codes=np.zeros(len(rows), np.int64), venues=[venue],
        symbol_codes=symbol_codes, symbols=list(symbols),
        price=np.array(price, np.float64), volume=np.array(volume, np.float64),
        side_codes=np.where(sides >= 0, sides, -1), trade_id=ids)


def records_frame(kind: str, batches: list[tuple[int, list]]) -> pd.DataFrame:
    """Rows of another kind (tuples in its columns' order) as a DataFrame of its columns."""
    return pd.DataFrame([r for _, rows in batches for r in rows], columns=get_kind(kind).names)


class Hook:
    """One function on one kind: its queue, its thread and its counters."""

    def __init__(self, kind: str, fn: HookFn, to_frame: Callable[[list], pd.DataFrame],
                 max_pending: int, thread_name: str) -> None:
        self.kind, self.fn = kind, fn
        self.name = getattr(fn, "__qualname__", None) or repr(fn)
        self.max_pending = max_pending
        self._to_frame = to_frame
        self._thread_name = thread_name
        self._queue: deque[tuple[int, list]] = deque()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._ending = False  # give what is queued, then end
        self._removed = False  # end now, queued rows dropped (counted as skipped)
        self.thread: threading.Thread | None = None
        self.pending = 0  # rows queued, guarded by _lock
        self.calls = self.rows = self.errors = self.skipped = 0
        self.busy_s = 0.0  # time spent in the function
        self.last_error = ""

    # --- receive thread: never waits, never calls the function -----------------------
    def offer(self, received_at_ns: int, rows: list) -> None:
        n = len(rows)
        with self._lock:
            # a hook with nothing queued is not behind, however large the batch
            if self._removed or (self.pending and self.pending + n > self.max_pending):
                first = not self.skipped
                self.skipped += n
            else:
                first = False
                self._queue.append((received_at_ns, rows))
                self.pending += n
        if first:
            log.warning("rtkit: hook %s on %s falls behind (over %d rows queued); new rows "
                        "are skipped for it and counted in stats['hooks']", self.name,
                        self.kind, self.max_pending)
        self._wake.set()

    # --- its own thread --------------------------------------------------------------
    def start(self, alive: Callable[[], bool]) -> None:
        if self.thread is None and not self._removed:
            self.thread = threading.Thread(target=self._run, args=(alive,), daemon=True,
                                           name=self._thread_name)
            self.thread.start()

    def _take(self) -> list[tuple[int, list]]:
        with self._lock:
            batches = list(self._queue)
            self._queue.clear()
            self.pending = 0
        return batches

    def _run(self, alive: Callable[[], bool]) -> None:
        while not self._removed:
            self._wake.wait(_IDLE_CHECK_S)
            self._wake.clear()
            ending = self._ending or not alive()
            batches = self._take()
            if batches and not self._removed:
                self._call(batches)
            if ending and not self.pending:
                return

    def _call(self, batches: list[tuple[int, list]]) -> None:
        n = sum(len(rows) for _, rows in batches)
        started = time.perf_counter()
        try:
            self.fn(self._to_frame(batches))
        except BaseException as exc:  # sys.exit() in a thread would end it without a word
            if not self.errors:
                log.exception("rtkit: hook %s on %s raised; it is counted in stats['hooks'] "
                              "and called again with the next batch", self.name, self.kind)
            self.errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"[:300]
        finally:
            self.calls += 1
            self.rows += n
            self.busy_s += time.perf_counter() - started

    def end(self, *, drop: bool = False) -> None:
        """Ask the thread to end: after one last call with what is queued, or (``drop``)
        at once, what is queued counted as skipped."""
        if drop:
            with self._lock:
                self._removed = True
                self.skipped += self.pending
                self._queue.clear()
                self.pending = 0
        self._ending = True
        self._wake.set()

    def stats(self) -> dict[str, Any]:
        return {"kind": self.kind, "hook": self.name, "calls": self.calls, "rows": self.rows,
                "errors": self.errors, "skipped": self.skipped, "pending": self.pending,
                "busy_s": round(self.busy_s, 3), "last_error": self.last_error}


class Hooks:
    """The hooks of one collector: what ``Collector.on``/``off`` manage."""

    def __init__(self, owner: str, venue: str, kinds: tuple[str, ...]) -> None:
        self.owner, self.venue, self.kinds = owner, venue, kinds
        self._by_kind: dict[str, tuple[Hook, ...]] = {}  # replaced whole: read lock-free
        self._lock = threading.Lock()
        self._alive: Callable[[], bool] | None = None  # set by start()
        self._count = 0

    def __bool__(self) -> bool:
        return any(self._by_kind.values())

    def on(self, kind: str, fn: HookFn, *, max_pending: int = DEFAULT_MAX_PENDING_ROWS) -> Hook:
        if kind not in self.kinds:
            raise ValueError(f"this collector collects {', '.join(self.kinds)}, not {kind!r}; "
                             f"hook one of those (e.g. c.on({self.kinds[0]!r}, fn))")
        if not callable(fn):
            raise TypeError(f"a hook is a function taking a DataFrame, not {type(fn).__name__}")
        if isinstance(max_pending, bool) or not isinstance(max_pending, int) or max_pending < 1:
            raise ValueError(f"max_pending must be a positive int of rows, not {max_pending!r}")
        if kind == "trades":
            def to_frame(batches: list) -> pd.DataFrame:
                return trades_frame(self.venue, batches)
        else:
            def to_frame(batches: list) -> pd.DataFrame:
                return records_frame(kind, batches)
        with self._lock:
            self._count += 1
            hook = Hook(kind, fn, to_frame, max_pending,
                        f"rtkit-hook-{self.owner}-{kind}-{self._count}")
            self._by_kind = {**self._by_kind, kind: (*self._by_kind.get(kind, ()), hook)}
        if self._alive is not None:  # the collector runs: the hook starts now
            hook.start(self._alive)
        return hook

    def off(self, kind: str | None = None, fn: HookFn | None = None) -> int:
        """Remove the hooks of ``kind`` (all kinds: None) calling ``fn`` (any: None);
        returns how many. Their threads end after the call in progress, if any."""
        with self._lock:
            gone = [h for k, hooks in self._by_kind.items() for h in hooks
                    if kind in (None, k) and (fn is None or h.fn == fn)]
            self._by_kind = {k: kept for k, hooks in self._by_kind.items()
                             if (kept := tuple(h for h in hooks if h not in gone))}
        for hook in gone:
            hook.end(drop=True)
        return len(gone)

    def copy_to(self, other: Hooks) -> None:
        """Add these hooks (functions and bounds) to ``other``: a collector made again
        (``Collector.again``, the panel's Start) keeps its hooks."""
        for hooks in self._by_kind.values():
            for hook in hooks:
                other.on(hook.kind, hook.fn, max_pending=hook.max_pending)

    def offer(self, kind: str, received_at_ns: int, rows: list) -> None:
        """New rows of ``kind`` (receive thread): queued for each of its hooks."""
        for hook in self._by_kind.get(kind, ()):
            hook.offer(received_at_ns, rows)

    def offer_rows(self, received_at_ns: int, rows: dict[str, list]) -> None:
        """A frame's rows of the other kinds (``rtkit.kinds.Rows``), trades aside."""
        by_kind = self._by_kind
        for kind, items in rows.items():
            if kind != "trades" and items and kind in by_kind:
                for hook in by_kind[kind]:
                    hook.offer(received_at_ns, items)

    def start(self, alive: Callable[[], bool]) -> None:
        """Start the hooks' threads; they end when ``alive()`` is False or at ``stop()``."""
        self._alive = alive
        for hooks in self._by_kind.values():
            for hook in hooks:
                hook.start(alive)

    def stop(self, deadline: float) -> None:
        """End the threads (each after a last call with what is queued) and wait for
        them until ``deadline`` (monotonic); a hook still busy then has its queue dropped
        (counted as skipped) and ends when its call returns."""
        self._alive = None
        hooks = [h for hs in self._by_kind.values() for h in hs]
        for hook in hooks:
            hook.end()
        for hook in hooks:
            if hook.thread is not None and hook.thread is not threading.current_thread():
                hook.thread.join(max(0.05, deadline - time.monotonic()))
                if hook.thread.is_alive():
                    hook.end(drop=True)
                    log.warning("rtkit: hook %s on %s was still running at stop(); it ends when "
                                "its call returns", hook.name, hook.kind)

    def stats(self) -> list[dict[str, Any]]:
        return [h.stats() for hs in self._by_kind.values() for h in hs]


class LiveHooks:
    """``on``/``off`` of a collector, whose ``hooks`` its pipeline offers each batch."""

    hooks: Hooks

    def on(self, kind: str, fn: HookFn, *, max_pending: int = DEFAULT_MAX_PENDING_ROWS) -> Hook:
        """Call ``fn(df)`` with each new batch of ``kind`` (one of ``.kinds``) as a small
        DataFrame, on a thread of its own (never the receive thread); returns the hook.

        A hook that raises is counted and called again with the next batch; one more
        than ``max_pending`` rows behind has new rows skipped and counted: collection
        never waits for a hook (``stats['hooks']``: calls, rows, errors, skipped). See
        :mod:`rtkit.hooks`."""
        return self.hooks.on(kind, fn, max_pending=max_pending)

    def off(self, kind: str | None = None, fn: HookFn | None = None) -> int:
        """Remove the hooks of ``kind`` (None: every kind) calling ``fn`` (None: any);
        returns how many were removed."""
        return self.hooks.off(kind, fn)
