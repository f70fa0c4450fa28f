"""The per-venue REST budget: never more than half the venue's published limit in any
window, and 200 Binance USD-M snapshots at start-up without one 429.

The simulator enforces the venue's full limit with 429s; its window is compressed
(60 s → 1 s) so that the test takes seconds, and the client's budget uses the same
window."""

from __future__ import annotations

import threading

import pytest

from rtkit.rest import Banned, Budget, RestClient
from rtkit.rest.endpoints import venue_rest
from rtkit.sim import Market
from rtkit.sim.rest import SimRest


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_budget_is_half_the_published_limit():
    budget = Budget.for_venue("binance-futures")
    assert (budget.limit, budget.window_s, budget.unit) == (2400, 60.0, "weight")
    assert budget.capacity == 1200
    assert Budget.for_venue("binance").capacity == 3000


def test_depth_weights_follow_the_limit():
    spec = venue_rest("binance-futures")
    assert [spec.depth("BTC-USDT", n).weight for n in (5, 50, 100, 500, 1000)] == \
        [2, 2, 5, 10, 20]
    spot = venue_rest("binance")
    assert [spot.depth("BTC-USDT", n).weight for n in (100, 101, 500, 1000, 5000)] == \
        [5, 25, 25, 50, 250]


def test_a_full_window_waits_until_the_oldest_cost_expires():
    clock = FakeClock()
    budget = Budget("x", limit=20, window_s=10, clock=clock)
    for _ in range(10):
        assert budget.acquire(1) == 0
    assert budget.used() == 10 == budget.peak
    with pytest.raises(TimeoutError):
        budget.acquire(1, timeout_s=5)  # room comes back only when the first expires, at 10 s
    clock.now += 10
    assert budget.acquire(1) == 0 and budget.used() == 1


def test_a_429_pauses_every_caller_and_a_418_stops_them():
    clock = FakeClock()
    budget = Budget("x", limit=100, window_s=1, clock=clock)
    budget.pause(30)
    with pytest.raises(TimeoutError):
        budget.acquire(1, timeout_s=29)
    clock.now += 30
    budget.acquire(1)
    error = budget.ban(120)
    assert "418" in str(error) and "120 s" in str(error)
    with pytest.raises(Banned):
        budget.acquire(1)
    clock.now += 121
    budget.acquire(1)


def test_the_venues_own_count_slows_the_budget():
    clock = FakeClock()
    budget = Budget("x", limit=100, window_s=60, clock=clock)
    budget.acquire(10)
    budget.note_used(45)  # another program on this IP spent 35
    assert budget.used() == 45
    with pytest.raises(TimeoutError):
        budget.acquire(10, timeout_s=1)


def test_threads_sharing_a_budget_never_exceed_it():
    budget = Budget("x", limit=40, window_s=0.2)
    stamps: list[float] = []
    lock = threading.Lock()

    def spend():
        for _ in range(15):
            budget.acquire(1)
            with lock:
                stamps.append(budget._clock())

    threads = [threading.Thread(target=spend) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    stamps.sort()
    assert len(stamps) == 60
    assert budget.peak <= 20
    # any 0.2 s holds at most 20 (a little slack for the stamp taken after acquire)
    worst = max(sum(1 for s in stamps if t <= s < t + 0.19) for t in stamps)
    assert worst <= 20


def start_books(budget: Budget, rest: SimRest, n: int = 200) -> dict:
    symbols = [f"S{i:03d}-USDT" for i in range(n)]
    with RestClient("binance-futures", rest.url, budget=budget) as client:
        books = client.depths(symbols, limit=1000, workers=8)
        return {"books": books, "stats": dict(client.stats)}


def test_200_usdm_snapshots_start_within_half_the_budget():
    window = 1.0  # the venue's minute, compressed
    with SimRest(venue="binance-futures", market=Market(1), window_s=window) as rest:
        budget = Budget.for_venue("binance-futures", window_s=window)
        run = start_books(budget, rest)
    assert all(not isinstance(b, Exception) for b in run["books"].values())
    assert len(run["books"]) == 200
    assert rest.statuses[429] == 0 and run["stats"].get("http_429", 0) == 0
    assert rest.statuses[200] == 200
    assert budget.peak <= budget.limit / 2  # never more than half the venue's limit
    # the venue counts on arrival, in fixed windows: network and scheduling delays can
    # bunch requests a little past half there, which is what the other half is for
    assert rest.used_peak < budget.limit
    # 4,000 weight at 1,200 a window: the budget spread them over at least two windows
    assert budget.waited_s > 0


def test_without_half_the_budget_the_same_start_gets_429s():
    """The control: a budget larger than what the venue allows gets 429s from the
    simulator (so the test above proves the budget, not a lenient server)."""
    window = 3.0
    with SimRest(venue="binance-futures", market=Market(1), window_s=window,
                 limit=1200) as rest:
        budget = Budget.for_venue("binance-futures", window_s=window, limit=1200)
        budget.capacity = 1800  # 1.5 × what the venue allows
        run = start_books(budget, rest, 100)
    assert rest.statuses[429] > 0
    assert run["stats"]["http_429"] == rest.statuses[429]
    assert all(not isinstance(b, Exception) for b in run["books"].values())  # retried


def test_clients_of_one_venue_share_one_budget():
    with SimRest(venue="binance-futures", market=Market(1)) as rest:
        with RestClient("binance-futures", rest.url) as a, \
                RestClient("binance-futures", rest.url) as b:
            assert a.budget is b.budget
            a.depth("BTC-USDT", 1000)
            b.depth("BTC-USDT", 1000)
            assert a.budget.used() == 40  # what both spent, in the one budget
        with SimRest(venue="binance-futures", market=Market(1)) as other, \
                RestClient("binance-futures", other.url) as c:
            assert c.budget is not a.budget  # another server, another limit
