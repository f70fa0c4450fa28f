"""Review: a share whose capacity is not a whole number of requests shortens the budget's
window; the venue's own (published) window must still never see more than its limit, nor
more than the share rounded up to a whole request."""

from __future__ import annotations

import math
from bisect import bisect_left

import pytest

from rtkit.rest import Budget
from tests.test_rest_budget import FakeClock


def grant_times(budget: Budget, clock: FakeClock, seconds: float) -> list[float]:
    end, times = clock.now + seconds, []
    while True:
        clock.now += budget.room_in()
        if clock.now >= end:
            return times
        budget.acquire(timeout_s=0)
        times.append(clock.now)


def most_in_a_window(times: list[float], window_s: float) -> int:
    """The most grants in any half-open interval [t, t + window_s)."""
    return max(bisect_left(times, t + window_s - 1e-9) - i for i, t in enumerate(times))


@pytest.mark.parametrize(("venue", "share"), [
    ("coinbase-exchange", 0.75), ("coinbase-exchange", 0.85), ("okx", 0.57), ("kraken", 0.9)])
def test_no_published_window_holds_more_than_the_share_rounded_up(venue, share):
    clock = FakeClock()
    budget = Budget.for_venue(venue, share=share)
    budget._clock = clock
    times = grant_times(budget, clock, 30.0)
    most = most_in_a_window(times, budget.published_window_s)
    assert most <= budget.limit, f"{most} requests in one of {venue}'s windows of " \
        f"{budget.published_window_s:g} s, past its limit of {budget.limit:g}"
    assert most <= math.ceil(budget.limit * share - 1e-9)
    # the rate is still the share's (not the whole part's)
    assert len(times) >= budget.limit * share * 30.0 / budget.published_window_s - 1


def test_a_second_collector_asking_more_does_not_pass_the_limit():
    """Two collectors of one process ask 0.5 and 0.75 of Coinbase's: the one budget allows
    0.75, never more than 8 requests in any second (its limit is 10)."""
    clock = FakeClock()
    budget = Budget("coinbase-exchange", 10, 1.0, share=0.5, clock=clock)
    budget.allow_share(0.75)
    times = grant_times(budget, clock, 20.0)
    assert most_in_a_window(times, 1.0) <= 8


def test_two_venue_names_on_one_rest_api_spend_one_budget():
    """kraken and kraken-v1 (two WebSocket APIs) ask the same REST API, whose limit is
    per IP: in one process they spend from one budget, never from two of a share each."""
    base = "https://api.kraken.com"
    assert Budget.shared("kraken", base) is Budget.shared("kraken-v1", base)
