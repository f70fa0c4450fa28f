"""A per-venue request budget: at most a share (default half, ``rest_budget_share`` of
a collector: up to 0.9) of the venue's published limit in any window, a pause on 429
for as long as ``Retry-After`` says, and a stop on 418.

Binance counts request weight per IP per minute (a depth snapshot of 1,000 levels
weighs 50 on spot, 20 on USD-M); the others count requests per window. The
budget is a sliding window: no interval of ``window_s`` ever holds more than
``capacity``, so no fixed window of the venue (Binance resets each minute) does
either. Thread-safe: the book starters and backfill of one venue share one.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

#: the share of a venue's published limit that rtkit allows itself (by default; a
#: collector's ``rest_budget_share`` raises it, up to MAX_SHARE)
BUDGET_SHARE = 0.5
#: the most of a venue's limit a user may let rtkit use: the rest is the margin for the
#: venue's clock not being ours (its windows, the network's delay)
MAX_SHARE = 0.9
#: seconds of pause after a 429 that gives no usable Retry-After
DEFAULT_RETRY_AFTER_S = 5.0
#: seconds of stop after a 418 that gives no usable Retry-After (Binance bans for
#: 2 minutes at first, longer for repeat offenders)
DEFAULT_BAN_S = 120.0
#: seconds between two looks at ``acquire``'s ``cancel`` while it waits
CANCEL_POLL_S = 0.1


class RestError(RuntimeError):
    """A REST request that failed; ``status`` is the HTTP status (0: no answer)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class Banned(RestError):
    """The venue answered 418: this IP is banned for a while. rtkit sends nothing more
    to the venue until ``until`` (monotonic seconds) and says so."""

    def __init__(self, message: str, until: float) -> None:
        super().__init__(message, 418)
        self.until = until


