"""rtkit.books.parse.coinbase_exchange: documented examples → neutral form."""

from __future__ import annotations

import pytest

from rtkit.books.parse import coinbase_exchange as venue
from tests.books.golden import cases, check_case, check_rest, spec

RECEIVED = spec("coinbase-exchange")["received_at"]


@pytest.mark.parametrize("case", cases("coinbase-exchange"))
def test_documented_example(case):
    check_case(venue.parse, case, RECEIVED)


@pytest.mark.parametrize("case", cases("coinbase-exchange", "rest"))
def test_documented_rest_snapshot(case):
    check_rest(venue.rest_snapshot, case, RECEIVED)
