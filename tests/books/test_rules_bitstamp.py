"""Bitstamp's rule: no proof (unverified), REST snapshot, stale diffs dropped."""

from __future__ import annotations

from rtkit.books.rules.bitstamp import RULE as BITSTAMP
from tests.books.driver import msg, run

US = 1_000


def test_facts():
    assert (BITSTAMP.name, BITSTAMP.verified, BITSTAMP.snapshot_from) == ("bitstamp", False, "rest")


def test_bitstamp_drops_diffs_older_than_the_snapshot_microtimestamp():
    """Real captures: they arrive first."""
    t = 1_643_643_584_684_047 * US
    snap = msg(snapshot=True, source="rest", ts=t, bids=[("36906", "1")], asks=[("36934", "1")])
    older = msg(ts=t - US, bids=[("36906", "5")])
    same = msg(ts=t, bids=[("36906", "1")])
    newer = msg(ts=t + US, asks=[("36934", "0.5")])
    assert BITSTAMP.drop_before_snapshot(older, snap)
    assert not BITSTAMP.drop_before_snapshot(same, snap)
    assert not BITSTAMP.drop_before_snapshot(newer, snap)
    assert run(BITSTAMP, snap, [older, same, newer]) == []
