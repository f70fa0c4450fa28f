"""Order books: the cost of one delta, of ``c.book(...)``, and books through the whole
pipeline (socket → adapter → machine → SQLite), with a long clean run that must
show no false desync and end with the local book equal to the feed's.

The feed is its own process (``python -m benchmarks.books serve``): Bybit
``orderbook.50`` frames of simulated books (:mod:`rtkit.sim.book`), made as it
goes and written as fast as the socket takes them; at the end it writes each
book's last state to a file for the client to compare, level by level. With
``--venue kraken`` / ``kraken-v1`` it writes Kraken's ``book`` frames at depth 10
of the same 50-level books instead (each update with the CRC32 of the top 10,
which the client checks on every one; changes below the depth send nothing), and
:mod:`benchmarks.books_kraken` measures what that checksum sees of lost updates.

The venues without proof (Coinbase Exchange, Bitstamp) have a clean run of
their own (:func:`unverified_run`): the simulator and its REST side in a child
process (``python -m benchmarks.books serve-unverified``), the collector
auditing each book every second against that REST side while the books move
as fast as the socket takes them; no audit may fail, and the final books must
equal the venue's REST snapshot.

Binance spot and USD-M take the same long clean run with their diffs
(``--venue binance``): the feed process serves their REST snapshots too, from the
same books, so each book starts as it does at the venue. Their resync time (a
dropped diff healed by a REST snapshot) and the start-up of 200 USD-M books
through a collector within the venue's REST budget are measured against the
simulator.

OKX (``books`` with ``prevSeqId``) and Coinbase Advanced Trade (``l2_data`` with the
connection's ``sequence_num`` on every frame) take the same long clean run, and
their resync time after a lost delta is measured (:func:`resync_time`).

Run alone: ``python -m benchmarks.books [--messages 1000000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

PY = sys.executable
SYMBOLS = ("BTC-USDT", "ETH-USDT")
#: per venue of the clean run: (book depth subscribed, symbols)
FEEDS = {"bybit": (50, SYMBOLS), "kraken": (10, ("BTC-USD", "ETH-USD")),
         "kraken-v1": (10, ("BTC-USD", "ETH-USD")), "binance": (100, SYMBOLS),
         "binance-futures": (100, SYMBOLS), "okx": (None, SYMBOLS),
         "coinbase": (None, ("BTC-USD", "ETH-USD"))}
#: venues whose long clean run follows Bybit's on their own channels (socket snapshots)
CLEAN_VENUES = ("okx", "coinbase")
#: the levels a feed's books are made with (a venue without ``depth=`` gets them all)
FEED_LEVELS = 50


class _Connection:
    """The one connection of the feed, for a dialect that numbers a connection's frames."""


_CONNECTION = _Connection()
T0 = 1_764_000_000_000_000_000


