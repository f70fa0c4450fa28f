"""Chaos: a Collector against each fault the simulator injects, over real loopback sockets.

Every case checks what rtkit promises a researcher: the collector and the
notebook thread keep working, reconnects back off instead of looping, every
frame the simulator sent is accounted for category by category, nothing
malformed reaches the ``ticks`` table, and ``.status`` tells the truth.
"""

from __future__ import annotations

import re
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field

import pytest

import rtkit
from rtkit.sim import Faults, Simulator, get_dialect
from tests.conftest import wait_for

pytestmark = pytest.mark.usefixtures("no_thread_leak")
SYMBOLS = ("BTC-USDT", "ETH-USDT")
#: longest a notebook read (``.tail``, ``.stats``, ``.status``) may take while faults go on
NOTEBOOK_READ_S = 0.5


@dataclass
class Chaos:
    """One fault scenario: the simulator's settings and the collector's options."""

    faults: Faults
    count: int = 1300
    rate: float = 4000.0
    overlap: int = 0
    venue: str = "binance"
    options: dict = field(default_factory=dict)

    def collector_options(self) -> dict:
        return {"flush_interval_s": 0.1, "backoff_initial_s": 0.05, **self.options}


@dataclass
class Run:
    sim: Simulator
    collector: rtkit.Collector
    stats: dict
    seen: set[tuple[str, str]]  # (state, reason) pairs the notebook saw


def notebook_read(c: rtkit.Collector, seen: set) -> dict:
    """What a notebook cell does while collection runs; it must never block."""
    t = time.monotonic()
    tail, stats, status = c.tail(5), c.stats, c.status
    assert time.monotonic() - t < NOTEBOOK_READ_S
    assert len(tail) <= 5 and stats["ring_rows"] <= stats["ticks"]
    seen.add((str(status), status.reason))
    return stats


def run(case: Chaos, db, until=None, timeout_s: float = 15.0) -> Run:
    """Collect from a faulty simulator until every trade was generated and read
    (or ``until(collector)``), then stop the simulator first, so what it sent
    is final, and let the collector read the rest before it stops."""
    seen: set[tuple[str, str]] = set()
    symbols = list(get_dialect(case.venue).example_symbols)
    with Simulator(case.venue, rate=case.rate, count=case.count, seed=7, overlap=case.overlap,
                   faults=case.faults) as sim:
        c = rtkit.collect(case.venue, symbols, url=sim.url, db=db, **case.collector_options())

        def everything_read(c) -> bool:
            return sim.all_sent and c.stats["frames"] >= sim.frames_sent

        try:
            done = until or everything_read
            wait_for(lambda: notebook_read(c, seen) and done(c), timeout_s)
        except BaseException:
            c.stop()
            raise
    try:
        wait_for(lambda: notebook_read(c, set())["frames"] >= sim.frames_sent, 5)
        wait_for(lambda: c.stats["pending"] == 0, 5)
    finally:
        c.stop()
    return Run(sim, c, c.stats, seen)


def stored_rows(db) -> list[tuple]:
    return sorted(sqlite3.connect(db).execute(
        "SELECT symbol, trade_id, timestamp, price, volume, side FROM ticks").fetchall())


def expected_rows(venue: str, trades) -> list[tuple]:
    dialect = get_dialect(venue)
    return sorted((t.symbol, dialect.expected_trade_id(t), t.ts_ns, float(t.price),
                   float(t.volume), t.side) for t in trades)


def max_attempts_per_s(attempts: list[float]) -> int:
    """The most connection attempts the simulator saw in any one-second window."""
    return max((sum(1 for b in attempts if a <= b < a + 1.0) for a in attempts), default=0)


def assert_backs_off(r: Run, case: Chaos) -> None:
    """No tight loop: every reconnect waited at least half its initial backoff."""
    initial = case.collector_options()["backoff_initial_s"]
    assert max_attempts_per_s(r.sim.attempts) <= 1 / (0.5 * initial) + 1
    assert r.stats["connections"] == r.sim.connections


def assert_frames_accounted(r: Run) -> None:
    """Every frame sent is a tick frame, a reject with the expected reason, or a
    control message; every tick is stored or a counted duplicate."""
    s, sent = r.stats, r.sim.sent
    assert s["frames"] == r.sim.frames_sent
    assert s["frames"] == s["tick_frames"] + s["control"] + s["rejected_frames"]
    assert s["control"] == sent["control"]
    assert s["rejected_by_reason"] == r.sim.bad_sent
    assert s["tick_frames"] == sent["trades"] + sent["overlap"] + sent["duplicates"]
    # one trade per frame in these dialects: each tick frame is stored or a duplicate
    assert s["ticks"] == s["tick_frames"] == s["stored"] + s["duplicates"]
    assert s["pending"] == 0 and s["dropped_overflow"] == 0


