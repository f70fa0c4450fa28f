"""Golden tests: every venue's fixture frames and the ticks they must become.

A fixture file ``fixtures/<venue>.json`` holds::

    {"venue": "binance", "options": {...},
     "cases": [{"name": "...", "frame": "<text>" | {"json": ...},
                "ticks": [[symbol, trade_id, timestamp_ns, price, volume, side], ...]
                | "control": "ack" | "reject": "missing_field"
                | "item_rejects": ["bad_number", ...] (with "ticks")}]}

``side`` is "buy", "sell" or null. Values are compared exactly.
"""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from rtkit.validate import BUY, SELL, UNKNOWN_SIDE, Reject
from rtkit.venues import Control, get_adapter

FIXTURES = sorted((Path(__file__).parent / "fixtures").glob("*.json"))
SIDES = {"buy": BUY, "sell": SELL, None: UNKNOWN_SIDE}


def _cases():
    for path in FIXTURES:
        spec = json.loads(path.read_text())
        for i, case in enumerate(spec["cases"]):
            yield pytest.param(spec, case, id=f"{path.stem}-{i}-{case.get('name', '')}")


def _frame(case):
    frame = case["frame"]
    return orjson.dumps(frame["json"]) if isinstance(frame, dict) else frame


@pytest.mark.parametrize(("spec", "case"), list(_cases()))
def test_fixture(spec, case):
    adapter = get_adapter(spec["venue"], **spec.get("options", {}))
    for warmup in spec.get("warmup", []):  # frames that set adapter state (e.g. Kraken v1 ids)
        adapter.parse(warmup, 0)
    frame = _frame(case)
    if "reject" in case:
        with pytest.raises(Reject) as info:
            adapter.parse(frame, 1)
        assert info.value.reason == case["reject"]
        return
    out = adapter.parse(frame, 1)
    if "control" in case:
        assert isinstance(out, Control), out
        assert out.kind == case["control"]
        return
    assert isinstance(out, list)
    ticks = [t for t in out if isinstance(t, tuple)]
    rejects = [r.reason for r in out if isinstance(r, Reject)]
    expected = [(s, tid, ts, p, v, SIDES[side], *rest) for s, tid, ts, p, v, side, *rest in
                case["ticks"]]
    assert ticks == expected
    assert rejects == case.get("item_rejects", [])


def test_every_venue_has_fixtures():
    from rtkit.venues import venue_names

    covered = {json.loads(p.read_text())["venue"] for p in FIXTURES}
    assert set(venue_names()) <= covered
