"""A book waiting for its REST snapshot buffers at most ``MAX_BUFFERED`` messages: a
snapshot that never comes, under a stream of hundreds of thousands of messages, keeps the
buffer's memory at ``MAX_BUFFERED`` × the size of one message, however long it waits.
Beyond the bound the oldest messages go, counted (``buffer_overflow``), and a snapshot
older than what is left does not bridge it: it is fetched again.

Each run is a child process measuring its own peak RSS (``VmHWM``), so the bound is the
child's, not whatever the pytest process already holds. A run that grows past three
times the bound stops early, so a broken bound fails the test without eating the machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from rtkit.books.machine import MAX_BUFFERED
from rtkit.sim import Simulator
from rtkit.sim.rest import SimRest

ROOT = Path(__file__).resolve().parents[1]
MIB = 1024 * 1024
#: what a collector itself takes once started besides its books (threads, SQLite, the
#: ring at capacity 1,000, the modules its first messages import)
COLLECTOR_SLACK = 24 * MIB
#: the allocator's share over the objects' own bytes: messages dropped from the front of
#: the buffer free memory in the middle of the allocator's arenas, reused only in part
ALLOCATOR_OVERHEAD = 1.25

# the bytes one buffered message holds: the message, its level lists, their pairs and
# strings, its numbers (an int below 257 is shared, counting it overstates a little)
DEEP_SIZE = textwrap.dedent("""
    import sys

    def message_bytes(msg):
        total = sys.getsizeof(msg)
        for name in type(msg).__slots__:
            value = getattr(msg, name)
            total += sys.getsizeof(value)
            if isinstance(value, list):
                total += sum(sys.getsizeof(pair) + sum(map(sys.getsizeof, pair))
                             for pair in value)
        return total
""")

# a real collector on the simulator, whose REST side refuses every snapshot: the book
# stays ``buffering`` while the socket brings its messages as fast as they are taken
OVER_THE_SOCKET = DEEP_SIZE + textwrap.dedent("""
    import json, sys, time
    import rtkit
    from rtkit.books.machine import MAX_BUFFERED
    from tests.conftest import peak_rss_kib

    url, db, early, late, give_up_kib = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])
    c = rtkit.Collector("binance", ["BTC-USDT"], url=url, db=db, kinds=["book"],
                        capacity=1000, flush_interval_s=0.2)
    before = peak_rss_kib()
    c.start()

    def peak_at(n):
        deadline = time.monotonic() + 120
        while c.stats["book_messages"] < n and time.monotonic() < deadline:
            if peak_rss_kib() - before > give_up_kib:
                break  # the bound is broken: stop before the machine suffers
            time.sleep(0.02)
        return peak_rss_kib()

    peak_early = peak_at(early)
    peak_late = peak_at(late)
    keeper = c.pipeline.books
    with keeper._lock:
        m = keeper.machines["BTC-USDT"]
        buffered = list(m._buffer)
        out = {"state": m.state, "messages": m.messages, "buffered": len(buffered),
               "overflow": m.buffer_overflow, "resyncs": m.resyncs,
               "message_bytes": max(map(message_bytes, buffered), default=0)}
    out["stats_overflow"] = c.stats["book_buffer_overflow"]  # what a user sees
    c.stop()
    print(json.dumps({**out, "before_kib": before, "early_kib": peak_early,
                      "late_kib": peak_late}))
