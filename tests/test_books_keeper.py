"""The keeper: snapshots fetched off the receive thread, retried when they fail, audits of
unverified books on their period, resubscribes handed to the receiver once; the depth
cap that bounds a book's memory; the simulator's depth snapshots (stale on request)."""

from __future__ import annotations

import threading

import pytest

from rtkit.books import BookMessage
from rtkit.books.keeper import RETRY_S, BookKeeper
from rtkit.books.levels import LEVEL_BYTES, LocalBook
from rtkit.books.machine import BookMachine
from rtkit.books.rules import rule_for
from rtkit.sim.book import SimBooks
from tests.conftest import wait_for
from tests.test_books import RestRule, UnverifiedRule, rest_delta, rest_snapshot


class Fetcher:
    """A fake REST client: records the thread it runs on; fails while told to."""

    def __init__(self, seq=1, fail=0):
        self.seq, self.fail, self.threads, self.calls = seq, fail, [], 0

    def __call__(self, symbol):
        self.calls += 1
        self.threads.append(threading.current_thread().name)
        if self.fail:
            self.fail -= 1
            raise OSError("simulated refusal")
        return rest_snapshot(self.seq)


def settle(keeper, now, done):
    """Poll until ``done()``, the way the receiver does between reads."""
    def polled():
        keeper.poll(now)
        return done()
    wait_for(polled, 5)


def test_a_snapshot_is_fetched_on_a_worker_thread_and_taken_in_at_the_next_poll():
    fetch = Fetcher(seq=1)
    keeper = BookKeeper("x", ["BTC-USDT"], RestRule, fetch=fetch, clock=lambda: 0)
    try:
        keeper.feed([rest_delta(1, 2, [("98", "1")])])
        assert keeper.state("BTC-USDT")[0] == "buffering"
        settle(keeper, 0, lambda: keeper.state("BTC-USDT")[0] == "live")
        assert fetch.threads and all(t.startswith("rtkit-book") for t in fetch.threads)
        assert threading.current_thread().name not in fetch.threads
        assert keeper.read("BTC-USDT", lambda b: b.levels("bid", 3)) == [("99", "1"), ("98", "1")]
        assert keeper.stats()["book_snapshot_requests"] == 1
    finally:
        keeper.close()


def test_a_failed_snapshot_is_asked_again_after_its_delay():
    fetch = Fetcher(seq=1, fail=1)
    keeper = BookKeeper("x", ["BTC-USDT"], RestRule, fetch=fetch, clock=lambda: 0)
    try:
        keeper.feed([rest_delta(1, 2)])
        settle(keeper, 0, lambda: keeper.snapshot_failures == 1)
        assert "simulated refusal" in keeper.last_fetch_error and fetch.calls == 1
        keeper.poll(int(RETRY_S * 1e9) - 1)
        assert fetch.calls == 1  # not before its delay
        settle(keeper, int(RETRY_S * 1e9), lambda: keeper.state("BTC-USDT")[0] == "live")
        assert fetch.calls == 2
    finally:
        keeper.close()


def test_an_unverified_book_is_audited_on_its_period_and_a_difference_resyncs_it():
    fetch = Fetcher(seq=0)
    keeper = BookKeeper("x", ["BTC-USDT"], UnverifiedRule, fetch=fetch, audit_every_s=60,
                        clock=lambda: 0)
    try:
        keeper.feed([rest_delta(1, 1)])
        settle(keeper, 0, lambda: keeper.state("BTC-USDT")[0] == "unverified")
        keeper.feed([rest_delta(2, 2, [("99", "7")])])  # the venue's snapshot says 1
        calls = fetch.calls
        keeper.poll(59 * 10**9)
        assert fetch.calls == calls  # not yet
        settle(keeper, 60 * 10**9, lambda: keeper.machines["BTC-USDT"].desyncs == 1)
        settle(keeper, 60 * 10**9, lambda: keeper.state("BTC-USDT")[0] == "unverified")
        assert keeper.read("BTC-USDT", lambda b: b.levels("bid", 1)) == [("99", "1")]
    finally:
        keeper.close()