# --- the micro benchmarks -------------------------------------------------------------------
def _delta_messages(n: int, levels: int = 20, depth: int = 200, seed: int = 1):
    """A snapshot of ``depth`` levels a side, then ``n`` deltas of ``levels`` levels each
    (half bids, half asks: mostly new sizes near the top, some levels coming and going)."""
    from rtkit.books import BookMessage

    rng = random.Random(seed)
    bids = [(f"{65_000 - 0.1 * (k + 1):.1f}", "1.000") for k in range(depth)]
    asks = [(f"{65_000 + 0.1 * k:.1f}", "1.000") for k in range(depth)]
    out = [BookMessage("BTC-USDT", T0, T0, True, bids, asks, seq=1)]
    for i in range(n):
        side_bids = [(f"{65_000 - 0.1 * (rng.randrange(depth + 20) + 1):.1f}",
                      "0" if rng.random() < 0.1 else f"{rng.randint(1, 9999) / 1000:.3f}")
                     for _ in range(levels // 2)]
        side_asks = [(f"{65_000 + 0.1 * rng.randrange(depth + 20):.1f}",
                      "0" if rng.random() < 0.1 else f"{rng.randint(1, 9999) / 1000:.3f}")
                     for _ in range(levels // 2)]
        out.append(BookMessage("BTC-USDT", T0 + i, T0 + i, False, side_bids, side_asks,
                               seq=i + 2))
    return out


def delta_cost(n: int = 20_000) -> dict:
    """One 20-level delta through a Bybit book's machine (rule, levels, rows), in µs."""
    from rtkit.books.machine import BookMachine
    from rtkit.books.rules import rule_for

    messages = _delta_messages(n)
    machine = BookMachine("bybit", "BTC-USDT", rule_for("bybit"), max_levels=1000)
    machine.feed(messages[0])
    feed, clock, times = machine.feed, time.perf_counter_ns, []
    for msg in messages[1:]:
        start = clock()
        feed(msg)
        times.append(clock() - start)
    if machine.state != "live":
        raise RuntimeError(f"the benchmark's book desynced: {machine.state}")
    times.sort()
    return {"book_delta_20_levels_p50_us": times[len(times) // 2] / 1000,
            "book_delta_20_levels_p99_us": times[int(len(times) * 0.99)] / 1000}


def book_frame_cost(n: int = 3_000) -> dict:
    """``c.book(symbol, depth=25)`` of a 200-level book, in µs."""
    from rtkit.books.frame import book_frame
    from rtkit.books.keeper import BookKeeper
    from rtkit.books.rules import rule_for

    keeper = BookKeeper("bybit", ["BTC-USDT"], lambda: rule_for("bybit"))
    keeper.feed(_delta_messages(0)[:1])
    for _ in range(50):  # warm pandas up
        book_frame(keeper, "BTC-USDT", 25)
    times = []
    for _ in range(n):
        start = time.perf_counter_ns()
        book_frame(keeper, "BTC-USDT", 25)
        times.append(time.perf_counter_ns() - start)
    times.sort()
    return {"book_frame_depth25_us": statistics.median(times) / 1000,
            "book_frame_depth25_p99_us": times[int(len(times) * 0.99)] / 1000}


# --- the feed process --------------------------------------------------------------------------
def _book_frames(books, dialect, n: int, venue: str = "bybit") -> list[str]:
    """The next ``n`` book messages of the simulated books, as the venue's frames (a
    change the subscribed depth does not show sends nothing: not counted)."""
    depth, symbols = FEEDS[venue]
    frames: list[str] = []
    with books.lock:  # a REST snapshot may be read meanwhile
        while len(frames) < n:
            symbol = books.rng.choice(symbols)
            book = books.book(symbol)
            prev = book.seq
            bids, asks = book.step()
            frame = dialect.encode_book(symbol, False, bids, asks, book.seq, prev, book.ts_ns,
                                        book, depth or FEED_LEVELS)
            if frame is not None:
                frames.append(frame)
    if dialect.numbers_frames:  # Coinbase: the connection's running number on each
        frames = [dialect.number(_CONNECTION, f) for f in frames]
    return frames


def _final(dialect, book, depth: int):
    """A book's last state as the client must hold it (Kraken: its top ``depth``)."""
    if hasattr(dialect, "book_text"):
        return dialect.book_text(book, depth)
    return book.snapshot()[:2]


async def serve(messages: int, final: Path, ahead: bool, seed: int = 5,
                venue: str = "bybit") -> None:
    """``ahead``: every frame made before the client comes (the server is then never
    what limits it); else made as it goes (bounded memory, for the long run). A
    venue whose books start from a REST snapshot (Binance) is served with its REST
    side, answered from the same books, and frames made as they go."""
    from websockets.asyncio.server import serve as ws_serve

    from rtkit.sim.book import SimBooks
    from rtkit.sim.dialects import get_dialect
    from rtkit.sim.market import Market
    from rtkit.sim.rest import SimRest
    from rtkit.sim.sending import ws_frame

    dialect = get_dialect(venue)
    depth, symbols = FEEDS[venue]
    books = SimBooks(seed)
    starts = []
    rest = None
    if venue in REST_SNAPSHOT_VENUES:
        ahead = False  # a snapshot of books made ahead would hold every diff
        for symbol in symbols:
            books.book(symbol)
        rest = SimRest(venue=venue, market=Market(1), depth_provider=books.depth_snapshot)
        rest.start()
    else:
        for symbol in symbols:
            book = books.book(symbol)
            bids, asks, seq = book.snapshot(depth or FEED_LEVELS)
            starts.append(dialect.encode_book(symbol, True, bids, asks, seq, 0, book.ts_ns,
                                              book, depth or FEED_LEVELS))
        if dialect.numbers_frames:
            starts = [dialect.number(_CONNECTION, f) for f in starts]
    made_ahead = b"".join(ws_frame(f.encode()) for f in starts + _book_frames(
        books, dialect, messages, venue)) if ahead else b""

    async def handler(ws):
        await ws.recv()  # the subscribe
        transport = ws.transport
        if ahead:
            for i in range(0, len(made_ahead), 1 << 18):
                transport.write(made_ahead[i : i + (1 << 18)])
                while transport.get_write_buffer_size() > 1 << 20:
                    await asyncio.sleep(0.0005)
        else:
            made, frames = 0, starts
            while made < messages:
                n = min(2_000, messages - made)
                frames += _book_frames(books, dialect, n, venue)
                made += n
                transport.write(b"".join(ws_frame(f.encode()) for f in frames))
                frames = []
                while transport.get_write_buffer_size() > 1 << 20:
                    await asyncio.sleep(0.0005)
        final.write_text(json.dumps({s: _final(dialect, books.book(s), depth)
                                     for s in symbols}))
        await ws.wait_closed()

    async with ws_serve(handler, "127.0.0.1", 0, compression=None, ping_interval=None,
                        max_size=None) as server:
        print(server.sockets[0].getsockname()[1], rest.url if rest else "", flush=True)
        await asyncio.Future()


#: venues whose books start from a REST snapshot: the feed serves it too
REST_SNAPSHOT_VENUES = ("binance", "binance-futures")
_FEED_PATHS = {"bybit": "/v5/public/spot", "binance": "/ws", "binance-futures": "/public/ws"}


@contextmanager
def feed_process(messages: int, final: Path, ahead: bool, venue: str = "bybit"):
    """The feed's WebSocket URL and its REST base (None for a venue without one)."""
    from rtkit.sim.dialects import get_dialect

    args = [PY, "-m", "benchmarks.books", "serve", "--messages", str(messages), "--final",
            str(final), "--venue", venue]
    proc = subprocess.Popen(args + (["--ahead"] if ahead else []), stdout=subprocess.PIPE,
                            text=True)
    try:
        port, _, rest_url = proc.stdout.readline().strip().partition(" ")  # type: ignore[union-attr]
        path = _FEED_PATHS.get(venue) or get_dialect(venue).path
        yield f"ws://127.0.0.1:{port}{path}", rest_url or None
    finally:
        proc.kill()
        proc.wait(10)


def through_pipeline(messages: int, ahead: bool, venue: str = "bybit") -> dict:
    """Book messages/s from the socket to SQLite, the books' verdict at the end."""
    import rtkit

    depth, symbols = FEEDS[venue]
    with tempfile.TemporaryDirectory() as folder:
        final = Path(folder) / "final.json"
        with feed_process(messages, final, ahead, venue) as (url, rest_url):
            rest = venue in REST_SNAPSHOT_VENUES
            c = rtkit.Collector(venue, list(symbols), url=url, db=Path(folder) / "b.sqlite",
                                kinds=["book"], depth=depth, rest_url=rest_url)
            # a REST snapshot is not a message on the socket
            expected_messages = messages + (0 if rest else len(symbols))
            start = time.perf_counter()
            c.start()
            deadline = start + 60 + messages / 2_000
            while time.perf_counter() < deadline:
                s = c.stats
                if s["book_messages"] >= expected_messages and s["book_deltas_pending"] == 0:
                    break
                time.sleep(0.05)
            elapsed = time.perf_counter() - start
            s = c.stats
            books = c.pipeline.books
            local = {sym: books.read(sym, lambda b: [[list(x) for x in b.levels("bid", 1000)],
                                                     [list(x) for x in b.levels("ask", 1000)]])
                     for sym in symbols}
            c.stop()
            expected = json.loads(final.read_text()) if final.exists() else None
    return {
        "messages": s["book_messages"],
        "resyncs": s["book_resyncs"],
        "per_s_stored": s["book_messages"] / elapsed,
        "rows_stored": s["book_deltas_stored"],
        "false_desyncs": s["book_desyncs"],
        "final_books_equal": float(local == expected),
    }


# --- the venues without proof: audits under a fast-moving book ---------------------------------
UNVERIFIED = ("coinbase-exchange", "bitstamp")
UNVERIFIED_SYMBOLS = ("BTC-USD", "ETH-USD")
#: seconds between two audits of a book in the unverified clean run
UNVERIFIED_AUDIT_EVERY_S = 1.0


def serve_unverified(venue: str, messages: int) -> None:
    """The simulator (books only, made as fast as the socket takes them) and its REST side
    answering from the same books; prints the two URLs, runs until killed."""
    from rtkit.sim import SimRest, Simulator

    sim = Simulator(venue, rate=1.0, count=0, book_rate=None, book_count=messages, seed=5)
    sim.start()
    rest = SimRest(sim, depth_provider=sim.books.depth_snapshot).start()
    print(sim.url, rest.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        rest.stop()
        sim.stop()


def unverified_run(venue: str, messages: int) -> dict:
    """Book messages/s of a venue without proof, its audits and their verdicts, and the
    final books against the venue's REST snapshot."""
    import rtkit
    from rtkit.books.parse import bitstamp, coinbase_exchange
    from rtkit.venues.book_fetch import rest_book_fetch

    args = [PY, "-m", "benchmarks.books", "serve-unverified", "--venue", venue, "--messages",
            str(messages)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    try:
        url, rest_url = proc.stdout.readline().split()  # type: ignore[union-attr]
        with tempfile.TemporaryDirectory() as folder:
            c = rtkit.Collector(venue, list(UNVERIFIED_SYMBOLS), url=url, rest_url=rest_url,
                                db=Path(folder) / "b.sqlite", kinds=["book"],
                                audit_every_s=UNVERIFIED_AUDIT_EVERY_S)
            start = time.perf_counter()
            c.start()
            deadline, last, still_since = start + 120 + messages / 2_000, -1, time.perf_counter()
            while time.perf_counter() < deadline:
                s = c.stats
                if s["book_messages"] != last:
                    last, still_since = s["book_messages"], time.perf_counter()
                elif (s["book_messages"] >= messages and s["books_good"] == len(UNVERIFIED_SYMBOLS)
                      and time.perf_counter() - still_since > 1.0):
                    break
                time.sleep(0.05)
            elapsed = still_since - start
            parse = coinbase_exchange if venue == "coinbase-exchange" else bitstamp
            fetch = rest_book_fetch(venue, rest_url, parse.rest_snapshot)
            books = c.pipeline.books
            equal = True
            for symbol in UNVERIFIED_SYMBOLS:
                venue_book = fetch(symbol)
                local = books.read(symbol, lambda b: (b.levels("bid", 10**6),
                                                      b.levels("ask", 10**6)))
                equal &= local == (venue_book.bids, venue_book.asks)
            c.stop()
            s = c.stats
            import sqlite3

            for row in sqlite3.connect(Path(folder) / "b.sqlite").execute(
                    "SELECT symbol, reason FROM book_events WHERE to_state = 'desynced' "
                    "LIMIT 5"):
                print(f"{venue} desync: {row}", file=sys.stderr)
    finally:
        proc.kill()
        proc.wait(10)
    return {"messages": s["book_messages"], "per_s": s["book_messages"] / elapsed,
            "audits": s["book_audits"], "audits_void": s["book_audits_void"],
            "false_desyncs": s["book_desyncs"],
            "final_books_equal": float(equal)}


def unverified_faults(venue: str, messages: int = 4_000) -> dict:
    """Each fault class a venue without proof can meet, injected every 400 book messages
    at 1,000 a second with an audit every 0.25 s: faults injected, desyncs (by the audit
    or at once), and how long the book was not good per resync (s, from book_events)."""
    import sqlite3
    import statistics as stats

    import rtkit
    from rtkit.sim import Faults, SimRest, Simulator

    out: dict = {}
    classes = {"corrupted": "book_corrupt_every", "crossed": "book_cross_every",
               "dropped": "book_drop_every", "reordered": "book_reorder_every",
               "duplicated": "book_duplicate_every", "closed": "book_close_every"}
    for fault, field in classes.items():
        sim = Simulator(venue, rate=1.0, count=0, book_rate=1_000.0, book_count=messages,
                        seed=3, faults=Faults(**{field: 400}))
        sim.start()
        rest = SimRest(sim, depth_provider=sim.books.depth_snapshot).start()
        with tempfile.TemporaryDirectory() as folder:
            db = Path(folder) / "f.sqlite"
            c = rtkit.Collector(venue, ["BTC-USD"], url=sim.url, db=db, kinds=["book"],
                                audit_every_s=0.25, backoff_initial_s=0.05,
                                flush_interval_s=0.2)
            c.start()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not (
                    sim.books.messages >= messages and c.stats["books_good"] == 1):
                time.sleep(0.05)
            time.sleep(1.5)  # the last audits
            c.stop()
            rows = sqlite3.connect(db).execute(
                "SELECT from_state, to_state, not_live_s FROM book_events").fetchall()
        rest.stop()
        sim.stop()
        back = [r[2] for r in rows if r[1] == "unverified" and r[2] is not None][1:]
        out[f"{fault}_injected"] = sim.book_faults[fault]
        out[f"{fault}_desyncs"] = sum(r[1] == "desynced" for r in rows)
        out[f"{fault}_restarts"] = sum(r[1] == "subscribing" for r in rows)
        out[f"{fault}_resync_s_median"] = stats.median(back) if back else 0.0
        out[f"{fault}_resync_s_max"] = max(back) if back else 0.0
    return out


def usdm_books_startup(n_books: int = 200, book_rate: float = 4_000.0) -> dict:
    """A collector of ``n_books`` Binance USD-M books (default depth 100, weight 5)
    against the simulator: diffs on its socket, snapshots from its REST side under the
    venue's published limit, through the keeper and the shared budget as in use.
    Seconds until every book is live, the budget's peak share of the venue's limit,
    the simulated venue's own count of it, and its 429s."""
    import rtkit
    from rtkit.sim import Simulator
    from rtkit.sim.rest import SimRest

    symbols = [f"S{i:03d}-USDT" for i in range(n_books)]
    with tempfile.TemporaryDirectory() as folder, \
            Simulator("binance-futures", rate=None, count=0, book_rate=book_rate, seed=9) as sim, \
            SimRest(sim) as rest:
        c = rtkit.Collector("binance-futures", symbols, url=sim.url, db=Path(folder) / "u.sqlite",
                            kinds=["book"], rest_url=rest.url)
        budget = c.pipeline.books._fetch.client.budget  # the venue's shared budget
        used_before = budget.used()
        start = time.perf_counter()
        c.start()
        deadline = start + 120
        while c.stats["books_good"] < n_books and time.perf_counter() < deadline:
            time.sleep(0.01)
        elapsed = time.perf_counter() - start
        s = c.stats
        c.stop()
    if s["books_good"] < n_books:
        raise RuntimeError(f"only {s['books_good']} of {n_books} USD-M books went live")
    return {
        "books_200_usdm_startup_s": elapsed,
        "books_200_usdm_snapshot_requests": s["book_snapshot_requests"],
        "books_200_usdm_peak_budget_share": (budget.peak - used_before) / budget.limit,
        "books_200_usdm_venue_peak_share": rest.used_peak / budget.limit,
        "books_200_usdm_429s": rest.statuses[429],
        "books_200_usdm_desyncs": s["book_desyncs"],
    }


def binance_resync_ms(venue: str, drops: int = 20, every: int = 250) -> dict:
    """Resync time of a Binance book on the simulator's loopback: a diff dropped every
    ``every`` of 1,000 book messages/s, each gap healed by a REST snapshot; the book's
    time not live from its ``book_events`` (desync → snapshot applied), in ms."""
    import sqlite3

    import rtkit
    from rtkit.sim import Faults, Simulator
    from rtkit.sim.rest import SimRest

    count = drops * every + every // 2
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "r.sqlite"
        with Simulator(venue, rate=100, book_rate=1_000.0, book_count=count, seed=11,
                       faults=Faults(book_drop_every=every)) as sim, SimRest(sim) as rest:
            c = rtkit.Collector(venue, ["BTC-USDT"], url=sim.url, db=db,
                                kinds=["trades", "book"], rest_url=rest.url,
                                flush_interval_s=0.2)
            c.start()
            deadline = time.perf_counter() + 60 + count / 1_000
            while time.perf_counter() < deadline and not (
                    sim.books.messages >= count and c.stats["books_good"] == 1
                    and c.stats["book_resyncs"] >= sim.book_faults["dropped"]):
                time.sleep(0.05)
            c.stop()
        outages = [row[0] * 1e3 for row in sqlite3.connect(db).execute(
            "SELECT not_live_s FROM book_events WHERE from_state = 'snapshot' "
            "AND to_state = 'live' ORDER BY at")][1:]  # the first is the start
    key = venue.replace("-", "_")
    if not outages:
        raise RuntimeError(f"{venue}: no resync measured")
    outages.sort()
    return {f"book_{key}_resyncs_measured": len(outages),
            f"book_{key}_resync_p50_ms": outages[len(outages) // 2],
            f"book_{key}_resync_max_ms": outages[-1]}


def resync_time(venue: str, messages: int = 5_100, drop_every: int = 250) -> dict:
    """How long a book is not live after a lost delta (desync → resubscribe → snapshot →
    live), over a loopback socket against the simulator: median and worst, in ms."""
    import sqlite3

    import rtkit
    from rtkit.sim import Faults, Simulator

    symbol = FEEDS[venue][1][0]
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "r.sqlite"
        sim = Simulator(venue, rate=100, book_rate=1_000.0, book_count=messages, seed=11,
                        faults=Faults(book_drop_every=drop_every))
        sim.start()
        c = rtkit.Collector(venue, [symbol], url=sim.url, db=db, kinds=["book"],
                            flush_interval_s=0.2)
        try:
            c.start()
            deadline = time.perf_counter() + 60
            while sim.books.messages < messages and time.perf_counter() < deadline:
                time.sleep(0.05)
            time.sleep(0.5)  # the last resync's rows reach the file
        finally:
            c.stop()
            sim.stop()
        outages = sqlite3.connect(db).execute(
            "SELECT not_live_s FROM book_events WHERE from_state = 'snapshot' AND "
            "to_state = 'live' AND not_live_s IS NOT NULL ORDER BY at").fetchall()[1:]
    ms = sorted(row[0] * 1000 for row in outages)  # the first start is no resync
    return {f"book_{venue}_resyncs": len(ms),
            f"book_{venue}_resync_median_ms": statistics.median(ms) if ms else float("nan"),
            f"book_{venue}_resync_max_ms": ms[-1] if ms else float("nan")}


def run(messages: int = 1_000_000, speed_messages: int = 200_000) -> dict:
    """The micro figures; books/s through the pipeline with frames made ahead (the
    feed never the limit); the long clean run with frames made as they go."""
    out = {}
    out.update(delta_cost())
    out.update(book_frame_cost())
    speed = through_pipeline(speed_messages, ahead=True)
    out["book_messages_per_s_stored"] = speed["per_s_stored"]
    out["book_speed_run_final_books_equal"] = speed["final_books_equal"]
    clean = through_pipeline(messages, ahead=False)
    out["book_pipeline_messages"] = clean["messages"]
    out["book_clean_run_messages_per_s"] = clean["per_s_stored"]
    out["book_clean_rows_stored"] = clean["rows_stored"]
    out["book_clean_false_desyncs"] = clean["false_desyncs"] + speed["false_desyncs"]
    out["book_clean_final_books_equal"] = clean["final_books_equal"]
    for venue in UNVERIFIED:
        audited = unverified_run(venue, messages)
        key = venue.replace("-", "_")
        out[f"book_{key}_clean_messages"] = audited["messages"]
        out[f"book_{key}_clean_messages_per_s"] = audited["per_s"]
        out[f"book_{key}_clean_audits"] = audited["audits"]
        out[f"book_{key}_clean_audits_void"] = audited["audits_void"]
        out[f"book_{key}_clean_false_desyncs"] = audited["false_desyncs"]
        out[f"book_{key}_clean_final_books_equal"] = audited["final_books_equal"]
    # Binance spot and USD-M: diffs on REST snapshots, the same long clean run each
    for venue in REST_SNAPSHOT_VENUES:
        key = venue.replace("-", "_")
        clean = through_pipeline(messages, ahead=False, venue=venue)
        out[f"book_{key}_clean_messages"] = clean["messages"]
        out[f"book_{key}_clean_messages_per_s"] = clean["per_s_stored"]
        out[f"book_{key}_clean_false_desyncs"] = clean["false_desyncs"]
        out[f"book_{key}_clean_resyncs"] = clean["resyncs"]
        out[f"book_{key}_clean_final_books_equal"] = clean["final_books_equal"]
        out.update(binance_resync_ms(venue))
    out.update(usdm_books_startup())
    for venue in CLEAN_VENUES:
        clean = through_pipeline(messages, ahead=False, venue=venue)
        out[f"book_{venue}_clean_messages"] = clean["messages"]
        out[f"book_{venue}_clean_messages_per_s"] = clean["per_s_stored"]
        out[f"book_{venue}_clean_false_desyncs"] = clean["false_desyncs"]
        out[f"book_{venue}_clean_final_books_equal"] = clean["final_books_equal"]
        out.update(resync_time(venue))
    out.update(kraken_clean_runs(messages))
    return out


def kraken_clean_runs(messages: int = 1_000_000) -> dict:
    """Kraken v2 and v1: ``messages`` clean updates at depth 10 of 50-level books, each
    one's CRC32 checked against the local book's top 10 (a v2 snapshot's too); no false
    desync allowed, the final books equal the feed's. Then the lost-update replay."""
    from benchmarks import books_kraken

    out: dict = {}
    for venue in ("kraken", "kraken-v1"):
        key = "book_" + venue.replace("-", "_")
        clean = through_pipeline(messages, ahead=False, venue=venue)
        out[f"{key}_clean_messages_checksummed"] = clean["messages"]
        out[f"{key}_clean_messages_per_s"] = clean["per_s_stored"]
        out[f"{key}_clean_false_desyncs"] = clean["false_desyncs"]
        out[f"{key}_clean_final_books_equal"] = clean["final_books_equal"]
    out.update(books_kraken.run(updates=min(messages, 100_000)))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.books")
    parser.add_argument("mode", nargs="?", default="bench",
                        choices=("bench", "serve", "serve-unverified", "unverified",
                                 "unverified-faults"))
    parser.add_argument("--venue", choices=(*FEEDS, *UNVERIFIED),
                        help="serve: a feed's venue (default bybit); the unverified modes: "
                        "coinbase-exchange (default) or bitstamp")
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--final", type=Path)
    parser.add_argument("--ahead", action="store_true")
    parser.add_argument("--kraken-only", action="store_true",
                        help="only the Kraken clean runs and the lost-update replay")
    parser.add_argument("--clean-only", choices=CLEAN_VENUES,
                        help="only this venue's long clean run and its resync time")
    args = parser.parse_args(argv)
    if args.venue is None:
        args.venue = "coinbase-exchange" if "unverified" in args.mode else "bybit"
    if args.mode == "serve":
        asyncio.run(serve(args.messages, args.final, args.ahead, venue=args.venue))
        return 0
    if args.clean_only:
        figures = through_pipeline(args.messages, False, args.clean_only)
        figures.update(resync_time(args.clean_only))
        for key, value in figures.items():
            print(f"{key:<40} {value:>14,.2f}")
        return 0
    if args.kraken_only:
        for key, value in kraken_clean_runs(args.messages).items():
            print(f"{key:<48} {value:>14,.2f}")
        return 0
    if args.mode == "serve-unverified":
        serve_unverified(args.venue, args.messages)
        return 0
    if args.mode == "unverified-faults":  # one venue's faults, detected and resynced
        for key, value in unverified_faults(args.venue).items():
            print(f"{key:<40} {value:>14,.3f}")
        return 0
    if args.mode == "unverified":  # one venue's clean run alone
        for key, value in unverified_run(args.venue, args.messages).items():
            print(f"{key:<40} {value:>14,.2f}")
        return 0
    for key, value in run(args.messages).items():
        print(f"{key:<40} {value:>14,.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
