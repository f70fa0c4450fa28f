"""Kraken v1's rule (rtkit.books.rules.kraken_v1) and the 2b lessons."""

from __future__ import annotations

import orjson

from rtkit.books.checksum import kraken_crc32
from rtkit.books.parse import kraken_v1 as parse_v1
from rtkit.books.rules.kraken_v1 import RULE
from tests.books.driver import R, run
from tests.books.golden import spec
from tests.books.standin import StandInBook


def _parse(frame):
    (m,) = parse_v1.parse(orjson.dumps(frame), R).book
    return m


def _example_snapshot():
    return _parse(spec("kraken-v1")["cases"][0]["frame"])


def test_facts():
    assert (RULE.name, RULE.verified, RULE.snapshot_from) == ("kraken-v1", True, "ws")


def test_snapshot_carries_no_checksum_and_passes():
    snap = _example_snapshot()
    assert snap.checksum is None
    assert run(RULE, snap, []) == []


def test_documented_update_checksum_on_the_documented_state():
    """The guide's state hashes to 974947235; an update that changes nothing in
    the top 10 (a level deeper than it) keeps that checksum."""
    snap = _example_snapshot()
    deep = _parse([0, {"a": [["0.05120", "0.00000500", "1582905486.493008"]]},
                   {"b": [["0.04765", "0.00000500", "1582905486.493008"]], "c": "974947235"},
                   "book-100", "XBT/USD"])
    assert run(RULE, snap, [deep], StandInBook(depth=100)) == []


def test_republished_levels_with_r_are_normal_updates():
    snap = _example_snapshot()
    republish = _parse([1, {"a": [["0.05005", "0.00000500", "1582905489.000001", "r"]]},
                        "book-10", "XBT/USD"])
    top = snap.asks  # republished unchanged: same checksum
    republish.checksum = kraken_crc32(top, snap.bids)
    assert run(RULE, snap, [republish], StandInBook(depth=10)) == []


def test_a_price_repeated_in_one_message_is_applied_in_order():
    snap = _example_snapshot()
    frame = [1, {"a": [["0.05005", "0.00000100", "1582905489.000001"],
                       ["0.05005", "0.00000700", "1582905489.000002"]]},
             "book-10", "XBT/USD"]
    update = _parse(frame)
    asks = [("0.05005", "0.00000700")] + snap.asks[1:]
    update.checksum = kraken_crc32(asks, snap.bids)
    assert run(RULE, snap, [update], StandInBook(depth=10)) == []
    reordered = _parse([1, {"a": frame[1]["a"][::-1]}, "book-10", "XBT/USD"])
    reordered.checksum = update.checksum
    assert run(RULE, snap, [reordered], StandInBook(depth=10)) != []


def test_a_lost_update_shows_as_a_checksum_mismatch():
    snap = _example_snapshot()
    lost = _parse([1, {"b": [["0.05000", "0.00000300", "1582905489.1"]]}, "book-10", "XBT/USD"])
    after_lost = [("0.05000", "0.00000300")] + snap.bids[1:]
    nxt = _parse([1, {"a": [["0.05005", "0.00000600", "1582905489.2"]]}, "book-10", "XBT/USD"])
    nxt.checksum = kraken_crc32([("0.05005", "0.00000600")] + snap.asks[1:], after_lost)
    reasons = run(RULE, snap, [nxt], StandInBook(depth=10))  # `lost` never arrived
    assert len(reasons) == 1 and reasons[0].startswith(f"crc32 expected {nxt.checksum}")
    assert run(RULE, snap, [lost, nxt], StandInBook(depth=10)) == []
