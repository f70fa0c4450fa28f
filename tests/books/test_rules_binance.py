"""Binance spot's continuity rule (rtkit.books.rules.binance)."""

from __future__ import annotations

from rtkit.books.rules.binance import RULE
from rtkit.books.rules.binance_futures import RULE as FUTURES_RULE
from tests.books.driver import msg, run

SNAP = msg(seq=100, snapshot=True, source="rest", bids=[("10.0", "1")], asks=[("11.0", "1")])


def diff(first, last, **kw):
    return msg(first=first, seq=last, **kw)


def test_facts():
    assert (RULE.name, RULE.verified, RULE.snapshot_from) == ("binance", True, "rest")


def test_drops_what_the_snapshot_holds():
    assert RULE.drop_before_snapshot(diff(95, 99), SNAP)
    assert RULE.drop_before_snapshot(diff(98, 100), SNAP)  # u == lastUpdateId
    assert not RULE.drop_before_snapshot(diff(99, 101), SNAP)


def test_first_event_must_straddle_lastUpdateId_plus_one():
    assert RULE.bridges(diff(99, 103), SNAP) is None
    assert RULE.bridges(diff(101, 103), SNAP) is None  # contiguous: U == lastUpdateId + 1
    assert RULE.bridges(diff(101, 101), SNAP) is None
    why = RULE.bridges(diff(102, 110), SNAP)  # the snapshot is older than the stream
    assert why == "U 102 .. u 110 does not hold lastUpdateId 100 + 1"


def test_each_next_event_starts_at_previous_u_plus_one():
    assert RULE.follows(diff(104, 110), diff(101, 103)) is None
    assert RULE.follows(diff(105, 110), diff(101, 103)) == "U 105 != previous u 103 + 1"
    assert RULE.follows(diff(101, 103), diff(101, 103)) is not None  # a duplicate


def test_stale_diffs_at_start_up_are_dropped_not_desyncs():
    """Real captures: diffs older than the REST snapshot arrive first."""
    buffered = [diff(90, 94), diff(95, 97), diff(98, 99), diff(100, 100),
                diff(101, 105), diff(106, 106), diff(107, 111)]
    assert run(RULE, SNAP, buffered) == []


def test_a_lost_diff_is_a_desync():
    stream = [diff(101, 105), diff(108, 111)]  # 106..107 lost
    assert run(RULE, SNAP, stream) == ["U 108 != previous u 105 + 1"]


def test_removing_a_level_the_book_does_not_hold_is_not_a_desync():
    """Real captures (and Binance's own docs): a size-0 level the book never had."""
    stream = [diff(101, 102, bids=[("9.5", "0.00000000")]),
              diff(103, 104, asks=[("10.5", "0"), ("11.0", "2")])]
    assert run(RULE, SNAP, stream) == []


def test_the_spot_rule_fails_on_usd_m_traffic():
    """The reason USD-M has its own rule: there U is never previous u + 1."""
    usdm = [diff(95, 103, prev=90), diff(104, 109, prev=103), diff(106, 112, prev=109)]
    assert run(FUTURES_RULE, SNAP, usdm) == []
    assert run(RULE, SNAP, usdm) == ["U 106 != previous u 109 + 1"]


def test_every_rule_module_registers_its_venue():
    """book-core's registry reads ``RULES = {venue: class}`` from each module."""
    import importlib

    venues = {"binance": "binance", "binance_futures": "binance-futures", "okx": "okx",
              "kraken": "kraken", "kraken_v1": "kraken-v1", "coinbase": "coinbase",
              "coinbase_exchange": "coinbase-exchange", "bitstamp": "bitstamp"}
    for module, venue in venues.items():
        mod = importlib.import_module(f"rtkit.books.rules.{module}")
        (cls,) = mod.RULES.values()
        assert list(mod.RULES) == [venue] and cls().name == venue
        assert isinstance(mod.RULE, cls)