def assert_nothing_malformed(db, r: Run, venue: str = "binance") -> None:
    """The ticks table holds exactly the trades the simulator made, value for value."""
    assert stored_rows(db) == expected_rows(venue, r.sim.trades)
    assert r.stats["stored"] == len(r.sim.trades)


def states(r: Run) -> set[str]:
    return {state for state, _ in r.seen}


def reasons(r: Run, state: str) -> list[str]:
    return [reason for s, reason in r.seen if s == state]


# --- connection faults ----------------------------------------------------------------------
def test_abrupt_drops_reconnect_and_the_overlap_repairs_them(db, caplog):
    case = Chaos(Faults(drop_every=400), overlap=150)
    r = run(case, db)
    assert_frames_accounted(r)
    assert_nothing_malformed(db, r)
    assert_backs_off(r, case)
    assert r.stats["reconnects"] >= 3 and r.stats["gaps"] == 0
    assert r.stats["duplicates"] > 0  # the overlap was counted, not stored twice
    drops = [m for m in caplog.messages if "connection lost" in m and "Refused" not in m]
    assert len(drops) == 3  # each drop seen for what it was (the refusals came after the end)
    assert r.collector.status == "stopped"


@pytest.mark.parametrize("code", [1000, 1001, 1008, 1011, 1012, 1013, 4000])
def test_close_codes_are_reported_and_reconnected(db, code, caplog):
    case = Chaos(Faults(close_every=500, close_code=code), count=1100, overlap=100)
    r = run(case, db)
    assert_frames_accounted(r)
    assert_nothing_malformed(db, r)
    assert_backs_off(r, case)
    assert r.stats["reconnects"] >= 2
    said = f"venue closed the connection (code {code} simulated close)"
    assert sum(said in m for m in caplog.messages) == 2


def test_stalled_stream_goes_stale_and_is_reconnected(db):
    case = Chaos(Faults(stall_every=400), count=1000, overlap=100,
                 options={"stale_after_s": 0.3, "backoff_initial_s": 0.3})
    r = run(case, db)
    assert_frames_accounted(r)
    assert_nothing_malformed(db, r)
    assert_backs_off(r, case)
    assert r.stats["reconnects"] >= 2
    # the notebook saw the truth: backing off because the stream went silent
    assert any("no data for 0.3s" in reason for reason in reasons(r, "backoff"))


def test_refused_connections_back_off_then_collect(db):
    case = Chaos(Faults(refuse_for_s=1.2), count=600,
                 options={"backoff_initial_s": 0.1, "backoff_max_s": 0.8})
    r = run(case, db)
    assert_frames_accounted(r)
    assert_nothing_malformed(db, r)
    assert_backs_off(r, case)
    refused = r.sim.attempts[: r.sim.refused]
    assert 3 <= len(refused) <= 7  # backoff, not a tight loop: 0.05..0.1, 0.1..0.2, 0.2..0.4 ...
    pauses = [b - a for a, b in zip(refused, refused[1:], strict=False)]
    assert all(later >= earlier - 0.02 for earlier, later in zip(pauses, pauses[1:3],
                                                                 strict=False))
    assert any("503" in reason for reason in reasons(r, "backoff"))
    assert r.stats["connections"] == 1


def test_refused_subscription_of_one_symbol_keeps_the_other(db):
    case = Chaos(Faults(reject_symbols=("ETH-USDT",)), count=600)
    r = run(case, db)
    assert_frames_accounted(r)
    assert_nothing_malformed(db, r)
    assert {t.symbol for t in r.sim.trades} == {"BTC-USDT"}
    assert "invalid symbol ETH-USDT" in r.stats["venue_error"]
    assert "live" in states(r) and "failed" not in states(r)


def test_refused_subscription_of_every_symbol_fails_with_the_venues_reason(db):
    # each connection ends as soon as both refusals are read; stale_after_s is only the
    # fallback, wide enough that a loaded machine's late second refusal is still read
    # (a connection ended for staleness leaves the frame in flight unread and uncounted)
    case = Chaos(Faults(reject_symbols=SYMBOLS), count=0,
                 options={"stale_after_s": 5.0, "backoff_initial_s": 0.1})
    r = run(case, db, until=lambda c: c.status == "failed")
    assert_frames_accounted(r)
    assert_backs_off(r, case)
    assert r.stats["stored"] == 0 and r.stats["connections"] == 3
    status = r.collector.status
    assert status == "failed" and "invalid symbol" in status.reason
    assert not r.collector.running


def test_unanswered_pings_with_a_silent_stream_are_noticed(db):
    # the receive loop looks at its clocks every 0.5 s: a 1.2 s stall sees two pings go out
    case = Chaos(Faults(ignore_pings=True, stall_every=300), count=500, venue="generic",
                 overlap=100,
                 options={"ping": {"op": "ping"}, "ping_interval_s": 0.1, "stale_after_s": 1.2})
    r = run(case, db)
    assert_frames_accounted(r)
    assert_nothing_malformed(db, r, "generic")
    assert_backs_off(r, case)
    assert r.sim.pings_ignored >= 2 and r.stats["control"] == 0  # not one pong came back
    assert r.sim.connections >= 2
    assert any("no data for 1.2s" in reason for reason in reasons(r, "backoff"))


