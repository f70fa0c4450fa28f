"""rtkit.books.parse.okx: the documented examples (fixtures/okx.json) → neutral form."""

from __future__ import annotations

import pytest

from rtkit.books.parse import okx as venue
from tests.books.golden import cases, check_case, spec

RECEIVED = spec("okx")["received_at"]


@pytest.mark.parametrize("case", cases("okx"))
def test_documented_example(case):
    check_case(venue.parse, case, RECEIVED)
