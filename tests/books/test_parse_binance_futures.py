"""rtkit.books.parse.binance_futures: documented examples → neutral form."""

from __future__ import annotations

import pytest

from rtkit.books.parse import binance_futures as venue
from tests.books.golden import cases, check_case, check_rest, spec

RECEIVED = spec("binance-futures")["received_at"]


@pytest.mark.parametrize("case", cases("binance-futures"))
def test_documented_example(case):
    check_case(venue.parse, case, RECEIVED)


@pytest.mark.parametrize("case", cases("binance-futures", "rest"))
def test_documented_rest_snapshot(case):
    check_rest(venue.rest_snapshot, case, RECEIVED)
