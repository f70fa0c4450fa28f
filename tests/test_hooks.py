"""Live hooks (#16): ``c.on(kind, fn)`` gets each new batch as a DataFrame on its own
thread; a failing or slow hook is counted and never slows collection nor loses a row."""

from __future__ import annotations

import threading
import time

import pandas as pd
import pytest

import rtkit
from rtkit.buffer import RingBuffer
from rtkit.hooks import Hooks
from rtkit.pipeline import Pipeline
from rtkit.sim import Simulator
from tests.conftest import rtkit_threads, wait_for
from tests.test_kinds import DAY, QuotingVenue, quoting_frames

pytestmark = pytest.mark.usefixtures("no_thread_leak")
SYMBOLS = ["BTC-USDT", "ETH-USDT"]


def assert_accounted(stats):
    assert stats["ticks"] == (stats["stored"] + stats["duplicates"] + stats["pending"]
                              + stats["dropped_overflow"])


def hook_stats(c, name):
    return next(h for h in c.stats["hooks"] if h["hook"].endswith(name))


def test_a_hook_receives_every_trade_in_order_on_its_own_thread(db):
    frames: list[pd.DataFrame] = []
    threads: set[str] = set()

    def keep(df):
        threads.add(threading.current_thread().name)
        frames.append(df)

    with Simulator("binance", rate=4000, count=3000, seed=5) as sim:
        c = rtkit.Collector("binance", SYMBOLS, url=sim.url, db=db, flush_interval_s=0.1)
        c.on("trades", keep)
        c.start()
        try:
            wait_for(lambda: c.stats["stored"] == 3000, 30)
        finally:
            c.stop()
    ring = c.df
    kinds = [d.name for d in ring.dtypes]  # 'category' whatever the categories
    assert all([d.name for d in f.dtypes] == kinds for f in frames)  # the ring's dtypes
    plain = {"venue": object, "symbol": object, "side": object}
    got = pd.concat([f.astype(plain) for f in frames], ignore_index=True)
    assert len(got) == 3000 and len(frames) > 1  # batches, not one frame at the end
    pd.testing.assert_frame_equal(got, ring.astype(plain))  # every trade, in arrival order
    assert threads and all(t.startswith("rtkit-hook-") for t in threads)
    recv = c._recv_thread.name
    assert recv not in threads
    h = hook_stats(c, "keep")
    assert (h["rows"], h["errors"], h["skipped"], h["pending"]) == (3000, 0, 0, 0)


def test_a_hook_that_raises_is_counted_and_the_others_go_on(db, caplog):
    good: list[int] = []

    def broken(df):
        raise RuntimeError("my signal has a bug")

    with Simulator("binance", rate=4000, count=2000, seed=5) as sim:
        c = rtkit.Collector("binance", SYMBOLS, url=sim.url, db=db, flush_interval_s=0.1)
        c.on("trades", broken)
        c.on("trades", lambda df: good.append(len(df)))
        c.start()
        try:
            wait_for(lambda: c.stats["stored"] == 2000 and sum(good) == 2000, 30)
        finally:
            c.stop()
    bad = hook_stats(c, "broken")
    assert bad["errors"] == bad["calls"] > 1 and bad["rows"] == 2000
    assert bad["last_error"] == "RuntimeError: my signal has a bug"
    assert sum(good) == 2000 and c.stats["stored"] == 2000
    # the first failure is logged with its traceback, once
    said = [r for r in caplog.records if "hook" in r.getMessage() and r.exc_info]
    assert len(said) == 1


def test_a_slow_hook_never_slows_collection_nor_loses_stored_rows(db):
    release = threading.Event()

    def slow(df):
        release.wait(5)  # far slower than the feed: the hook falls behind

    with Simulator("binance", rate=None, count=20_000, seed=5) as sim:
        c = rtkit.Collector("binance", SYMBOLS, url=sim.url, db=db, flush_interval_s=0.1)
        c.on("trades", slow, max_pending=500)
        c.start()
        try:
            wait_for(lambda: c.stats["stored"] == 20_000, 60)
            stats = c.stats
        finally:
            release.set()
            c.stop()
    assert_accounted(stats)
    assert stats["stored"] == 20_000 and stats["dropped_overflow"] == 0
    h = hook_stats(c, "slow")
    assert h["skipped"] > 0  # it was given less, and that is counted...
    assert h["rows"] + h["skipped"] == c.ring.total  # ...so that nothing goes unaccounted


