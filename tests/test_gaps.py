"""Gap tracking: only an id seen before is a duplicate, out-of-order trades are
kept, and what the tracker remembers is bounded per symbol, in total and in
symbols (trades of symbols never subscribed are rejects)."""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import rtkit
import rtkit.gaps as gaps
import rtkit.pipeline as pipeline_module
from rtkit.buffer import RingBuffer
from rtkit.gaps import GapDetector
from rtkit.pipeline import Pipeline
from rtkit.recording import RecordingWriter
from rtkit.sim import Faults, Simulator
from rtkit.store import TickStore
from rtkit.venues import get_adapter
from tests.conftest import wait_for

ROOT = Path(__file__).resolve().parents[1]


def trade(symbol: str, tid: int) -> bytes:
    """A Binance trade frame."""
    return ('{"e":"trade","E":1,"s":"%s","t":%d,"p":"1.5","q":"0.1","T":1764000000000,'
            '"m":true}' % (symbol, tid)).encode()


def run(frames, db, **options) -> tuple[Pipeline, dict]:
    """Frames through a Binance pipeline and into SQLite; the pipeline and its stats."""
    p = Pipeline(get_adapter("binance"), RingBuffer(100_000), **options)
    for frame in frames:
        p.process(frame, 1)
    store = TickStore(db)
    try:
        batch = p.take()
        p.done(batch, store.write(*batch))
    finally:
        store.close()
    return p, p.stats()


# --- item 6: a never-seen id is never a duplicate ------------------------------------
def test_ids_arriving_newest_first_at_the_start_are_all_kept(db):
    _, s = run([trade("BTCUSDT", 1099 - i) for i in range(100)], db)
    assert s["stored"] == 100 and s["duplicates"] == 0
    assert s["late_trades"] == 99  # each arrived after a higher id: out of order, kept


def test_late_trades_of_older_gaps_are_kept_after_many_missing_ids(db):
    """Two gaps of ~10,000 ids, then one more: the trade of the older gap is late, not
    a duplicate (the old tracker had cleared its set of missing ids by then)."""
    p, s = run([trade("BTCUSDT", t) for t in (0, 10_000, 10_001, 20_000, 20_002, 19_000, 19_000)],
               db)
    assert s["late_trades"] == 1 and s["gaps"] == 3
    assert s["stored"] == 6 and s["duplicates"] == 1  # only the second 19,000 was seen before
    assert p.ring.snapshot()["trade_id"].tolist() == [0, 10_000, 10_001, 20_000, 20_002, 19_000]


def test_ids_seen_before_are_still_duplicates(db):
    p, s = run([trade("BTCUSDT", t) for t in [*range(1, 11), *range(5, 11), 3]], db)
    assert s["duplicates"] == 7 and s["stored"] == 10 and s["late_trades"] == 0
    assert len(p.ring) == 10  # caught before the ring


