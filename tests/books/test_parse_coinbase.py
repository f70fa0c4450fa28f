"""rtkit.books.parse.coinbase: the documented examples (fixtures/coinbase.json) → neutral form."""

from __future__ import annotations

import pytest

from rtkit.books.parse import coinbase as venue
from tests.books.golden import cases, check_case, spec

RECEIVED = spec("coinbase")["received_at"]


@pytest.mark.parametrize("case", cases("coinbase"))
def test_documented_example(case):
    check_case(venue.parse, case, RECEIVED)
