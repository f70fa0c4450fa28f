"""Order books: the cost of one delta, of ``c.book(...)``, and books through the whole
pipeline (socket → adapter → machine → SQLite), with a long clean run that must
show no false desync and end with the local book equal to the feed's.

The feed is its own process (``python -m benchmarks.books serve``): Bybit
``orderbook.50`` frames of simulated books (:mod:`rtkit.sim.book`), made as it
goes and written as fast as the socket takes them; at the end it writes each
book's last state to a file for the client to compare, level by level. The
long clean run is repeated for the other venues in :data:`CLEAN_VENUES` (their
dialects' frames: OKX ``books`` with ``prevSeqId``, Coinbase ``l2_data`` with the
connection's ``sequence_num`` on every frame).

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
#: venue → (its symbols, the collector's depth=) for the feed and the clean runs
FEEDS = {"bybit": (SYMBOLS, 50), "okx": (SYMBOLS, None), "coinbase": (("BTC-USD", "ETH-USD"), None)}
#: venues whose long clean run follows Bybit's (no false desync over the run)
CLEAN_VENUES = ("okx", "coinbase")
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
class _Connection:
    """The one connection of the feed, for a dialect that numbers a connection's frames."""


_CONNECTION = _Connection()


def _book_frames(books, dialect, n: int, symbols=SYMBOLS) -> list[str]:
    """The next ``n`` book messages of the simulated books, as the dialect's frames."""
    frames = []
    for _ in range(n):
        symbol = books.rng.choice(symbols)
        book = books.book(symbol)
        prev = book.seq
        bids, asks = book.step()
        frames.append(dialect.encode_book(symbol, False, bids, asks, book.seq, prev,
                                          book.ts_ns, book, 50))
    if dialect.numbers_frames:
        frames = [dialect.number(_CONNECTION, f) for f in frames]
    return frames


async def serve(messages: int, final: Path, ahead: bool, seed: int = 5,
                venue: str = "bybit") -> None:
    """``ahead``: every frame made before the client comes (the server is then never
    what limits it); else made as it goes (bounded memory, for the long run)."""
    from websockets.asyncio.server import serve as ws_serve

    from rtkit.sim.book import SimBooks
    from rtkit.sim.dialects import get_dialect
    from rtkit.sim.sending import ws_frame

    dialect = get_dialect(venue)
    symbols = FEEDS[venue][0]
    books = SimBooks(seed)
    starts = []
    for symbol in symbols:
        book = books.book(symbol)
        bids, asks, seq = book.snapshot(50)
        starts.append(dialect.encode_book(symbol, True, bids, asks, seq, 0, book.ts_ns, book, 50))
    if dialect.numbers_frames:
        starts = [dialect.number(_CONNECTION, f) for f in starts]
    made_ahead = b"".join(ws_frame(f.encode()) for f in starts + _book_frames(
        books, dialect, messages, symbols)) if ahead else b""

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
                frames += _book_frames(books, dialect, n, symbols)
                made += n
                transport.write(b"".join(ws_frame(f.encode()) for f in frames))
                frames = []
                while transport.get_write_buffer_size() > 1 << 20:
                    await asyncio.sleep(0.0005)
        final.write_text(json.dumps({s: books.book(s).snapshot()[:2] for s in symbols}))
        await ws.wait_closed()

    async with ws_serve(handler, "127.0.0.1", 0, compression=None, ping_interval=None,
                        max_size=None) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()


@contextmanager
def feed_process(messages: int, final: Path, ahead: bool, venue: str = "bybit"):
    args = [PY, "-m", "benchmarks.books", "serve", "--messages", str(messages), "--final",
            str(final), "--venue", venue]
    proc = subprocess.Popen(args + (["--ahead"] if ahead else []), stdout=subprocess.PIPE,
                            text=True)
    try:
        port = int(proc.stdout.readline())  # type: ignore[union-attr]
        yield f"ws://127.0.0.1:{port}/v5/public/spot"
    finally:
        proc.kill()
        proc.wait(10)


def through_pipeline(messages: int, ahead: bool, venue: str = "bybit") -> dict:
    """Book messages/s from the socket to SQLite, the books' verdict at the end."""
    import rtkit

    symbols, depth = FEEDS[venue]
    with tempfile.TemporaryDirectory() as folder:
        final = Path(folder) / "final.json"
        with feed_process(messages, final, ahead, venue) as url:
            c = rtkit.Collector(venue, list(symbols), url=url, db=Path(folder) / "b.sqlite",
                                kinds=["book"], depth=depth)
            start = time.perf_counter()
            c.start()
            deadline = start + 60 + messages / 2_000
            while time.perf_counter() < deadline:
                s = c.stats
                if s["book_messages"] >= messages + len(symbols) and s["book_deltas_pending"] == 0:
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
        "per_s_stored": s["book_messages"] / elapsed,
        "rows_stored": s["book_deltas_stored"],
        "false_desyncs": s["book_desyncs"],
        "final_books_equal": float(local == expected),
    }


def resync_time(venue: str, messages: int = 5_100, drop_every: int = 250) -> dict:
    """How long a book is not live after a lost delta (desync → resubscribe → snapshot →
    live), over a loopback socket against the simulator: median and worst, in ms."""
    import sqlite3

    import rtkit
    from rtkit.sim import Faults, Simulator

    symbol = FEEDS[venue][0][0]
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
    for venue in CLEAN_VENUES:
        clean = through_pipeline(messages, ahead=False, venue=venue)
        out[f"book_{venue}_clean_messages"] = clean["messages"]
        out[f"book_{venue}_clean_messages_per_s"] = clean["per_s_stored"]
        out[f"book_{venue}_clean_false_desyncs"] = clean["false_desyncs"]
        out[f"book_{venue}_clean_final_books_equal"] = clean["final_books_equal"]
        out.update(resync_time(venue))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.books")
    parser.add_argument("mode", nargs="?", default="bench", choices=("bench", "serve"))
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--final", type=Path)
    parser.add_argument("--ahead", action="store_true")
    parser.add_argument("--venue", default="bybit", choices=sorted(FEEDS))
    parser.add_argument("--clean-only", choices=CLEAN_VENUES,
                        help="only this venue's long clean run")
    args = parser.parse_args(argv)
    if args.mode == "serve":
        asyncio.run(serve(args.messages, args.final, args.ahead, venue=args.venue))
        return 0
    if args.clean_only:
        figures = through_pipeline(args.messages, False, args.clean_only)
        figures.update(resync_time(args.clean_only))
        for key, value in figures.items():
            print(f"{key:<40} {value:>14,.2f}")
        return 0
    for key, value in run(args.messages).items():
        print(f"{key:<40} {value:>14,.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
