"""rtkit's HTTP client: one ``httpx.Client`` per venue (connections kept alive and
reused, a timeout on every request), every request paid for in the venue's
:class:`~rtkit.rest.budget.Budget` first.

Answers: 429 pauses the whole venue for ``Retry-After`` and retries; 418 stops
every request to the venue and raises :class:`~rtkit.rest.budget.Banned` with
the reason; 5xx, timeouts and dropped connections are retried ``max_retries``
times with a growing pause; any other status is a :class:`RestError` at once.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from rtkit.rest import parse
from rtkit.rest.budget import Banned, Budget, RestError
from rtkit.rest.endpoints import (
    DepthSnapshot,
    Instrument,
    Request,
    RestTrade,
    http_base,
    okx_instruments,
    venue_rest,
)

#: seconds to connect, to wait for an answer, to send, and to get a pooled connection
DEFAULT_TIMEOUT_S = 10.0
#: retries of one request after a 429, a 5xx, a timeout or a dropped connection
DEFAULT_MAX_RETRIES = 3
#: connections kept open to one venue (and requests in flight at once)
MAX_CONNECTIONS = 8
#: the first pause before retrying a 5xx or a timeout; it doubles, up to RETRY_PAUSE_MAX_S
RETRY_PAUSE_S = 0.25
RETRY_PAUSE_MAX_S = 8.0
#: the longest ``Retry-After`` obeyed (a 429 or 418 asking for more, or for a date years
#: ahead, pauses this long): a hostile or broken answer cannot freeze a venue for years
MAX_RETRY_AFTER_S = 600.0
#: the largest answer body read (decoded); Binance's full exchangeInfo, the largest
#: answer here, is ~20 MB. A larger one is refused before it is held in memory.
MAX_BODY_BYTES = 64 << 20
#: the largest depth snapshot read: a whole Coinbase book (~46k levels a side) is ~4 MB,
#: and a parsed level costs ~200 B of Python objects (a 64 MB answer of tiny levels
#: would hold ~850 MB)
MAX_DEPTH_BODY_BYTES = 16 << 20
#: the most bytes of an error answer quoted in its message
ERROR_BODY_BYTES = 4096
#: a whole answer must come within this many ``timeout_s`` (httpx's timeout is per read:
#: a server that trickles a byte at a time would never trip it)
BODY_DEADLINE_TIMEOUTS = 3.0


_LOOPBACK = ("127.0.0.1", "localhost", "::1")


class RestTimeout(RestError):
    """No answer within the client's ``timeout_s``."""


class RateLimited(RestError):
    """The venue still answered 429 after ``max_retries`` pauses."""