def test_the_hook_thread_ends_with_the_collector_and_at_off(db):
    with Simulator("binance", rate=500, seed=5) as sim:
        c = rtkit.Collector("binance", SYMBOLS, url=sim.url, db=db, name="hooked")
        c.on("trades", lambda df: None)
        c.start()
        wait_for(lambda: any(t.name.startswith("rtkit-hook-hooked") for t in rtkit_threads()))
        late = c.on("trades", print)  # a hook added while it runs starts at once
        wait_for(lambda: late.thread is not None and late.thread.is_alive())
        assert c.off("trades", print) == 1
        wait_for(lambda: not late.thread.is_alive(), 5)
        c.stop()
        assert not [t for t in rtkit_threads() if t.name.startswith("rtkit-hook-")]
        # a collector that ends on its own (the venue goes away) ends its hooks too
        d = rtkit.Collector("binance", SYMBOLS, url=sim.url, db=db, name="orphan",
                            backoff_initial_s=5)
        d.on("trades", lambda df: None)
        d.start()
        wait_for(lambda: d.stats["ticks"] > 0)
    t0 = time.monotonic()
    d.stop()
    assert time.monotonic() - t0 < 5
    assert not [t for t in rtkit_threads() if t.name.startswith("rtkit-hook-")]


def test_on_names_the_kinds_there_are_and_checks_its_arguments(db):
    c = rtkit.Collector("binance", SYMBOLS, db=db)
    with pytest.raises(ValueError, match="collects trades, not 'quotes'"):
        c.on("quotes", print)
    with pytest.raises(TypeError, match="a function taking a DataFrame"):
        c.on("trades", "print")
    with pytest.raises(ValueError, match="max_pending"):
        c.on("trades", print, max_pending=0)
    assert c.off() == 0 and "hooks" not in c.stats


def test_a_hook_on_another_kind_gets_that_kinds_columns():
    """Quotes beside trades (a test venue): the quotes hook gets the quotes' columns."""
    got: dict[str, list[pd.DataFrame]] = {"trades": [], "quotes": []}
    p = Pipeline(QuotingVenue.make(), RingBuffer(100), symbols=["BTC-USDT"],
                 kinds=("trades", "quotes"))
    hooks = p.hooks = Hooks("q", "quoting", ("trades", "quotes"))
    hooks.on("trades", got["trades"].append)
    hooks.on("quotes", got["quotes"].append)
    running = threading.Event()
    running.set()
    hooks.start(running.is_set)
    try:
        p.process_frames(quoting_frames(), DAY + 10)
        wait_for(lambda: sum(h["rows"] for h in hooks.stats()) == 6, 10)
    finally:
        running.clear()
        hooks.stop(time.monotonic() + 5)
    quotes = pd.concat(got["quotes"], ignore_index=True)
    assert list(quotes.columns) == list(rtkit.kinds.get_kind("quotes").names)
    assert quotes["seq"].tolist() == [10, 11, 11, 12]
    trades = pd.concat(got["trades"], ignore_index=True)
    assert trades["trade_id"].tolist() == [1, 2] and str(trades["side"][0]) == "buy"


def test_a_collector_made_again_keeps_its_hooks(db):
    """The panel's Start after Stop makes the collector again: its hooks come along."""
    seen: list[int] = []
    with Simulator("binance", rate=2000, count=500, seed=5) as sim:
        first = rtkit.Collector("binance", SYMBOLS, url=sim.url, db=db, flush_interval_s=0.1)
        first.on("trades", lambda df: seen.append(len(df)), max_pending=1234)
        again = first.again()
        assert [(h["kind"], h["rows"]) for h in again.stats["hooks"]] == [("trades", 0)]
        assert again.hooks._by_kind["trades"][0].max_pending == 1234
        again.start()
        try:
            wait_for(lambda: sum(seen) == 500, 30)
        finally:
            again.stop()