@pytest.mark.parametrize("budget_bits", [gaps.ID_BITS_BUDGET, 300])
def test_verdicts_agree_with_every_id_ever_seen(monkeypatch, budget_bits):
    """Random orders, replays and jumps against a set of every id seen: a duplicate
    was always seen, a late id never was, and (while nothing is forgotten) every
    seen id within the window is caught. The small budget forgets windows often."""
    window = 64
    monkeypatch.setattr(gaps, "ID_WINDOW", window)
    rng = random.Random(11)
    for symbol in ("A", "B", "C"):
        detector = GapDetector(budget_bits)
        seen: set[int] = set()
        high = 1_000
        detector.check(symbol, high, high)
        seen.add(high)
        for _ in range(20_000):
            r = rng.random()
            if r < 0.5:
                tid = high + 1
            elif r < 0.6:
                tid = high + rng.randint(2, 3 * window)
            else:
                tid = high - rng.randint(0, window + window // 2)
            if tid < high - window:
                continue  # that is a reset (a new count), tested on its own
            verdict = detector.check(symbol, tid, tid)
            if verdict == "duplicate":
                assert tid in seen
            elif verdict == "late":
                assert tid not in seen
            elif tid in seen and detector.forgotten == 0:
                pytest.fail(f"id {tid} seen before was not caught: {verdict}")
            seen.add(tid)
            high = max(high, tid)
            assert detector.bits <= budget_bits
            assert detector.windows[symbol].unseen.bit_length() <= 2 * window + 2
        if budget_bits < 2 * window:
            assert detector.forgotten > 0


def test_grouped_ids_are_late_when_any_of_them_is_new():
    detector = GapDetector()
    assert detector.check("X", 100, 100) is None
    assert detector.check("X", 105, 110) == (101, 104, "ids")
    assert detector.check("X", 103, 105) == "late"  # 103 and 104 were missing
    assert detector.check("X", 101, 104) == "late"  # 101 and 102 still were
    assert detector.check("X", 101, 110) == "duplicate"
    assert detector.check("X", 90, 99) == "late"  # older than the first one seen


# --- item 7: bounded symbols and a global budget ----------------------------------------
def test_trades_of_symbols_not_subscribed_are_rejects(db):
    frames = [trade("BTCUSDT", 1), trade("SOLUSDT", 1), trade("ETHUSDT", 2), trade("BTCUSDT", 2)]
    p, s = run(frames, db, symbols=["BTC-USDT", "ETH-USDT"])
    assert s["rejected_by_reason"] == {"unsubscribed_symbol": 1} and s["rejected_frames"] == 1
    assert s["stored"] == 3 and s["frames"] == s["tick_frames"] + s["rejected_frames"] == 4
    assert "SOLUSDT" not in p.gap_detector.last and "SOL-USDT" not in p.gap_detector.last


def test_a_collector_rejects_trades_of_symbols_it_did_not_subscribe(db):
    faults = Faults(bad_frame_every=20, bad_frames=((trade("SOLUSDT", 7).decode(),
                                                     "unsubscribed_symbol", False),))
    with Simulator("binance", rate=4000, count=400, seed=1, faults=faults) as sim:
        c = rtkit.collect("binance", ["BTC-USDT", "ETH-USDT"], url=sim.url, db=db,
                          flush_interval_s=0.1)
        wait_for(lambda: sim.all_sent and c.stats["frames"] >= sim.frames_sent
                 and c.stats["pending"] == c.stats["rejects_pending"] == 0)
        c.stop()
    s = c.stats
    assert s["stored"] == 400 and s["rejected_by_reason"] == {"unsubscribed_symbol": 20}


def test_a_replay_takes_only_the_symbols_the_recording_subscribed(tmp_path):
    path = tmp_path / "run.jsonl"
    writer = RecordingWriter(path)
    writer.event("open", 1, "binance", ["BTC-USDT"])
    for i, frame in enumerate([trade("BTCUSDT", 1), trade("SOLUSDT", 1), trade("BTCUSDT", 2)]):
        writer.frame(2 + i, "binance", frame)
    writer.close()
    s = rtkit.replay(path, tmp_path / "replay.sqlite")
    assert s["stored"] == 2 and s["rejected_by_reason"] == {"unsubscribed_symbol": 1}


def test_without_a_symbol_list_distinct_symbols_are_capped(db, monkeypatch):
    monkeypatch.setattr(pipeline_module, "MAX_SYMBOLS", 3)
    frames = [trade(f"S{k}USDT", 1) for k in range(5)] + [trade("S0USDT", 2)]
    p, s = run(frames, db)
    assert s["stored"] == 4 and s["rejected_by_reason"] == {"too_many_symbols": 2}
    assert len(p.gap_detector.last) == 3


def test_a_generic_feed_takes_symbols_beyond_the_ones_named(db):
    p = Pipeline(get_adapter("generic"), RingBuffer(10), symbols=["BTC-USDT"])
    p.process(b'{"symbol":"ETH-USDT","price":1.5,"volume":2}', 1)
    assert p.stats()["ticks"] == 1 and p.stats()["rejected"] == 0


def test_forgotten_windows_keep_their_trades_unchecked():
    """Over the budget, a symbol forgets its window: its older ids are then kept
    for SQLite to judge, never called duplicates."""
    detector = GapDetector(budget_bits=20_000)
    for k in range(10):
        detector.check(f"S{k}", 0, 0)
        detector.check(f"S{k}", 5_000, 5_000)  # a gap of 4,999 ids: ~5,000 bits
    assert detector.forgotten == 6 and detector.bits <= 20_000
    assert detector.check("S9", 4_000, 4_000) is None  # forgotten: kept, unchecked
    assert detector.check("S9", 5_000, 5_000) is None  # even the id seen: SQLite says
    assert detector.check("S0", 4_000, 4_000) == "late"  # remembered: a gap's trade


def test_a_forgotten_window_leaves_the_verdict_to_sqlite(db, monkeypatch):
    """Past the budget, a replayed id of a forgotten symbol is kept and SQLite counts
    it as the duplicate it is; the sums still add up."""
    monkeypatch.setattr(gaps, "ID_BITS_BUDGET", 6_000)
    frames = [trade(s, t) for s in ("AUSDT", "BUSDT") for t in (0, 5_000, 4_000, 4_000)]
    _, s = run(frames, db)
    assert s["gap_windows_forgotten"] == 1 and s["late_trades"] == 1
    assert s["stored"] == 6 and s["duplicates"] == 2  # one caught before the ring, one by SQLite
    assert s["ticks"] == s["stored"] + s["duplicates"] + s["pending"] + s["dropped_overflow"]


ATTACK = """
import sys
from tests.conftest import peak_rss_kib
from rtkit.buffer import RingBuffer
from rtkit.pipeline import Pipeline
from rtkit.venues import get_adapter

def trade(symbol, tid):
    return ('{{"e":"trade","E":1,"s":"%s","t":%d,"p":"1.5","q":"0.1","T":1764000000000,'
            '"m":true}}' % (symbol, tid)).encode()

options = {options}
p = Pipeline(get_adapter("binance"), RingBuffer(10_000), **options)
frames = [trade("BTCUSDT", 0)]
for k in range({symbols}):  # each symbol: ids far apart, every gap ~10,000 ids
    frames += [trade(f"S{{k}}USDT", 10_001 * i) for i in range({per_symbol})]
frames += [trade("BTCUSDT", 10_001 * i) for i in range(1, {per_symbol} * 100)]
frames = frames[:{frames}]
base = peak_rss_kib()
for frame in frames:
    p.process(frame, 1)
print(len(frames), base, peak_rss_kib())
"""


@pytest.mark.parametrize("options", [{}, {"symbols": ["BTC-USDT"]}])
def test_gap_tracking_memory_stays_bounded_under_huge_id_jumps(options):
    """The issue's attack: 4,000 small frames of many symbols whose ids jump ~10,000
    each time (+1.6 GiB before). Peak RSS of a child process, over the attack."""
    script = ATTACK.format(options=options, symbols=1_300, per_symbol=3, frames=4_000)
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], cwd=ROOT, check=True,
                         capture_output=True, text=True, timeout=120).stdout.split()
    frames, base_kib, peak_kib = map(int, out)
    grown_mib = (peak_kib - base_kib) / 1024
    assert frames == 4_000
    assert grown_mib < 24, f"peak RSS grew {grown_mib:.0f} MiB over 4,000 frames"


