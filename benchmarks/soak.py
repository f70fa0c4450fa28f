"""Soak: minutes of steady collection under periodic faults, with RSS at start and end.

The simulator runs as ``rtkit sim`` in a process of its own (so its memory is
not counted) with fault flags: abrupt drops, hostile frames, duplicates and
skipped ids. The collector runs here with a small ring that wraps many times
and a pending bound smaller than what a storage stall holds back, and every
``STALL_EVERY_S`` another connection holds the database's write lock for
``STALL_S`` seconds. At the end every frame the simulator sent must be
accounted for. ``RTKIT_SOAK_S`` sets the duration in seconds (default 300).

RSS grows while the ring fills and while SQLite's page cache grows with the
database (up to its 64 MiB), so the figure that shows a leak or its absence is
the growth over the second half, once both are full (at this rate the cache
fills in about two minutes).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import closing, contextmanager
from pathlib import Path

from rtkit.collector import Collector

DURATION_S = float(os.environ.get("RTKIT_SOAK_S", 300))
RATE = 5_000
CAPACITY = 100_000
PENDING_LIMIT = 20_000  # a stall holds back 25,000 ticks: the overflow policy gets used
STALL_EVERY_S, STALL_S = 60.0, 5.0
SAMPLE_EVERY_S = 10.0
#: the writing connection's SQLite page cache (rtkit.store_schema._CACHE_KIB)
SQLITE_CACHE_MIB = 64
#: what one pending tick costs in memory, measured (tuple, floats, id, list slot, and
#: its row while a refused flush has it out)
PENDING_TICK_BYTES = 250
SIM_FLAGS = ["--drop-every", "20000", "--bad-frame-every", "997", "--duplicate-every", "1009",
             "--skip-id-every", "5003", "--overlap", "200"]


def rss_mib(pid: int | str = "self") -> float:
    """Resident set size of a process, MiB (Linux)."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024


def _sqlite_memory_used():
    """``sqlite3_memory_used`` of the SQLite library Python loaded, or None if not found."""
    name = ctypes.util.find_library("sqlite3")
    if not name:
        return None
    function = ctypes.CDLL(name).sqlite3_memory_used
    function.restype = ctypes.c_int64
    return function


_SQLITE_MEMORY_USED = _sqlite_memory_used()


def sqlite_mib() -> float:
    """Memory SQLite holds in this process (page caches above all), MiB; 0 if unknown."""
    return _SQLITE_MEMORY_USED() / 2**20 if _SQLITE_MEMORY_USED else 0.0


@contextmanager
def simulator(duration_s: float):
    """``rtkit sim`` in its own process; yields (process, url)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "rtkit", "sim", "binance", "--rate", str(RATE), "--seed", "1",
         "--duration", str(duration_s + 60), *SIM_FLAGS], stdout=subprocess.PIPE, text=True)
    try:
        url = re.search(r"on (ws://\S+)", proc.stdout.readline()).group(1)
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def frames_served(proc: subprocess.Popen) -> int:
    """Stop the simulator as Ctrl-C would and read how many frames it sent."""
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)  # a loaded machine can take long to drain
    return int(re.search(r"in ([\d,]+) frames", out).group(1).replace(",", ""))


def hold_write_lock(db: Path, seconds: float) -> None:
    # waits (up to 10 s) for the collector's own write to end, then takes the lock
    with closing(sqlite3.connect(db, timeout=10)) as blocker:
        blocker.execute("BEGIN EXCLUSIVE")
        time.sleep(seconds)  # the stall is the point
        blocker.rollback()


def run() -> dict:
    with tempfile.TemporaryDirectory() as tmp, simulator(DURATION_S) as (sim, url):
        db = Path(tmp) / "soak.sqlite"
        c = Collector("binance", ["BTC-USDT", "ETH-USDT"], url=url, db=db, capacity=CAPACITY,
                      pending_limit=PENDING_LIMIT, flush_interval_s=1.0, backoff_initial_s=0.2)
        c.start()
        try:
            measured = _soak(c, sim, db)
        finally:
            c.stop()  # a failed soak must not leave its collector running
    return measured


def _soak(c: Collector, sim: subprocess.Popen, db: Path) -> dict:
    """Run ``c`` for DURATION_S with write-lock stalls, then account for every frame."""
    t0 = time.monotonic()
    samples: list[tuple[float, float, float]] = []  # (s, RSS MiB, SQLite's share MiB)
    stalls = max_pending = 0
    next_stall, next_sample = t0 + STALL_EVERY_S, t0 + 5.0
    while (now := time.monotonic()) - t0 < DURATION_S:
        if now >= next_stall:
            hold_write_lock(db, STALL_S)
            stalls += 1
            next_stall += STALL_EVERY_S
        if now >= next_sample:
            samples.append((now - t0, rss_mib(), sqlite_mib()))
            s = c.stats
            max_pending = max(max_pending, s["pending"])
            print(f"  soak {now - t0:5.0f}s  rss {samples[-1][1]:6.1f} MiB (SQLite "
                  f"{samples[-1][2]:5.1f})  ticks "
                  f"{s['ticks']:>9,}  pending {s['pending']:>6,}  {s['status']}",
                  file=sys.stderr, flush=True)
            next_sample += SAMPLE_EVERY_S
        time.sleep(0.2)
    samples.append((time.monotonic() - t0, rss_mib(), sqlite_mib()))
    sent = frames_served(sim)
    deadline = time.monotonic() + 10
    while c.stats["frames"] < sent and time.monotonic() < deadline:
        time.sleep(0.05)
    c.stop()
    s = c.stats
    with closing(sqlite3.connect(db)) as conn:
        in_db = conn.execute("SELECT count(*) FROM ticks").fetchone()[0]
    unaccounted = (abs(sent - s["frames"])
                   + abs(s["frames"] - s["tick_frames"] - s["control"] - s["rejected_frames"])
                   + abs(s["ticks"] - s["stored"] - s["duplicates"] - s["pending"]
                         - s["dropped_overflow"] - s["unstorable"])
                   + abs(in_db - s["stored"]))
    (_, start, sqlite_start), (seconds, end, sqlite_end) = samples[0], samples[-1]
    half = min(samples, key=lambda sample: abs(sample[0] - seconds / 2))[1]
    ours = (CAPACITY * 47 + PENDING_LIMIT * PENDING_TICK_BYTES) / 2**20  # ring + pending
    return {
        "soak_seconds": round(seconds),
        "soak_ticks": s["ticks"],
        "soak_rss_start_mib": start,
        "soak_rss_end_mib": end,
        "soak_rss_max_mib": max(r for _, r, _ in samples),
        "soak_rss_growth_mib": end - start,
        "soak_rss_growth_second_half_mib": end - half,
        "soak_memory_bound_mib": ours + SQLITE_CACHE_MIB,
        "soak_sqlite_start_mib": sqlite_start,
        "soak_sqlite_end_mib": sqlite_end,
        "soak_growth_besides_sqlite_mib": (end - sqlite_end) - (start - sqlite_start),
        "soak_ring_and_pending_bound_mib": ours,
        "soak_max_pending": max_pending,
        "soak_storage_stalls": stalls,
        "soak_dropped_overflow": s["dropped_overflow"],
        "soak_reconnects": s["reconnects"],
        "soak_rejected": s["rejected"],
        "soak_gaps": s["gaps"],
        "soak_frames_unaccounted": unaccounted,
    }