""")

# the parser and the keeper fed Binance diffs of LEVELS levels a side, none answered
LARGE_LEVELS = DEEP_SIZE + textwrap.dedent("""
    import json, sys
    from rtkit.books import BookMessage
    from rtkit.books.keeper import keeper_for
    from rtkit.books.parse.binance import parse
    from rtkit.venues import get_adapter
    from tests.conftest import peak_rss_kib

    early, late, levels, give_up_kib = map(int, sys.argv[1:])
    side = lambda base: json.dumps([[f"{base + k}.{k:02d}", f"{k + 1}.125"]
                                    for k in range(levels)])
    frame = ('{"e":"depthUpdate","E":1764000000000,"s":"BTCUSDT","U":%d,"u":%d,'
             '"b":' + side(100) + ',"a":' + side(100 + levels) + '}')
    keeper = keeper_for(get_adapter("binance"), ["BTC-USDT"])  # no fetch: no answer ever
    m = keeper.machines["BTC-USDT"]
    before = peak_rss_kib()
    peaks, n = [], 0
    for upto in (early, late):
        while n < upto and peak_rss_kib() - before <= give_up_kib:
            for _ in range(1000):
                n += 1
                keeper.feed(parse((frame % (n, n)).encode(), n).book)
        peaks.append(peak_rss_kib())
    out = {"state": m.state, "messages": m.messages, "buffered": len(m._buffer),
           "overflow": m.buffer_overflow,
           "message_bytes": max(map(message_bytes, m._buffer))}
    # what the oldest diff's snapshot makes of a buffer that has lost it: asked again
    old = BookMessage("BTC-USDT", 1, n + 1, True, [("99.0", "1")], [("999.0", "1")], seq=0,
                      source="rest")
    step = m.snapshot(old)
    out["after_old_snapshot"] = m.state, m.refetches, step.action
    # a snapshot the kept diffs follow: the book is live, the kept diffs applied
    fresh = BookMessage("BTC-USDT", 1, n + 2, True, [("99.0", "1")], [("999.0", "1")],
                        seq=n - 5, source="rest")
    step = m.snapshot(fresh)
    out["after_fresh_snapshot"] = m.state, sorted({r[4] for r in step.deltas if r[5] == 0})
    print(json.dumps({**out, "before_kib": before, "early_kib": peaks[0],
                      "late_kib": peaks[1]}))
""")


def run_child(script: str, *args: object) -> dict:
    done = subprocess.run([sys.executable, "-c", script, *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def check_bounded(out: dict, early: int, late: int, slack: int) -> None:
    """Filled to the bound by ``early`` messages, then not one byte more by ``late``."""
    bound = ALLOCATOR_OVERHEAD * MAX_BUFFERED * out["message_bytes"]
    grown = (out["late_kib"] - out["before_kib"]) * 1024
    later = (out["late_kib"] - out["early_kib"]) * 1024
    assert out["messages"] >= late, f"stopped at {out['messages']:,}: grew {grown / MIB:.0f} MiB"
    assert out["buffered"] == MAX_BUFFERED and out["overflow"] == out["messages"] - MAX_BUFFERED
    if "stats_overflow" in out:  # a collector's: c.stats says so
        assert out["stats_overflow"] >= out["overflow"] > 0
    assert grown < bound + slack, (f"grew {grown / MIB:.1f} MiB, bound {bound / MIB:.1f} MiB "
                                   f"({ALLOCATOR_OVERHEAD} × {MAX_BUFFERED:,} × "
                                   f"{out['message_bytes']} B) + slack")
    # messages beyond the bound cost nothing more: without it, the late ones alone would take
    # (late - early) × message_bytes
    assert later < (late - early) * out["message_bytes"] / 20, (
        f"grew {later / MIB:.1f} MiB more from {early:,} to {late:,} messages")


def test_a_book_whose_snapshot_never_comes_buffers_at_most_max_buffered_socket_messages(tmp_path):
    early, late = 3 * MAX_BUFFERED, 200_000
    with Simulator("binance", rate=None, count=0, book_rate=None, book_count=late + 20_000,
                   seed=3) as sim, SimRest(sim) as rest:
        rest.inject(503, count=1_000, path="/api/v3/depth")  # no snapshot, ever
        out = run_child(OVER_THE_SOCKET, sim.url, tmp_path / "ticks.sqlite", early, late,
                        60 * MIB // 1024)
    assert out["state"] == "buffering" and out["resyncs"] == 0
    check_bounded(out, early, late, COLLECTOR_SLACK)


def test_buffered_diffs_with_large_level_lists_stay_within_max_buffered_times_their_size():
    early, late, levels = 3 * MAX_BUFFERED, 200_000, 20
    out = run_child(LARGE_LEVELS, early, late, levels, 300 * MIB // 1024)
    assert out["state"] == "buffering"
    check_bounded(out, early, late, 4 * MIB)
    assert out["message_bytes"] > 2 * levels * 100  # each buffered diff holds its 40 levels
    # the snapshot of the first diffs, lost beyond the bound, does not bridge what is kept:
    # asked again; one the kept diffs follow makes the book live with them applied
    assert out["after_old_snapshot"] == ["buffering", 1, "fetch_snapshot"]
    n = out["messages"]
    assert out["after_fresh_snapshot"] == ["live", list(range(n - 4, n + 1))]