def retry_after_s(value: str | None) -> float | None:
    """A ``Retry-After`` header (seconds, or an HTTP date) → seconds within
    ``0..MAX_RETRY_AFTER_S``, or None (absent, unreadable, NaN)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, OverflowError):
            return None
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


class RestClient:
    """The REST side of one venue.

    ``rest_url`` is a base ``scheme://host:port`` (a simulator, a proxy) to which
    the venue's paths are appended; None: the venue's public API. ``budget``
    (default: :meth:`Budget.shared`, the one of this venue and base URL in the
    process: half the venue's published limit) is spent before every request.
    ``stats`` counts requests by outcome. ``retry_transient=False``: a 5xx, a timeout
    or a dropped connection is raised at once (the caller retries later).
    """

    def __init__(self, venue: str, rest_url: str | None = None, *, budget: Budget | None = None,
                 timeout_s: float = DEFAULT_TIMEOUT_S, max_retries: int = DEFAULT_MAX_RETRIES,
                 max_connections: int = MAX_CONNECTIONS, retry_transient: bool = True,
                 max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.spec = venue_rest(venue)
        self.max_body_bytes = max_body_bytes
        self.timeout_s = timeout_s
        self.venue = self.spec.venue
        self.base_url = http_base(rest_url) if rest_url is not None else self.spec.base_url
        self.budget = budget or Budget.shared(self.venue, self.base_url)
        self.max_retries = max_retries
        #: False: a 5xx, a timeout or a dropped connection is raised at once, for a caller
        #: that waits longer and does other work meanwhile (the backfill's retries)
        self.retry_transient = retry_transient
        self.stats: Counter[str] = Counter()
        self._closing = threading.Event()
        from rtkit.version import __version__

        self._http = httpx.Client(
            base_url=self.base_url, timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(max_connections=max_connections,
                                max_keepalive_connections=max_connections),
            headers={"User-Agent": f"rtkit/{__version__}", "Accept": "application/json"},
            follow_redirects=False,
            # a proxy from the environment for the venues, never for a local simulator
            trust_env=urlsplit(self.base_url).hostname not in _LOOPBACK)

    # --- lifecycle ---------------------------------------------------------------------
    def close(self) -> None:
        self._closing.set()
        self._http.close()

    def __enter__(self) -> RestClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- one request ---------------------------------------------------------------------
    def get(self, request: Request, max_bytes: int | None = None) -> Any:
        """The decoded JSON answer to ``request``, paid for in the budget first; an answer
        over ``max_bytes`` (at most the client's ``max_body_bytes``) is refused."""
        failures = 0
        while True:
            self._pay(request.weight)
            self.stats["requests"] += 1
            try:
                response, body = self._fetch(request, max_bytes)
            except httpx.TimeoutException as exc:
                self.stats["timeouts"] += 1
                error: RestError = RestTimeout(
                    f"{self.venue} gave no answer to {request.path} within the timeout "
                    f"({type(exc).__name__}); raise timeout_s= if the network is slow", 0)
            except httpx.TransportError as exc:
                self.stats["transport_errors"] += 1
                error = RestError(f"cannot reach {self.venue} at {self.base_url}: "
                                  f"{type(exc).__name__}: {exc}", 0)
            else:
                status = response.status_code
                self.stats[f"http_{status}"] += 1
                if status == 200:
                    self._note_used(response)
                    try:
                        return orjson.loads(body)
                    except orjson.JSONDecodeError:
                        raise RestError(f"{self.venue} answered {request.path} with what is not "
                                        f"JSON ({response.headers.get('Content-Type')!r}): "
                                        f"{' '.join(body[:200].decode(errors='replace').split())}"
                                        " — a proxy or captive portal in between? check "
                                        "rest_url=", status) from None
                wait = retry_after_s(response.headers.get("Retry-After"))
                if status == 418:
                    raise self.budget.ban(wait, f" (on {request.path})")
                if status == 429:
                    self.budget.pause(wait)
                    failures += 1
                    if failures > self.max_retries:
                        raise RateLimited(
                            f"{self.venue} still answered 429 (too many requests) after "
                            f"{self.max_retries} pauses; another program may share this IP's "
                            "limit", 429)
                    self.stats["retries"] += 1
                    continue  # the budget holds the pause
                text = " ".join(body[:200].decode(errors="replace").split())
                if status == 426:  # a WebSocket server: rest_url was derived from url=
                    text += (f" ({self.base_url} is a WebSocket endpoint, not a REST API: pass "
                             "rest_url= the REST base, e.g. what `rtkit sim` prints)")
                error = RestError(f"{self.venue} answered HTTP {status} to {request.path}: "
                                  f"{text}", status)
                if status < 500:
                    raise error
            if not self.retry_transient:
                raise error
            failures += 1
            if failures > self.max_retries:
                raise error
            self.stats["retries"] += 1
            pause = min(RETRY_PAUSE_S * 2 ** (failures - 1), RETRY_PAUSE_MAX_S)
            if self._closing.wait(pause):
                raise error

    def _pay(self, weight: float) -> None:
        """Spend ``weight`` in the budget once it has room; a ``close()`` meanwhile cuts the
        wait short (a RestError), so several threads may wait on one client and all end
        when it closes."""
        started = time.monotonic()
        while True:
            wait = self.budget.room_in(weight)
            if wait > 0 and self._closing.wait(wait):
                raise RestError(f"the {self.venue} REST client was closed while it waited "
                                "for room in the budget", 0)
            try:  # room now, unless another caller took it first: then wait again
                self.budget.acquire(weight, timeout_s=0)
            except TimeoutError:
                continue
            self.budget.note_wait(time.monotonic() - started)
            return

    def _fetch(self, request: Request, max_bytes: int | None) -> tuple[httpx.Response, bytes]:
        """The answer and its body, read to at most ``max_body_bytes`` (an error's to
        ``ERROR_BODY_BYTES``) and within ``BODY_DEADLINE_TIMEOUTS`` × ``timeout_s``; a
        ``close()`` cuts the read short between two chunks."""
        deadline = time.monotonic() + BODY_DEADLINE_TIMEOUTS * self.timeout_s
        with self._http.stream("GET", request.path, params=request.params) as response:
            ok = response.status_code == 200
            cap = min(self.max_body_bytes, max_bytes or self.max_body_bytes)
            limit = cap if ok else ERROR_BODY_BYTES
            declared = response.headers.get("Content-Length", "")
            if ok and declared.isdigit() and int(declared) > limit:
                raise RestError(self._too_large(request, f"{int(declared):,} bytes declared",
                                                cap), 200)
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if size > limit:
                    if not ok:
                        break  # enough of an error to quote
                    raise RestError(self._too_large(request, f"over {limit:,} bytes", cap), 200)
                if self._closing.is_set():
                    raise RestError(f"{self.venue}'s REST client was closed during an answer")
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout(f"the answer took over "
                                            f"{BODY_DEADLINE_TIMEOUTS * self.timeout_s:g} s")
            return response, b"".join(chunks)

    def _too_large(self, request: Request, what: str, cap: int) -> str:
        return (f"{self.venue} answered {request.path} with {what}, more than "
                f"{cap:,} (max_body_bytes; a depth snapshot at most MAX_DEPTH_BODY_BYTES): "
                "refused unread; raise max_body_bytes= if the venue's answers are that large")

    def _note_used(self, response: httpx.Response) -> None:
        used = response.headers.get("X-MBX-USED-WEIGHT-1M")
        if used and used.isascii() and used.isdigit():  # '²' is a digit to isdigit()
            self.budget.note_used(min(float(used), self.budget.limit))

    # --- what the venue offers -------------------------------------------------------------
    def depth(self, symbol: str, limit: int | None = None) -> DepthSnapshot:
        """The venue's order-book snapshot of ``symbol`` (BASE-QUOTE), ``limit`` levels a side
        where the venue takes a limit (None: the venue's default)."""
        if self.spec.depth is None:
            raise ValueError(f"{self.venue} has no REST depth snapshot")
        if limit is not None and not 0 < limit <= self.spec.max_depth:
            raise ValueError(f"{self.venue} snapshots hold 1 to {self.spec.max_depth} levels, "
                             f"not {limit!r}")
        return parse.depth(self.venue, self.get(self.spec.depth(symbol, limit),
                                                MAX_DEPTH_BODY_BYTES))

    def depths(self, symbols: Iterable[str], limit: int | None = None,
               workers: int = 4) -> dict[str, DepthSnapshot | RestError]:
        """Snapshots of many books, ``workers`` at a time within the budget; a book whose
        snapshot failed maps to its error. A ban stops the rest (they map to it too)."""
        symbols = list(symbols)

        def one(symbol: str) -> DepthSnapshot | RestError:
            try:
                return self.depth(symbol, limit)
            except RestError as exc:
                return exc

        with ThreadPoolExecutor(max(1, workers), thread_name_prefix="rtkit-rest") as pool:
            return dict(zip(symbols, pool.map(one, symbols), strict=True))

    def trades_page(self, symbol: str, **cursor) -> tuple[list[RestTrade], Any]:
        """One page of ``symbol``'s trade history (the venue's cursor keywords, see
        :mod:`rtkit.rest.endpoints`): the trades in the venue's order and Kraken's next
        ``since`` (None elsewhere)."""
        if self.spec.trades is None:
            raise ValueError(f"{self.venue} has no REST trade history")
        return parse.trades(self.venue, self.get(self.spec.trades(symbol, **cursor)))

    def instruments(self, inst_type: str | None = None) -> list[Instrument]:
        """The venue's market list; on OKX ``inst_type`` (``SPOT``, ``SWAP``, ``FUTURES``)
        chooses the list, with each contract's ``ctVal``."""
        if inst_type is not None:
            if self.venue != "okx":
                raise ValueError(f"inst_type= is OKX's; {self.venue} has one market list")
            request = okx_instruments(inst_type)
        elif self.spec.markets is None:
            raise ValueError(f"{self.venue} publishes no market list")
        else:
            request = self.spec.markets
        return parse.instruments(self.venue, self.get(request))


__all__ = ["Banned", "RateLimited", "RestClient", "RestError", "RestTimeout", "retry_after_s"]