class Budget:
    """At most ``capacity`` (= ``share`` × ``limit``) units per ``window_s``.

    Requests are whole: where ``share`` × ``limit`` is not a whole number of units
    (Kraken's 2 requests per 2 s at 0.9 is 1.8), the capacity is the whole part and the
    window shortens in proportion (1 request per 1.11 s), so that the rate stays
    ``share`` × the published one instead of falling to the whole part's.

    ``acquire(cost)`` blocks until the cost fits (or a 429 pause ends), then
    spends it; a 418 makes every later ``acquire`` raise :class:`Banned` until
    the ban ends. ``peak`` is the most ever in use in one window, ``used()`` what
    is in use now, ``waited_s`` the time callers spent waiting for room.
    """

    def __init__(self, venue: str, limit: float, window_s: float, *, unit: str = "requests",
                 share: float = BUDGET_SHARE,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not limit > 0 or not window_s > 0 or not 0 < share <= 1:
            raise ValueError(f"a budget needs limit > 0, window_s > 0 and 0 < share <= 1, not "
                             f"limit={limit!r}, window_s={window_s!r}, share={share!r}")
        self.venue = venue
        self.limit = limit
        self.published_window_s = float(window_s)
        self.unit = unit
        self.share = share
        self.window_s, self.capacity = _window_and_capacity(limit, float(window_s), share)
        self._clock = clock
        self._spent: deque[tuple[float, float]] = deque()  # (at, cost)
        self._in_window = 0.0
        # a shortened window would let two bursts into one of the venue's: its window
        # also holds at most the share rounded up to a whole request
        self._published: deque[tuple[float, float]] = deque()
        self._in_published = 0.0
        self._cond = threading.Condition()
        self._paused_until = 0.0
        self._banned_until = 0.0
        self.ban_reason = ""
        self.peak = 0.0
        self.waited_s = 0.0
        self.pauses = 0  # 429s that paused the budget

    @classmethod
    def for_venue(cls, venue: str, *, window_s: float | None = None,
                  limit: float | None = None, share: float = BUDGET_SHARE) -> Budget:
        """The budget of ``venue``'s published limit (``window_s``/``limit`` override it: a
        simulator that compresses time)."""
        from rtkit.rest.endpoints import venue_rest

        spec = venue_rest(venue)
        return cls(spec.venue, spec.limit if limit is None else limit,
                   spec.window_s if window_s is None else window_s, unit=spec.unit,
                   share=share)

    def allow_share(self, share: float) -> None:
        """Let the budget use up to ``share`` of the venue's limit from now on, when that is
        more than it allows already (a collector's ``rest_budget_share``: the one budget of
        a venue in a process allows the most any of its collectors asked for)."""
        check_share(share)
        with self._cond:
            if share > self.share:
                self.share = share
                self.window_s, self.capacity = _window_and_capacity(
                    self.limit, self.published_window_s, share)
                self._expire(self._clock())
                self._cond.notify_all()

    # --- spending ----------------------------------------------------------------------
    def _expire(self, now: float) -> None:
        spent, edge = self._spent, now - self.window_s
        while spent and spent[0][0] <= edge:
            self._in_window -= spent.popleft()[1]
        if not spent:
            self._in_window = 0.0  # no float residue from the subtractions
        published, edge = self._published, now - self.published_window_s
        while published and published[0][0] <= edge:
            self._in_published -= published.popleft()[1]
        if not published:
            self._in_published = 0.0

    @property
    def published_capacity(self) -> float:
        """The most the venue's own window may hold: the share rounded up to a whole unit."""
        return max(self.capacity, float(math.ceil(self.limit * self.share - 1e-9)))

    def _fits(self, cost: float) -> bool:
        return (self._in_window + cost <= self.capacity
                and self._in_published + cost <= self.published_capacity)

    def _spend(self, now: float, cost: float) -> None:
        self._spent.append((now, cost))
        self._in_window += cost
        self._published.append((now, cost))
        self._in_published += cost

    def _wake(self, now: float, cost: float) -> float:
        """When enough of the oldest spends left both windows for ``cost`` to fit."""
        wake = now
        for spent, in_use, capacity, window in (
                (self._spent, self._in_window, self.capacity, self.window_s),
                (self._published, self._in_published, self.published_capacity,
                 self.published_window_s)):
            over = in_use + cost - capacity
            for at, units in spent:
                if over <= 1e-9:
                    break
                over -= units
                wake = max(wake, at + window)
        return wake

    def used(self) -> float:
        """Units spent in the last ``window_s``."""
        with self._cond:
            self._expire(self._clock())
            return max(self._in_window, 0.0)

    def acquire(self, cost: float = 1.0, timeout_s: float | None = None,
                cancel: threading.Event | None = None) -> float:
        """Spend ``cost`` once it fits in the window; returns the seconds waited.

        Raises :class:`Banned` during a ban, TimeoutError when ``timeout_s`` passed
        first, ValueError for a cost that can never fit, RestError once ``cancel`` is set
        (a client closed while it waited out a 429's pause)."""
        if cost > self.capacity:
            raise ValueError(f"a request of {cost:g} {self.unit} never fits {self.venue}'s budget "
                             f"of {self.capacity:g} per {self.window_s:g} s; ask for less "
                             "(a smaller depth)")
        started = self._clock()
        deadline = None if timeout_s is None else started + timeout_s
        with self._cond:
            while True:
                now = self._clock()
                self._check_ban(now)
                self._expire(now)
                if now >= self._paused_until and self._fits(cost):
                    break
                wake = self._paused_until if now < self._paused_until else (
                    self._wake(now, cost))
                if deadline is not None and wake > deadline:
                    raise TimeoutError(f"{self.venue}'s REST budget has no room for {cost:g} "
                                       f"{self.unit} within {timeout_s:g} s")
                if cancel is not None and cancel.is_set():
                    raise RestError(f"{self.venue}'s REST client was closed while it waited "
                                    "for room in the budget")
                self._cond.wait(min(max(wake - now, 0.001), CANCEL_POLL_S))
            self._spend(now, cost)
            self.peak = max(self.peak, self._in_window)
            waited = now - started
            self.waited_s += waited
            return waited

    def room_in(self, cost: float = 1.0) -> float:
        """Seconds until ``cost`` fits (0: now, or banned: ``acquire`` raises at once); a
        caller that must stay responsive waits this on its own event, then acquires."""
        with self._cond:
            now = self._clock()
            if now < self._banned_until:
                return 0.0
            self._expire(now)
            if now < self._paused_until:
                return self._paused_until - now
            if self._fits(cost) or not (self._spent or self._published):
                return 0.0
            # the oldest spends leave the windows in turn: when enough have left
            return max(self._wake(now, cost) - now, 0.0)

    def note_wait(self, seconds: float) -> None:
        """Count ``seconds`` a caller waited for room on its own (``room_in``) in ``waited_s``."""
        with self._cond:
            self.waited_s += max(seconds, 0.0)

    def note_used(self, used: float) -> None:
        """What the venue says is used in its window (Binance ``X-MBX-USED-WEIGHT-1M``):
        when it is more than the budget knows of (another program on this IP), the
        difference is spent now, so the budget slows down instead of the venue refusing."""
        with self._cond:
            now = self._clock()
            self._expire(now)
            extra = used - self._in_window
            if extra > 0:
                self._spend(now, extra)

    # --- the venue's answers -------------------------------------------------------------
    def pause(self, retry_after_s: float | None) -> float:
        """A 429: nothing is sent before ``retry_after_s`` (default ``DEFAULT_RETRY_AFTER_S``)
        from now; returns the pause in seconds."""
        seconds = DEFAULT_RETRY_AFTER_S if retry_after_s is None else max(retry_after_s, 0.0)
        with self._cond:
            self._paused_until = max(self._paused_until, self._clock() + seconds)
            self.pauses += 1
            self._cond.notify_all()
        return seconds

    def ban(self, retry_after_s: float | None, detail: str = "") -> Banned:
        """A 418: stop every request to the venue until the ban ends; the error to raise."""
        seconds = DEFAULT_BAN_S if retry_after_s is None else max(retry_after_s, 0.0)
        with self._cond:
            self._banned_until = max(self._banned_until, self._clock() + seconds)
            self.ban_reason = (
                f"{self.venue} answered HTTP 418: this IP is banned from its REST API for "
                f"{seconds:g} s (the venue bans after 429s were not respected){detail}; rtkit "
                "sends it no request until then. Another program on this IP may be using the "
                "same budget.")
            self._cond.notify_all()
            return Banned(self.ban_reason, self._banned_until)

    @property
    def banned(self) -> bool:
        with self._cond:
            return self._clock() < self._banned_until

    def _check_ban(self, now: float) -> None:
        if now < self._banned_until:
            raise Banned(self.ban_reason + f" ({self._banned_until - now:.0f} s left)",
                         self._banned_until)

    @classmethod
    def shared(cls, venue: str, base_url: str, share: float | None = None) -> Budget:
        """The one budget of ``venue`` at ``base_url`` in this process: a venue counts per
        IP, so every client of it (books, backfill, market lists, several collectors)
        spends from the same budget. ``share``: let it use that much (``allow_share``)."""
        from rtkit.rest.endpoints import venue_rest

        # keyed by the venue's public API: two names of one API (kraken, kraken-v1)
        # spend one limit
        key = (venue_rest(venue).base_url, base_url)
        with _SHARED_LOCK:
            budget = _SHARED.get(key)
            if budget is None:
                budget = _SHARED[key] = cls.for_venue(venue)
        if share is not None:
            budget.allow_share(share)
        return budget

    def snapshot(self) -> dict[str, float | str | bool]:
        """The budget's figures for ``stats``: capacity, in use, peak, waits, pauses, ban."""
        return {"venue": self.venue, "unit": self.unit, "window_s": self.window_s,
                "limit": self.limit, "share": self.share, "capacity": self.capacity,
                "used": self.used(),
                "peak": self.peak, "peak_share": self.peak / self.limit,
                "waited_s": round(self.waited_s, 3), "pauses": self.pauses,
                "banned": self.banned}


_SHARED: dict[tuple[str, str], Budget] = {}
_SHARED_LOCK = threading.Lock()


def check_share(share: object, name: str = "rest_budget_share") -> float:
    """``share`` when it is a number with 0 < share <= MAX_SHARE, else a ValueError that
    says what to give."""
    if type(share) not in (int, float) or not 0 < share <= MAX_SHARE:  # type: ignore[operator]
        raise ValueError(
            f"{name}= is the share of each venue's published REST rate limit rtkit may use: "
            f"a number with 0 < share <= {MAX_SHARE} (default {BUDGET_SHARE}: half, leaving "
            f"the rest to other programs on this IP; {MAX_SHARE} fills gaps fastest), not "
            f"{share!r}")
    return float(share)  # type: ignore[arg-type]


def _window_and_capacity(limit: float, window_s: float, share: float) -> tuple[float, float]:
    """``(window_s, capacity)`` of a budget of ``share`` × ``limit`` per ``window_s`` in whole
    units: the whole part of the capacity (at least 1), the window shortened (or, below
    one unit, lengthened) in proportion, so that the rate is ``share`` × the published one."""
    exact = limit * share
    whole = max(1.0, float(math.floor(exact + 1e-9)))
    if abs(whole - exact) <= 1e-9:
        return window_s, exact
    return window_s * whole / exact, whole


def use_share(venue: str, rest_url: str | None, share: float) -> Budget | None:
    """Let the process's budget of ``venue`` at ``rest_url`` (None: the venue's public API)
    use ``share`` of its limit, for every REST request there from now on (books, backfill,
    market lists); None for a venue with no REST side."""
    from rtkit.rest.endpoints import VENUES, http_base

    spec = VENUES.get(venue)
    if spec is None:
        return None
    base = spec.base_url if rest_url is None else http_base(rest_url)
    return Budget.shared(spec.venue, base, share)
