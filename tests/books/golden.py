"""Golden fixtures: the venues' documented example messages and the neutral
form they must become (``fixtures/<venue>.json``; each file says where its
examples come from).

A case has ``frame`` (JSON) or ``text`` (the exact frame text), and the
expected ``book`` (BookMessage fields), ``quotes`` (rows) or ``reject`` (the
reason); a case with none of them is a frame that is not a book/BBO frame.
``rest`` cases give a REST ``body``, the ``symbol`` and the expected ``book``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import orjson
import pytest

from rtkit.books import BookMessage
from rtkit.validate import Reject

FIXTURES = Path(__file__).parent / "fixtures"


def spec(venue: str) -> dict:
    return json.loads((FIXTURES / f"{venue}.json").read_text())


def neutral(msg: BookMessage) -> dict:
    """A BookMessage as plain JSON-like values (levels as lists)."""
    out = dataclasses.asdict(msg)
    out["bids"] = [list(level) for level in msg.bids]
    out["asks"] = [list(level) for level in msg.asks]
    return out


def frame_of(case: dict):
    return case["text"] if "text" in case else orjson.dumps(case["frame"])


def cases(venue: str, key: str = "cases") -> list:
    return [pytest.param(case, id=case["name"]) for case in spec(venue).get(key, [])]


def check_case(parse, case: dict, received_at: int) -> None:
    frame = frame_of(case)
    if "reject" in case:
        with pytest.raises(Reject) as info:
            parse(frame, received_at)
        assert info.value.reason == case["reject"]
        return
    parsed = parse(frame, received_at)
    assert [neutral(m) for m in parsed.book] == case.get("book", [])
    assert [list(row) for row in parsed.quotes] == case.get("quotes", [])


def check_rest(rest_snapshot, case: dict, received_at: int) -> None:
    msg = rest_snapshot(case["body"], case["symbol"], received_at)
    assert neutral(msg) == case["book"]
