"""The local exchange simulator: a WebSocket server on 127.0.0.1 speaking a venue's dialect.

It answers subscribe messages with the venue's acks, streams random-walk trades
for the subscribed symbols (at a rate, or as fast as the socket takes them with
pre-encoded frames), answers pings, stops after ``count`` trades, and injects
faults on request. It runs its own asyncio loop in a daemon thread, so it is
used the same way from a test, a notebook or the command line::

    with Simulator("binance", rate=2_000, count=10_000, seed=7) as sim:
        c = rtkit.collect("binance", ["BTC-USDT"], url=sim.url)

It counts what it sent by category (``sent``), so a test can hold a
collector's counters against it category by category.

This module is the public object and its lifecycle (thread, loop, start/stop);
:mod:`rtkit.sim.connections` handles each connection, :mod:`rtkit.sim.sending`
sends frames with the :mod:`rtkit.sim.faults` applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import threading
import time
from collections import Counter

from websockets.asyncio.server import serve

from rtkit.sim.book import DEFAULT_LEVELS, SimBooks
from rtkit.sim.connections import ConnectionHandler
from rtkit.sim.dialects import Dialect, get_dialect
from rtkit.sim.faults import Faults
from rtkit.sim.hostile import HostileFrame, hostile_frames
from rtkit.sim.market import CommonFactor, Market, SimTrade

log = logging.getLogger("rtkit.sim")



class Simulator(ConnectionHandler):
    """A venue simulator bound to 127.0.0.1; a context manager that stops itself.

    ``sent`` counts frames by category: ``trades`` (live trade frames),
    ``overlap`` (trade frames re-sent on a (re)subscribe), ``duplicates``
    (injected second copies), ``control`` (acks, errors, pongs, heartbeats,
    hostile frames meant to be control messages) and ``bad:<reason>`` (hostile
    frames by the reject reason they must get). ``attempts`` holds the
    monotonic time of every connection attempt, refused ones included.
    ``tls`` (a server ``ssl.SSLContext``) makes it a ``wss://`` endpoint.
    ``broadcast``: one market at ``rate`` for all connections, each trade sent to every
    connection that streams its symbol, as a real venue does (two connections of one
    client see the same trades); without it each connection makes its own. The books
    too: one stream of book messages, sent to every connection that subscribed them
    (:mod:`rtkit.sim.book_broadcast`, without the book faults).

    ``common``: a :class:`~rtkit.sim.market.CommonFactor` shared with other
    simulators, so that their prices move together (cross-venue spreads).

    Order books (dialects with ``has_books``): ``books`` (:mod:`rtkit.sim.book`)
    evolve ``book_rate`` messages a second (None: as fast as the socket takes),
    ``book_count`` at most, ``book_levels`` a side; a client that subscribes one
    gets its snapshot, then its deltas and quotes (:mod:`rtkit.sim.book_sending`,
    which applies the ``Faults.book_*``; ``book_faults`` and ``book_fault_log`` say
    what was injected). ``keep_book_history`` keeps every state by sequence, for
    a test to compare a client's book with. ``books.depth_snapshot`` is the REST
    side's depth provider.
    """

    def __init__(
        self,
        venue: str | Dialect = "binance",
        *,
        port: int = 0,
        rate: float | None = 1_000.0,
        count: int | None = None,
        seed: int | None = None,
        overlap: int = 100,
        faults: Faults | None = None,
        common: CommonFactor | None = None,
        tls: ssl.SSLContext | None = None,
        book_rate: float | None = 1_000.0,
        book_count: int | None = None,
        book_levels: int = DEFAULT_LEVELS,
        keep_book_history: bool = False,
        broadcast: bool = False,
        **dialect_options,
    ) -> None:
        if broadcast and rate is None:
            raise ValueError("broadcast sends one market to every connection at a rate: "
                             "give rate= trades/s")
        if rate is not None and not rate > 0:
            raise ValueError(f"rate must be > 0 trades/s, or None for as fast as possible, "
                             f"not {rate!r}")
        if count is not None and count < 0:
            raise ValueError(f"count must be >= 0, not {count!r}")
        if isinstance(venue, Dialect):  # a dialect outside the registry (rtkit.sim.node)
            self.dialect, venue = venue, venue.venue
        else:
            self.dialect = get_dialect(venue, **dialect_options)
        self.venue = venue
        self.host = "127.0.0.1"  # never anything but loopback
        self.port = port
        self.rate = rate
        self.count = count
        self.overlap = overlap
        self.faults = faults or Faults()
        self.tls = tls
        self._bad_frames: tuple[HostileFrame, ...] = ()
        if self.faults.bad_frame_every:
            self._bad_frames = tuple(self.faults.bad_frames or hostile_frames(venue))
        self.market = Market(seed, skip_id_every=self.faults.skip_id_every, common=common)
        #: the order books a client may subscribe (where the dialect has them): book
        #: messages made at ``book_rate`` a second (None: as fast as the socket takes),
        #: ``book_count`` at most; ``books.depth_snapshot`` answers the REST side
        self.books = SimBooks(seed, book_levels, keep_book_history,
                              self.faults.stale_snapshot_every)
        self.book_rate, self.book_count = book_rate, book_count
        self.book_faults: Counter[str] = Counter()  # book faults injected, by class
        #: each book fault injected: (class, symbol, sequence of the message it hit)
        self.book_fault_log: list[tuple[str, str, int]] = []
        self._book_deltas = 0  # book deltas over the whole run, for the every-N faults
        #: one market for all connections, each trade sent to every one that subscribed its
        #: symbol (a real venue); without it each connection makes its own trades
        self.broadcast = broadcast
        self._streaming: dict[int, list[str]] = {}  # session → symbols it streams
        self._cursors: dict[int, int] = {}  # session → next trade of the tape to send
        #: ``broadcast`` books: the book messages made once (``rtkit.sim.book_broadcast``),
        #: and the sessions that subscribed a book or quotes
        self._book_tape: list = []
        self._book_sessions: dict = {}
        self.lifetime_closes = 0  # connections closed at the end of Faults.lifetime_s
        self.lost_frames = 0  # trade frames left out by Faults.lose_every
        self.connections = 0
        self.refused = 0
        self.pings_ignored = 0
        self.reordered = 0
        self.attempts: list[float] = []
        self.sent: Counter[str] = Counter()
        self._live_frames = 0  # trade frames over the whole run, for the every-N faults
        self._in_hand = 0  # trade frames encoded but not yet sent or cut off
        self._next_bad = 0
        self._refuse_until = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        #: set to end the server; a fresh one each start (an Event binds to its loop on use)
        self._stopping = asyncio.Event()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    # --- lifecycle (caller's thread) ------------------------------------------------
    @property
    def url(self) -> str:
        scheme = "wss" if self.tls else "ws"
        return f"{scheme}://{self.host}:{self.port}{self.dialect.path}"

    @property
    def trades(self) -> list[SimTrade]:
        """Every trade generated so far, in order."""
        return self.market.trades

    @property
    def frames_sent(self) -> int:
        """Every frame sent, all categories."""
        return sum(self.sent.values())

    @property
    def all_sent(self) -> bool:
        """Every one of ``count`` trades was generated and its frame sent (or cut off
        by a fault, to come back in the next connection's overlap)."""
        made = len(self.market.trades)
        return self.count is not None and made >= self.count and not self._in_hand and all(
            cursor >= made for cursor in self._cursors.values())

    @property
    def bad_sent(self) -> dict[str, int]:
        """Hostile frames sent, by the reject reason each must get."""
        return {k[4:]: v for k, v in self.sent.items() if k.startswith("bad:")}

    def start(self, timeout_s: float = 10.0) -> Simulator:
        if self._thread is not None:
            return self
        self._refuse_until = time.monotonic() + self.faults.refuse_for_s
        self._thread = threading.Thread(target=self._run, name=f"rtkit-sim-{self.venue}",
                                        daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s) or self._error is not None:
            self.stop()
            raise RuntimeError(f"the simulator did not start: {self._error!r}")
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed
                self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def wait_generated(self, n: int | None = None, timeout_s: float = 30.0) -> bool:
        """Wait until ``n`` (default: ``count``) trades were generated."""
        target = self.count if n is None else n
        if target is None:
            raise ValueError("this simulator generates trades without end (count=None): "
                             "say how many to wait for, e.g. wait_generated(1000)")
        deadline = time.monotonic() + timeout_s
        while len(self.market.trades) < target:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def pause(self, seconds: float) -> None:
        """Hold the simulator's loop for ``seconds`` from now (a venue's hiccup, a paused
        process): nothing is generated, sent, read or accepted meanwhile. Returns at once."""
        if self._loop is None:
            raise RuntimeError("the simulator is not running: start() it first")
        self._loop.call_soon_threadsafe(time.sleep, seconds)

    def run_for(self, duration_s: float | None) -> None:
        """Serve until ``duration_s`` passed (None: until interrupted), then stop."""
        try:
            deadline = None if duration_s is None else time.monotonic() + duration_s
            while self._thread is not None and self._thread.is_alive():
                if deadline is not None and time.monotonic() >= deadline:
                    break
                time.sleep(0.1)
        finally:
            self.stop()

    # --- server (simulator thread) ----------------------------------------------------
    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(self._main())
        except BaseException as exc:  # reported by start()
            self._error = exc
            self._ready.set()
        finally:
            self._loop.close()

    async def _main(self) -> None:
        self._stopping = asyncio.Event()
        async with serve(self._handle, self.host, self.port, compression=None,
                         ping_interval=None, max_size=None, close_timeout=1,
                         process_request=self._admit, ssl=self.tls) as server:
            self.port = server.sockets[0].getsockname()[1]
            generator = asyncio.ensure_future(self._generate()) if self.broadcast else None
            book_generator = (asyncio.ensure_future(self._generate_books())
                              if self.broadcast and self.dialect.has_books else None)
            self._ready.set()
            await self._stopping.wait()
            for task in (generator, book_generator):
                if task is not None:
                    task.cancel()
            server.close(close_connections=True)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 2.0)

