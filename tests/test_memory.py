"""Bounded memory: a feed faster than storage never grows memory past the ring's
capacity plus the pending bound, and what does not fit is counted, never silent."""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import rtkit
from benchmarks.soak import rss_mib
from rtkit.sim import Simulator
from tests.conftest import wait_for

pytestmark = pytest.mark.usefixtures("no_thread_leak")
SYMBOLS = ["BTC-USDT", "ETH-USDT"]


@contextlib.contextmanager
def storage_stalled(db):
    """Another process holds the database's write lock for the whole block."""
    rtkit.TickStore(db).close()
    with contextlib.closing(sqlite3.connect(db, timeout=0)) as blocker:
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            blocker.rollback()


@contextlib.contextmanager
def simulator_process(*flags: str):
    """``rtkit sim`` in its own process, so its memory is not this one's; yields its url."""
    proc = subprocess.Popen([sys.executable, "-m", "rtkit", "sim", "binance", *flags],
                            stdout=subprocess.PIPE, text=True)
    try:
        yield re.search(r"on (ws://\S+)", proc.stdout.readline()).group(1)
    finally:
        proc.kill()
        proc.wait(10)


def test_overflow_beyond_pending_limit_is_counted_and_shown(db):
    with Simulator("binance", rate=None, count=6000, seed=5) as sim, storage_stalled(db):
        c = rtkit.collect("binance", SYMBOLS, url=sim.url, db=db, capacity=2000,
                          pending_limit=1000, flush_interval_s=0.1)
        wait_for(lambda: c.stats["ticks"] == 6000 and c.status == "storage_error")
        s = c.stats
        assert len(c.df) == 2000  # the ring keeps the newest, whatever storage does
        # what arrives together (one socket read) is queued or dropped together: up to
        # the limit, never over it
        assert 0 < s["pending"] <= 1000 and s["pending"] + s["dropped_overflow"] == 6000
        assert (f"{s['pending']:,} ticks kept in memory, {s['dropped_overflow']:,} more dropped "
                "over pending_limit") in c.status.reason
    wait_for(lambda: c.stats["pending"] == 0)
    c.stop()
    s = c.stats
    assert s["ticks"] == 6000 == s["stored"] + s["dropped_overflow"]
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT count(*) FROM ticks").fetchone()[0] == s["stored"]
        counters = conn.execute("SELECT counters FROM runs").fetchone()[0]
    # the run's record says what was dropped
    assert f'"dropped_overflow": {s["dropped_overflow"]}' in counters


def test_memory_stays_bounded_while_storage_is_stalled(db):
    """250,000 ticks against a stalled database: without the bounds the pending
    queue alone would grow by ~40 MiB between the two measurements."""
    with simulator_process("--rate", "0", "--count", "250000", "--seed", "3") as url, \
            storage_stalled(db):
        c = rtkit.collect("binance", SYMBOLS, url=url, db=db, capacity=20_000,
                          pending_limit=10_000, flush_interval_s=0.1)
        wait_for(lambda: c.stats["ticks"] >= 50_000, 20)  # ring and pending are full
        before = rss_mib()
        wait_for(lambda: c.stats["ticks"] >= 250_000, 30)
        grown = rss_mib() - before
        s = c.stats
        c.stop()
    assert grown < 8, f"RSS grew {grown:.1f} MiB with the ring and the pending queue full"
    assert s["ring_rows"] == 20_000 and s["pending"] <= 10_000
    assert s["dropped_overflow"] == s["ticks"] - s["pending"]


# what the README's memory table says of the two per-venue remembering structures, each
# filled to its bound in a child process with the longest keys validation lets through
FILL = textwrap.dedent("""
    import json, sys
    from rtkit.gaps import RecentIds
    from rtkit.validate import MAX_TRADE_ID_CHARS
    from rtkit.venues import get_adapter

    def rss_mib():  # the current size: what the filled structure holds at the end
        with open("/proc/self/status") as status:
            line = next(x for x in status if x.startswith("VmRSS:"))
        return int(line.split()[1]) / 1024

    what = sys.argv[1]
    before = rss_mib()
    if what == "recent_ids":  # 50,000 remembered, then a reconnect's 50,000 checked
        recent, n = RecentIds(), 0
        for phase in range(2):
            if phase:
                recent.connection_opened()
            for _ in range(100):
                batch = []
                for _ in range(1000):
                    n += 1
                    batch.append(("BTC-USDT", f"{n:0{MAX_TRADE_ID_CHARS}d}", 0, 1.0, 1.0, 0))
                recent.new_ticks(batch)
        known = len(recent._recent) + len(recent._before or ())
    else:  # 30,000 distinct wire symbols, each the longest that reads as one
        symbols = get_adapter("binance")._symbol
        for i in range(30_000):
            symbols("A" * 21 + f"{i:06d}" + "USDT")  # AAA…000123-USDT: 32 characters
        known = len(symbols._known)
    print(json.dumps({"grown_mib": rss_mib() - before, "known": known}))
""")


@pytest.mark.parametrize(("what", "bound_mib"), [("recent_ids", 40), ("symbol_cache", 8)])
def test_remembered_ids_and_symbols_stay_within_the_readme_bound(what, bound_mib):
    done = subprocess.run([sys.executable, "-c", FILL, what], capture_output=True, text=True,
                          timeout=120, cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.splitlines()[-1])
    assert out["known"] >= 10_000  # filled to its bound, so the figure is the bound's
    assert out["grown_mib"] < bound_mib, f"{what} grew {out['grown_mib']:.1f} MiB"
