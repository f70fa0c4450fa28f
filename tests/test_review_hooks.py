"""An outside review's attacks on live hooks: whatever a hook does, it is counted and
called again, and collection goes on."""

from __future__ import annotations

import sys
import threading
import time

import pytest

from rtkit.hooks import Hooks
from tests.conftest import wait_for

pytestmark = pytest.mark.usefixtures("no_thread_leak")
TICK = ("BTC-USDT", 1, 1_700_000_000 * 10**9, 1.0, 1.0, 1)


@pytest.mark.parametrize("exit_with", [SystemExit, KeyboardInterrupt])
def test_a_hook_that_exits_is_counted_and_called_again(exit_with):
    """``sys.exit()`` in a thread ends it silently: the hook would stop being called, with
    no error counted, and its rows would only pile up as ``pending``."""
    calls = []

    def hook(df):
        calls.append(len(df))
        if exit_with is SystemExit:
            sys.exit(3)
        raise exit_with()

    hooks = Hooks("exit", "binance", ("trades",))
    hook_ = hooks.on("trades", hook)
    running = threading.Event()
    running.set()
    hooks.start(running.is_set)
    try:
        hooks.offer("trades", 1, [TICK])
        wait_for(lambda: hook_.calls == 1, 10)
        hooks.offer("trades", 2, [TICK])
        wait_for(lambda: hook_.calls == 2 or not hook_.thread.is_alive(), 10)
    finally:
        running.clear()
        hooks.stop(time.monotonic() + 5)
    assert calls == [1, 1]
    assert hook_.errors == 2 and hook_.last_error.split(":")[0] in ("SystemExit",
                                                                   "KeyboardInterrupt")


def test_a_batch_larger_than_max_pending_reaches_a_hook_that_is_not_behind():
    """A hook with nothing queued is not behind: a backfilled page of 1,000 trades (or a
    frame of many) reaches it whatever ``max_pending``; only a hook with rows still queued
    has new ones skipped."""
    got = []
    release = threading.Event()

    def hook(df):
        got.append(len(df))
        release.wait(10)

    hooks = Hooks("big", "binance", ("trades",))
    hook_ = hooks.on("trades", hook, max_pending=10)
    running = threading.Event()
    running.set()
    hooks.start(running.is_set)
    try:
        hooks.offer("trades", 1, [TICK] * 50)  # nothing queued: it is given
        wait_for(lambda: got == [50], 10)
        hooks.offer("trades", 2, [TICK] * 5)  # queued while the hook is busy
        hooks.offer("trades", 3, [TICK] * 50)  # behind: skipped
        release.set()
        wait_for(lambda: hook_.rows == 55, 10)
    finally:
        release.set()
        running.clear()
        hooks.stop(time.monotonic() + 5)
    assert got == [50, 5] and hook_.skipped == 50
