"""Binance USD-M's continuity rule (rtkit.books.rules.binance_futures): pu, never U."""

from __future__ import annotations

from rtkit.books.rules.binance import RULE as SPOT_RULE
from rtkit.books.rules.binance_futures import RULE
from tests.books.driver import msg, run

SNAP = msg(seq=100, snapshot=True, source="rest", bids=[("10.0", "1")], asks=[("11.0", "1")])


def diff(first, last, pu, **kw):
    return msg(first=first, seq=last, prev=pu, **kw)


def test_facts():
    assert (RULE.name, RULE.verified, RULE.snapshot_from) == ("binance-futures", True, "rest")
    assert RULE is not SPOT_RULE and type(RULE) is not type(SPOT_RULE)


def test_drops_events_before_lastUpdateId_only():
    assert RULE.drop_before_snapshot(diff(90, 99, 85), SNAP)
    assert not RULE.drop_before_snapshot(diff(95, 100, 94), SNAP)  # u == lastUpdateId kept


def test_first_event_holds_lastUpdateId():
    assert RULE.bridges(diff(95, 103, 94), SNAP) is None
    assert RULE.bridges(diff(100, 100, 99), SNAP) is None
    assert RULE.bridges(diff(101, 103, 100), SNAP) == (
        "U 101 .. u 103 does not hold lastUpdateId 100")


def test_pu_chains_on_previous_u():
    assert RULE.follows(diff(120, 130, 110), diff(95, 110, 94)) is None
    assert RULE.follows(diff(120, 130, 112), diff(95, 110, 94)) == "pu 112 != previous u 110"


def test_u_is_never_previous_u_plus_one_and_that_is_fine():
    """Real captures: on USD-M, U was never previous u + 1 (6,190 of 6,190)."""
    stream = [diff(80, 99, 79), diff(95, 103, 99), diff(101, 109, 103), diff(106, 112, 109),
              diff(110, 118, 112, bids=[("1.0", "0")])]  # a removal of an absent level too
    assert all(b.first_seq != a.seq + 1 for a, b in zip(stream[:-1], stream[1:], strict=True))
    assert run(RULE, SNAP, stream) == []


def test_a_lost_event_is_a_desync():
    stream = [diff(95, 103, 94), diff(110, 115, 109)]
    assert run(RULE, SNAP, stream) == ["pu 109 != previous u 103"]