def test_throttled_server_is_slow_but_not_dead(db):
    case = Chaos(Faults(throttle_frames_per_s=400), count=500, rate=4000)
    t = time.monotonic()
    r = run(case, db)
    assert time.monotonic() - t >= 1.1  # 500 frames at 400/s: the throttle was real
    assert_frames_accounted(r)
    assert_nothing_malformed(db, r)
    assert len(r.sim.attempts) == 1  # slow is not dead: no reconnect
    assert states(r) <= {"connecting", "live"}


# --- content faults ---------------------------------------------------------------------
def test_hostile_frames_are_each_rejected_with_their_reason(db):
    case = Chaos(Faults(bad_frame_every=30), count=1000)
    r = run(case, db)
    assert_frames_accounted(r)  # includes: rejects by reason == hostile frames sent by reason
    assert_nothing_malformed(db, r)
    assert len(r.sim.bad_sent) >= 10 and r.stats["rejected"] == sum(r.sim.bad_sent.values())
    assert len(r.sim.attempts) == 1  # bad content is no reason to drop a good connection
    assert states(r) <= {"connecting", "live"}
    rejects = sqlite3.connect(db).execute(
        "SELECT count(*), max(length(frame)), max(frame_bytes) FROM rejects").fetchone()
    assert rejects[0] == r.stats["rejected"]
    assert rejects[1] <= 4096 and rejects[2] > 5_000_000  # the huge frame: cut, its size kept


def test_duplicated_frames_are_counted_not_stored(db):
    case = Chaos(Faults(duplicate_every=40), count=1000)
    r = run(case, db)
    assert_frames_accounted(r)
    assert_nothing_malformed(db, r)
    assert r.stats["duplicates"] == r.sim.sent["duplicates"] == 25


def test_skipped_ids_are_recorded_as_gaps(db):
    case = Chaos(Faults(skip_id_every=100), count=1000)
    r = run(case, db)
    assert_frames_accounted(r)
    assert_nothing_malformed(db, r)
    assert r.sim.market.skipped_ids == 10
    assert r.stats["gaps"] == 10 and r.stats["missing_trades"] == 10
    gaps = sqlite3.connect(db).execute("SELECT sum(missing) FROM gaps WHERE kind = 'ids'")
    assert gaps.fetchone()[0] == 10


def test_out_of_order_ids_are_accounted(db):
    """Nothing vanishes uncounted; but see the test below for what is counted."""
    case = Chaos(Faults(reorder_every=50), count=1000)
    r = run(case, db)
    assert_frames_accounted(r)
    assert r.sim.reordered == 20


def test_out_of_order_trades_are_stored(db):
    r = run(Chaos(Faults(reorder_every=50), count=1000), db)
    assert_nothing_malformed(db, r)


def test_every_fault_at_once(db):
    case = Chaos(Faults(drop_every=450, duplicate_every=70, bad_frame_every=45, skip_id_every=90,
                        close_every=700), count=1500, overlap=200)
    r = run(case, db)
    assert_frames_accounted(r)
    assert_nothing_malformed(db, r)
    assert_backs_off(r, case)
    assert r.stats["missing_trades"] == r.sim.market.skipped_ids


def test_rtkit_sim_fault_flags_reach_the_simulator(db):
    """The same faults from the command line, counted the same way."""
    sim = subprocess.Popen(
        [sys.executable, "-m", "rtkit", "sim", "binance", "--rate", "3000", "--count", "600",
         "--seed", "2", "--drop-every", "250", "--bad-frame-every", "100", "--duration", "30"],
        stdout=subprocess.PIPE, text=True)
    try:
        url = re.search(r"on (ws://\S+)", sim.stdout.readline()).group(1)
        c = rtkit.collect("binance", list(SYMBOLS), url=url, db=db, backoff_initial_s=0.05)
        wait_for(lambda: c.stats["stored"] == 600, 15)
        sim.send_signal(signal.SIGINT)
        out, _ = sim.communicate(timeout=10)
    finally:
        if sim.poll() is None:
            sim.kill()
            sim.wait(5)
    sent = int(re.search(r"in ([\d,]+) frames", out).group(1).replace(",", ""))
    wait_for(lambda: c.stats["frames"] >= sent, 5)
    c.stop()
    s = c.stats
    assert s["frames"] == sent and s["connections"] >= 3  # 600 trades, a drop every 250
    bad = {k: int(v) for k, v in re.findall(r"bad:(\w+) (\d+)", out)}
    assert s["rejected_by_reason"] == bad and s["rejected"] >= 4