def test_a_resubscribe_is_handed_over_once_and_a_reconnect_forgets_it():
    keeper = BookKeeper("bybit", ["BTC-USDT"], lambda: rule_for("bybit"), clock=lambda: 0)
    snap = BookMessage("BTC-USDT", 1, 1, True, [("99", "1")], [("100", "1")], seq=5)
    keeper.feed([snap, BookMessage("BTC-USDT", 2, 2, False, [("98", "1")], [], seq=9)])
    keeper.feed([BookMessage("BTC-USDT", 3, 3, False, [("98", "1")], [], seq=10)])
    assert keeper.take_resubscribes() == ["BTC-USDT"] and keeper.take_resubscribes() == []
    keeper.feed([BookMessage("BTC-USDT", 4, 4, True, [("99", "1")], [("100", "1")], seq=20),
                 BookMessage("BTC-USDT", 5, 5, False, [("98", "1")], [], seq=22)])
    step = keeper.connection_opened(6, first=False)
    assert keeper.take_resubscribes() == [] and step.events[-1][4] == "subscribing"


def test_the_depth_cap_bounds_a_book_fed_ever_new_levels():
    """A venue (or an attacker) sending a new price level in every message cannot grow a
    book past its cap: memory per book <= 2 * cap * LEVEL_BYTES."""
    machine = BookMachine("bybit", "BTC-USDT", rule_for("bybit"), max_levels=50)
    machine.feed(BookMessage("BTC-USDT", 1, 1, True, [("1", "1")], [("1000000", "1")], seq=1))
    for i in range(20_000):
        machine.feed(BookMessage("BTC-USDT", 1, 1, False, [(f"{2 + i * 0.01:.2f}", "1")],
                                 [(f"{999_999 - i * 0.01:.2f}", "1")], seq=i + 2))
    assert machine.state == "live" and machine.book.depth("bid") == machine.book.depth("ask") == 50
    assert machine.book.levels("bid", 1)[0][0] == f"{2 + 19_999 * 0.01:.2f}"
    assert len(LocalBook().levels("bid", 5)) == 0 and LEVEL_BYTES >= 200


def test_the_simulators_depth_snapshots_follow_its_books_and_go_stale_on_request():
    books = SimBooks(seed=1, stale_snapshot_every=3)
    book = books.book("BTC-USDT")
    for _ in range(450):
        book.step()
    bids, asks, seq, at = books.depth_snapshot("bybit", "BTC-USDT", 5)
    assert seq == book.seq == 451 and len(bids) == len(asks) == 5 and at > 0
    assert float(bids[0][0]) < float(asks[0][0])
    books.depth_snapshot("bybit", "BTC-USDT", 5)
    stale = books.depth_snapshot("bybit", "BTC-USDT", 5)
    assert stale[2] == 400 and books.stale_snapshots == 1


@pytest.mark.parametrize("seed", [1, 2])
def test_a_simulated_book_is_never_crossed_and_stays_within_its_levels(seed):
    books = SimBooks(seed=seed, levels=20)
    book = books.book("ETH-USDT")
    mirror = LocalBook(None)
    for price, size in book.snapshot()[0]:
        mirror.set_level(False, price, size)
    for price, size in book.snapshot()[1]:
        mirror.set_level(True, price, size)
    for _ in range(5_000):
        bids, asks = book.step()
        for price, size in bids:
            mirror.set_level(False, price, size)
        for price, size in asks:
            mirror.set_level(True, price, size)
        assert mirror.crossed() is None
    assert (mirror.levels("bid", 100), mirror.levels("ask", 100)) == book.snapshot()[:2]
    assert len(book.bids) <= 20 and len(book.asks) <= 20
