"""rtkit.books.parse.kraken_v1: the documented examples (fixtures/kraken-v1.json) → neutral form."""

from __future__ import annotations

import pytest

from rtkit.books.parse import kraken_v1 as venue
from tests.books.golden import cases, check_case, spec

RECEIVED = spec("kraken-v1")["received_at"]


@pytest.mark.parametrize("case", cases("kraken-v1"))
def test_documented_example(case):
    check_case(venue.parse, case, RECEIVED)
