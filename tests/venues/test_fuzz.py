"""A type-mutation fuzz of every venue adapter, seeded from the golden fixtures.

Each node of each fixture frame that carries trades is replaced, one at a time,
by hostile values (huge and negative numbers, 1e308, "nan", empty and very
long strings, containers, null, booleans, non-ASCII digits, control and bidi
characters...). Whatever a venue sends, the adapter must answer with ticks
that obey the tick schema, per-trade rejects, a Control or a Reject of the
frame: never an exception, and a bad trade never takes its frame's good
trades with it. The mutations are the same on every run.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections import Counter
from pathlib import Path

import pytest

from rtkit.buffer import RingBuffer
from rtkit.pipeline import Pipeline
from rtkit.validate import (
    BUY,
    MAX_ID,
    MAX_SYMBOL_CHARS,
    MAX_TRADE_ID_CHARS,
    MAX_TS_NS,
    MAX_VALUE,
    MIN_TS_NS,
    SELL,
    UNKNOWN_SIDE,
    Reject,
)  # fmt: skip
from rtkit.venues import Control, get_adapter

FIXTURES = sorted((Path(__file__).parent / "fixtures").glob("*.json"))
#: mutated frames tried per venue at most (a deterministic sample beyond that)
MAX_MUTANTS_PER_VENUE = 4000
#: a receive time inside the accepted range (the generic venue falls back to it)
RECEIVED_AT = 1_764_000_000_000_000_000
SYMBOL_FORM = re.compile(r"[A-Z0-9]+(-[A-Z0-9]+)?")
TRADE_ID_FORM = re.compile(r"[\x20-\x7e]+")

HOSTILE_VALUES = [
    0, -1, 1, 2**63, 2**64 - 1, -(2**63) - 1, 10**30, 1e308, -1e308, 5e-324, -0.0, 1.5,
    "nan", "NaN", "inf", "-Infinity", "", " ", "0", "-1", "1e308", "-1e308", "1e-400",
    "1_000.5", " 65000 ", "\u0661\u0662\u0663", "\uff11\uff12\uff13", "\u00b2",
    "x" * 100_000, "9" * 5000, "\x1b[31mred\x1b[0m", "abc\u202edef", "a\x00b",
    "<SCRIPT>ALERT(1)</SCRIPT>", "2026-02-31T00:00:00Z", "2023-09-25T07:49:37.5+99:99",
    "BTC" + "A" * 5000 + "USDT", [], [1, 2], {}, {"a": 1}, None, True, False,
]  # fmt: skip


def _venue_cases() -> dict[str, tuple[dict, list]]:
    """venue → (fixture spec, the decoded frames of its cases that carry ticks)."""
    out = {}
    for path in FIXTURES:
        spec = json.loads(path.read_text())
        frames = []
        for case in spec["cases"]:
            if case.get("ticks"):
                frame = case["frame"]
                frames.append(frame["json"] if isinstance(frame, dict) else json.loads(frame))
        out[spec["venue"]] = (spec, frames)
    return out


CASES = _venue_cases()


def _paths(node, path=()):
    """Every path to a node below the root, containers included."""
    children = (node.items() if type(node) is dict else enumerate(node) if type(node) is list
                else ())
    for key, child in children:
        yield (*path, key)
        yield from _paths(child, (*path, key))


def _replaced(node, path, value):
    """A copy of ``node`` with the node at ``path`` replaced by ``value``."""
    if not path:
        return value
    copy = dict(node) if type(node) is dict else list(node)
    copy[path[0]] = _replaced(node[path[0]], path[1:], value)
    return copy


def _text(frame) -> bytes:
    """JSON as venues send it: compact, non-ASCII as UTF-8 (so fast paths that
    vouch for a whole frame at once are exercised too)."""
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":")).encode()


def _mutants(venue: str) -> list[bytes]:
    """The deterministic set of mutated frames for one venue."""
    _, frames = CASES[venue]
    mutants = [
        _text(_replaced(frame, path, value))
        for frame in frames for path in _paths(frame) for value in HOSTILE_VALUES
    ]
    if len(mutants) > MAX_MUTANTS_PER_VENUE:
        mutants = random.Random(f"fuzz-{venue}").sample(mutants, MAX_MUTANTS_PER_VENUE)
    return mutants


def _fresh_adapter(spec: dict):
    adapter = get_adapter(spec["venue"], **spec.get("options", {}))
    for warmup in spec.get("warmup", []):
        adapter.parse(warmup, 0)
    return adapter


def check_tick(tick) -> None:
    """Fail unless ``tick`` obeys the tick schema (see rtkit.venues.base)."""
    assert type(tick) is tuple and len(tick) in (6, 7), tick
    symbol, tid, ts, price, volume, side = tick[:6]
    assert type(symbol) is str and len(symbol) <= MAX_SYMBOL_CHARS, symbol[:80]
    assert SYMBOL_FORM.fullmatch(symbol), symbol[:80]
    if type(tid) is int:
        assert -MAX_ID - 1 <= tid <= MAX_ID
    else:
        assert type(tid) is str and len(tid) <= MAX_TRADE_ID_CHARS, repr(tid)[:80]
        assert TRADE_ID_FORM.fullmatch(tid), repr(tid)[:80]
    assert type(ts) is int and MIN_TS_NS <= ts <= MAX_TS_NS, ts
    for value in (price, volume):
        assert type(value) is float and math.isfinite(value) and 0.0 < value <= MAX_VALUE
    assert side in (BUY, SELL, UNKNOWN_SIDE)
    if len(tick) == 7:
        assert type(tick[6]) is int and 0 <= tick[6] <= tid


@pytest.mark.parametrize("venue", sorted(CASES))
def test_hostile_values_never_escape_an_adapter(venue):
    spec, frames = CASES[venue]
    assert frames, f"{venue} has no fixture frame with ticks to mutate"
    adapter = _fresh_adapter(spec)
    baseline = {}
    for frame in frames:
        text = _text(frame)
        baseline[text] = [t for t in adapter.parse(text, RECEIVED_AT) if type(t) is tuple]
    outcomes = Counter()
    for mutant in _mutants(venue):
        try:
            out = adapter.parse(mutant, RECEIVED_AT)
        except Reject as reject:
            outcomes[reject.reason] += 1
            continue
        except Exception as exc:  # noqa: BLE001 - exactly what must not happen
            pytest.fail(f"{venue}: {type(exc).__name__}: {exc!s:.200} on {mutant[:300]!r}")
        if isinstance(out, Control):
            outcomes["control"] += 1
            continue
        assert type(out) is list, out
        for item in out:
            if type(item) is tuple:
                check_tick(item)
                outcomes["tick"] += 1
            else:
                assert type(item) is Reject, item
                outcomes[item.reason] += 1
    assert outcomes["tick"] and sum(outcomes.values()) > outcomes["tick"], outcomes
    assert "adapter_error" not in outcomes, outcomes


def _is_trade_like(node) -> bool:
    """A dict or list of plain values: what one trade of a batch looks like."""
    values = node.values() if type(node) is dict else node if type(node) is list else None
    return values is not None and all(type(v) not in (dict, list) for v in values)


def _batch_of(frame):
    """(path, trades) of the first list of two or more trade-like items in a frame."""
    for path in ((), *_paths(frame)):
        node = frame
        for key in path:
            node = node[key]
        if type(node) is list and len(node) >= 2 and all(map(_is_trade_like, node)):
            return path, node
    return None


BATCHED = sorted(venue for venue, (_, frames) in CASES.items()
                 if any(_batch_of(frame) for frame in frames))


@pytest.mark.parametrize("venue", BATCHED)
def test_a_hostile_trade_never_takes_its_frames_good_trades(venue):
    """In a frame of several trades, spoiling one field of one trade keeps the others."""
    spec, frames = CASES[venue]
    adapter = _fresh_adapter(spec)
    for frame in frames:
        batch = _batch_of(frame)
        if batch is None:
            continue
        path, trades = batch
        text = _text(frame)
        good = [t for t in adapter.parse(text, RECEIVED_AT) if type(t) is tuple]
        for i, trade in enumerate(trades):
            for key in (trade.keys() if type(trade) is dict else range(len(trade))):
                for value in ("1e308", 1e308, -1e308, "x" * 10_000, [], None, "\u0661"):
                    mutant = _replaced(frame, (*path, i, key), value)
                    out = adapter.parse(_text(mutant), RECEIVED_AT)
                    kept = [t for t in out if type(t) is tuple]
                    survivors = [t for t in good if t in kept]
                    # the spoilt trade may be lost (or change), never another one
                    assert len(survivors) >= len(good) - 1, (venue, i, key, value, out)


def test_hostile_frames_through_the_pipeline_are_counted_never_raised():
    """Every venue's mutants through a Pipeline: the accounting adds up, no adapter_error."""
    for venue, (spec, _) in sorted(CASES.items()):
        mutants = _mutants(venue)[:500]
        pipeline = Pipeline(_fresh_adapter(spec), RingBuffer(1000))
        pipeline.process_frames(mutants, RECEIVED_AT)
        s = pipeline.stats()
        assert s["frames"] == len(mutants)
        assert s["frames"] == s["tick_frames"] + s["control"] + s["rejected_frames"], s
        assert "adapter_error" not in s["rejected_by_reason"], (venue, s["rejected_by_reason"])