JUMP = """
import sys
from tests.conftest import peak_rss_kib
from rtkit.buffer import RingBuffer
from rtkit.pipeline import Pipeline
from rtkit.venues import get_adapter

def okx(trade_id, count):
    return ('{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT",'
            '"tradeId":"%d","px":"1.5","sz":"0.1","side":"buy","ts":"1764000000000",'
            '"count":"%d"}]}' % (trade_id, count)).encode()

p = Pipeline(get_adapter("okx"), RingBuffer(100), symbols=["BTC-USDT"])
jump = int(sys.argv[1])
base = peak_rss_kib()
p.process(okx(1, 1), 1)
p.process(okx(jump, jump - 1), 1)  # ids 2 ... jump in one group: the next ones in line
for _ in range(3):
    p.process(okx(jump, 1), 1)  # the newest id again
print(p.stats()["duplicates"], peak_rss_kib() - base)
"""


def test_a_group_that_jumps_far_ahead_costs_no_memory_per_repeat():
    """OKX's ``count``: one message may stand for ids 2 … 2e9, all in line. The window
    was not moved up past them, so each repeat of the newest id built a mask spanning
    the whole run (2e9 ids: +250 MiB a time; 1e12 ids: 125 GB, a MemoryError)."""
    run = subprocess.run([sys.executable, "-c", JUMP, str(2 * 10**9)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    duplicates, grew_kib = map(int, run.stdout.split())
    assert duplicates == 3
    assert grew_kib < 16 * 1024, f"+{grew_kib // 1024} MiB"


def test_a_reconnect_costs_no_copy_of_the_remembered_ids_each_time():
    """A recording of many 'open' events after 50,000 Bybit trades made each one copy
    the 50,000 remembered keys (4,000 events: +20 s of replay). Four times the
    reconnects must cost well under four times the time: the copy is made once per
    ``size`` trades at most, not once per reconnect."""
    def cost(reconnects: int) -> float:
        best = float("inf")
        for _ in range(3):
            recent = gaps.RecentIds(size=50_000)
            recent.new_ticks([("BTC-USDT", str(i)) for i in range(50_000)])
            start = time.perf_counter()
            for _ in range(reconnects):
                recent.connection_opened()
            best = min(best, time.perf_counter() - start)
        return best

    one, four = cost(50), cost(200)
    assert four < 2 * one, f"{four:.3f} s for 4x the reconnects of {one:.3f} s"


def test_ticks_seen_before_a_reconnect_are_caught_after_several_reconnects():
    recent = gaps.RecentIds(size=100)
    recent.new_ticks([("S", i) for i in range(100)])
    recent.connection_opened()
    assert recent.new_ticks([("S", 5), ("S", 100)]) == [("S", 100)]
    recent.connection_opened()
    recent.connection_opened()
    assert recent.new_ticks([("S", 6), ("S", 100), ("S", 101)]) == [("S", 101)]


def test_a_reconnect_costs_the_same_however_many_symbols_are_known():
    """Each 'open' event of a replay copied the set of every symbol seen (10,000
    symbols, a million events: 3 minutes). Four times the symbols must not make a
    reconnect cost four times as much."""
    def cost(symbols: int) -> float:
        best = float("inf")
        for _ in range(3):
            detector = GapDetector()
            for i in range(symbols):
                detector.check(f"S{i}-USDT", 1, 1)
            detector.connection_opened()  # the first takes in every symbol, once
            start = time.perf_counter()
            for _ in range(500):
                detector.connection_opened()
            best = min(best, time.perf_counter() - start)
        return best

    few, many = cost(2_500), cost(10_000)
    assert many < 2 * few, f"{many:.4f} s with 4x the symbols of {few:.4f} s"


def test_every_symbol_gaps_across_a_reconnect_after_many_reconnects():
    detector = GapDetector()
    detector.check("A-USD", 1, 1)
    detector.connection_opened()
    detector.check("B-USD", 1, 1)  # first seen after the reconnect
    assert detector.check("A-USD", 2, 2) is None  # in line: A is settled
    detector.connection_opened()
    detector.connection_opened()
    assert detector.check("A-USD", 5, 5)[2] == "ids_across_reconnect"
    assert detector.check("B-USD", 5, 5)[2] == "ids_across_reconnect"
    assert detector.check("A-USD", 9, 9)[2] == "ids"
