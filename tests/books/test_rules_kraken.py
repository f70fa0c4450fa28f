"""Kraken v2's rule (rtkit.books.rules.kraken): the checksum after every message."""

from __future__ import annotations

import json

import pytest

from rtkit.books.checksum import kraken_crc32
from rtkit.books.parse import kraken as parse_kraken
from rtkit.books.rules.kraken import RULE
from tests.books.driver import R, msg, run
from tests.books.golden import spec
from tests.books.standin import StandInBook


def _snapshot(case: int = 1):
    (snap,) = parse_kraken.parse(spec("kraken")["cases"][case]["text"], R).book
    return snap


def test_facts():
    assert (RULE.name, RULE.verified, RULE.snapshot_from) == ("kraken", True, "ws")


@pytest.mark.parametrize("case", [0, 1], ids=["string decoder", "numbers on the wire"])
def test_documented_snapshot_verifies(case):
    snap = _snapshot(case)
    book = StandInBook(depth=10)
    book.apply(snap)
    assert RULE.verify(book, snap) is None


def test_a_corrupted_level_is_a_checksum_desync():
    snap = _snapshot()
    book = StandInBook(depth=10)
    book.apply(snap)
    book.apply(msg(asks=[("45286.4", "1.54571954")]))  # one satoshi off
    why = RULE.verify(book, msg(checksum=3310070434))
    assert why is not None and why.startswith("crc32 expected 3310070434 computed ")


def test_update_after_truncation_to_the_subscribed_depth():
    """Kraken sends no qty 0 for a level pushed out of the subscribed depth: the
    book must cut it itself before the checksum (the stand-in cuts at depth 10)."""
    snap = _snapshot()
    new_bid = ("45284.0", "0.50000000")  # inside the spread: the 10th bid falls out
    bids = [new_bid] + snap.bids[:9]
    expected = kraken_crc32(snap.asks, bids)
    update = msg(bids=[new_bid], checksum=expected)
    assert run(RULE, snap, [update], StandInBook(depth=10)) == []
    kept_too_deep = StandInBook(depth=None)
    assert run(RULE, snap, [update], kept_too_deep) == []  # the top 10 is what is hashed
    assert len(kept_too_deep.levels("bid", 100)) == 11


def test_without_a_checksum_nothing_is_verified():
    assert RULE.verify(StandInBook(), msg(checksum=None)) is None
    assert RULE.follows(msg(), msg()) is None and RULE.bridges(msg(), msg()) is None


def test_float_parsed_book_frames_are_refused():
    """The float round-trip (0.10000000 → 0.1) would break every checksum."""
    frame = json.loads(spec("kraken")["cases"][1]["text"])  # numbers become floats
    with pytest.raises(ValueError, match="checksum"):
        parse_kraken.parse(frame, R)
