"""rtkit.books.parse.binance: the documented examples (fixtures/binance.json) → neutral form."""

from __future__ import annotations

import pytest

from rtkit.books.parse import binance as venue
from tests.books.golden import cases, check_case, check_rest, spec

RECEIVED = spec("binance")["received_at"]


@pytest.mark.parametrize("case", cases("binance"))
def test_documented_example(case):
    check_case(venue.parse, case, RECEIVED)


@pytest.mark.parametrize("case", cases("binance", "rest"))
def test_documented_rest_snapshot(case):
    check_rest(venue.rest_snapshot, case, RECEIVED)
