"""Coinbase Exchange's rule: no proof, an unverified book."""

from __future__ import annotations

from rtkit.books.rules.coinbase_exchange import RULE as COINBASE_EXCHANGE
from tests.books.driver import msg, run


def test_facts():
    assert (COINBASE_EXCHANGE.name, COINBASE_EXCHANGE.verified,
            COINBASE_EXCHANGE.snapshot_from) == ("coinbase-exchange", False, "ws")


def test_coinbase_exchange_accepts_any_order_and_verifies_nothing():
    snap = msg(snapshot=True, bids=[("10", "1")], asks=[("11", "1")])
    stream = [msg(bids=[("10", "2")]), msg(asks=[("12", "0")]), msg(bids=[("9", "0")])]
    assert run(COINBASE_EXCHANGE, snap, stream) == []
    assert not COINBASE_EXCHANGE.drop_before_snapshot(stream[0], snap)
