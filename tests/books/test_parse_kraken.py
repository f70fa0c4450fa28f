"""rtkit.books.parse.kraken: the documented examples (fixtures/kraken.json) → neutral form."""

from __future__ import annotations

import pytest

from rtkit.books.parse import kraken as venue
from tests.books.golden import cases, check_case, spec

RECEIVED = spec("kraken")["received_at"]


@pytest.mark.parametrize("case", cases("kraken"))
def test_documented_example(case):
    check_case(venue.parse, case, RECEIVED)
