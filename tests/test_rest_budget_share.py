"""``rest_budget_share``: the share of each venue's published REST limit a collector's
snapshots and backfill may use (default 0.5, at most 0.9), checked, on the command line,
and applied to the process's one budget of the venue. Requests are whole, so a share of a
small limit (Kraken's) keeps its rate by shortening the window."""

from __future__ import annotations

import math
import sqlite3

import pytest

import rtkit
from rtkit.rest import Budget
from rtkit.rest.budget import BUDGET_SHARE, MAX_SHARE
from rtkit.sim import Faults, Simulator
from rtkit.sim.rest import SimRest
from tests.conftest import wait_for
from tests.test_make_before_break import expected, stored
from tests.test_rest_budget import FakeClock


def granted(budget: Budget, clock: FakeClock, seconds: float, cost: float = 1.0) -> int:
    """Requests the budget lets through in ``seconds``, each as soon as it may."""
    end, n = clock.now + seconds, 0
    while True:
        clock.now += budget.room_in(cost)
        if clock.now >= end:
            return n
        budget.acquire(cost, timeout_s=0)
        n += 1


@pytest.mark.parametrize(("venue", "share", "per_100_s"), [
    ("kraken", 0.5, 50), ("kraken", 0.9, 90), ("okx", 0.5, 500), ("okx", 0.9, 900),
    ("coinbase-exchange", 0.55, 550)])
def test_the_rate_is_the_share_of_the_published_one_in_whole_requests(venue, share, per_100_s):
    clock = FakeClock()
    budget = Budget.for_venue(venue, share=share)
    budget._clock = clock
    assert budget.capacity == math.floor(budget.capacity) >= 1  # whole requests
    n = granted(budget, clock, 100.0)
    assert per_100_s <= n <= per_100_s + budget.capacity  # the first window's burst
    # and never more than the share in any window of the budget's own length
    assert budget.peak <= budget.limit * share * budget.window_s / budget.published_window_s \
        + 1e-9


def test_room_in_says_when_the_oldest_request_leaves_the_window():
    clock = FakeClock()
    budget = Budget("x", limit=20, window_s=2.0, share=0.5, clock=clock)
    for _ in range(10):
        budget.acquire()
        clock.now += 0.1
    assert budget.room_in() == pytest.approx(2.0 - 1.0)  # the first, spent 1 s ago
    assert budget.room_in(3) == pytest.approx(2.0 - 0.8)  # three must leave
    budget.pause(5)
    assert budget.room_in() == pytest.approx(5)


def test_a_share_is_checked_and_says_what_to_give(db):
    for bad in (0, 0.0, -0.5, 0.95, 1, True, "0.5", float("nan"), None):
        with pytest.raises(ValueError, match=r"rest_budget_share= is the share .* "
                                             r"0 < share <= 0\.9 \(default 0\.5"):
            rtkit.Collector("okx", ["BTC-USDT"], db=db, rest_budget_share=bad)
    c = rtkit.Collector("okx", ["BTC-USDT"], db=db, rest_budget_share=0.9)
    assert c.config.rest_budget_share == 0.9
    assert rtkit.Collector("okx", ["BTC-USDT"], db=db).config.rest_budget_share == BUDGET_SHARE
    from rtkit.cli import _parser

    args = _parser().parse_args(["collect", "okx", "BTC-USDT", "--rest-budget-share", "0.9"])
    assert args.rest_budget_share == 0.9
    assert _parser().parse_args(["collect", "okx", "BTC-USDT"]).rest_budget_share == 0.5


def test_the_cli_names_its_option_in_the_error(tmp_path, capsys):
    from rtkit.cli import main

    code = main(["collect", "okx", "BTC-USDT", "--db", str(tmp_path / "x.sqlite"),
                 "--rest-budget-share", "0.95"])
    assert code != 0
    assert "--rest-budget-share is the share" in capsys.readouterr().err


def test_the_shared_budget_allows_the_most_asked_for_never_less():
    budget = Budget.shared("okx", "http://127.0.0.1:1")
    assert budget.capacity == 10
    assert Budget.shared("okx", "http://127.0.0.1:1", 0.9) is budget and budget.capacity == 18
    Budget.shared("okx", "http://127.0.0.1:1", 0.5)
    assert budget.capacity == 18 and budget.share == 0.9
    with pytest.raises(ValueError):
        budget.allow_share(MAX_SHARE + 0.01)


@pytest.mark.usefixtures("no_thread_leak")
def test_a_collectors_share_paces_its_backfill_and_the_venue_never_refuses(db):
    """Kraken at 0.9: a request every 1.11 s (not every 2 s, as 0.9 × 2 per 2 s would be in
    whole requests), every gap filled, not one 429 from the simulator's real limit."""
    def settled(c):
        return c.stats["gaps_open"] == 0 and c.stats["pending"] == 0 and c.stats["gaps"] >= 3

    with Simulator("kraken", rate=4000, count=2000, seed=61,
                   faults=Faults(lose_every=400)) as sim, SimRest(sim) as rest:
        c = rtkit.collect("kraken", ["BTC-USD"], url=sim.url, db=db, flush_interval_s=0.05,
                          rest_budget_share=0.9)
        try:
            wait_for(lambda: sim.all_sent, 20)
            wait_for(lambda: settled(c), 30)
            budget = Budget.shared("kraken", rest.url)
        finally:
            c.stop()
        trades = list(sim.trades)
    assert (budget.share, budget.capacity) == (0.9, 1)
    assert budget.window_s == pytest.approx(2.0 / 1.8)
    rows = sqlite3.connect(db).execute("SELECT status FROM gaps WHERE missing IS NOT NULL")
    assert {r[0] for r in rows} == {"filled"}
    assert stored(db) == expected(sim.dialect, trades)
    times = [at for at, path, _ in rest.log if path == "/0/public/Trades"]
    assert len(times) >= 3 and rest.statuses[429] == 0
    spacing = min(b - a for a, b in zip(times, times[1:], strict=False))
    # faster than half the limit would allow; not faster than the share's window, but for
    # the lateness of one send on a loaded machine (the server stamps arrivals: a request
    # sent 0.12 s after its turn, the next on time, read 0.99 s apart, a fresh clone's run)
    assert 2.0 / 1.8 - 0.2 <= spacing < 2.0 * 0.9
