"""rtkit.books.parse.bitstamp: the documented examples (fixtures/bitstamp.json) → neutral form."""

from __future__ import annotations

import pytest

from rtkit.books.parse import bitstamp as venue
from tests.books.golden import cases, check_case, check_rest, spec

RECEIVED = spec("bitstamp")["received_at"]


@pytest.mark.parametrize("case", cases("bitstamp"))
def test_documented_example(case):
    check_case(venue.parse, case, RECEIVED)


@pytest.mark.parametrize("case", cases("bitstamp", "rest"))
def test_documented_rest_snapshot(case):
    check_rest(venue.rest_snapshot, case, RECEIVED)
