"""The declared types (rtkit.typedefs) against what the code really produces: the stats
dicts of a live collector, an on-chain collector and a replay, and the words the source
uses for statuses, control kinds and reject reasons."""

from __future__ import annotations

import ast
import types
import typing
from pathlib import Path

import pytest

import rtkit
import rtkit.collector
import rtkit.validate
from rtkit.onchain import ChainCollector, Pool
from rtkit.sim import EthereumNode, Simulator
from rtkit.typedefs import (
    CONTROL_KINDS,
    REASONS,
    STATES,
    ChainStats,
    CollectorStats,
    PipelineStats,
    ReplaySummary,
)
from tests.conftest import wait_for

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "rtkit" / "samples" / "binance_sample.jsonl.gz"


def conforms(value, hint) -> bool:
    """Whether ``value`` is of the declared type (the few forms typedefs uses)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is type(None):
        return value is None
    if origin is typing.Literal:
        return value in args
    if origin in (typing.Union, types.UnionType):
        return any(conforms(value, a) for a in args)
    if origin is dict:
        return isinstance(value, dict) and all(
            conforms(k, args[0]) and conforms(v, args[1]) for k, v in value.items())
    if origin is list:
        return isinstance(value, list) and all(conforms(v, args[0]) for v in value)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, hint) and not (hint is int and isinstance(value, bool))


def assert_declared(stats: dict, declared) -> None:
    hints = typing.get_type_hints(declared)
    required = declared.__required_keys__  # NotRequired keys may be absent
    assert set(stats) <= set(hints) and required <= set(stats), (
        f"undeclared: {sorted(set(stats) - set(hints))}, "
        f"declared but absent: {sorted(required - set(stats))}")
    wrong = {k: (stats[k], hints[k]) for k in stats if not conforms(stats[k], hints[k])}
    assert not wrong, f"values not of the declared type: {wrong}"


@pytest.mark.usefixtures("no_thread_leak")
def test_a_live_collectors_stats_are_the_declared_ones(db):
    with Simulator("binance", rate=2000, count=300, seed=3) as sim:
        c = rtkit.collect("binance", ["BTC-USDT"], url=sim.url, db=db, flush_interval_s=0.1)
        try:
            wait_for(lambda: c.stats["stored"] >= 300)
            assert_declared(c.stats, CollectorStats)  # while live
            assert_declared(c.pipeline.stats(), PipelineStats)
        finally:
            c.stop()
    assert_declared(c.stats, CollectorStats)  # and stopped


@pytest.mark.usefixtures("no_thread_leak")
def test_an_onchain_collectors_stats_are_the_declared_ones(tmp_path):
    pools = [Pool("0x0d4a11d5eeaac28ec3f61d100daf4d40471f1852", token0="ETH", token1="USDT",
                  decimals0=18, decimals1=6, version=2)]
    node = EthereumNode(pools, count=10, swaps_per_block=2, block_interval_s=0.01, seed=1)
    with node, ChainCollector(pools, url=node.start().url, db=tmp_path / "chain.sqlite",
                              flush_interval_s=0.1) as c:
        wait_for(lambda: node.settled, 10)
        wait_for(lambda: c.stats["stored"] > 0, 10)
    assert_declared(c.stats, ChainStats)


def test_a_replay_summary_is_the_declared_one(tmp_path):
    """A replay collects every kind its venue offers (Binance: quotes and books too), so
    beside ``ReplaySummary`` it has each kind's counters, declared by the kind's
    description (``Kind.counters``), and the books' keeper counters: ints all."""
    from rtkit.books.keeper import BookKeeper
    from rtkit.kinds import kinds

    summary = rtkit.replay(SAMPLE, db=tmp_path / "replayed.sqlite")
    by_kinds = {"rows_not_collected", *BookKeeper("binance", [], lambda: None).stats()}
    for kind in kinds().values():
        by_kinds.update(kind.counters or ())
        by_kinds.update({f"{kind.name}_dropped_overflow", f"{kind.name}_unstorable"})
    extra = {k: v for k, v in summary.items()
             if k not in typing.get_type_hints(ReplaySummary) and k in by_kinds}
    assert all(type(v) is int for v in extra.values()), extra
    assert_declared({k: v for k, v in summary.items() if k not in extra}, ReplaySummary)


def test_reject_reasons_have_one_home():
    assert rtkit.validate.REASONS is REASONS
    assert len(set(REASONS)) == len(REASONS)


def test_the_collectors_states_are_the_declared_ones():
    assert tuple(rtkit.collector.STATES) == STATES


def _calls(name: str):
    """(file, line, first argument) of every ``name(...)`` call in rtkit/."""
    for path in sorted((ROOT / "rtkit").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and node.args and (
                    getattr(node.func, "id", None) == name
                    or getattr(node.func, "attr", None) == name):
                yield f"{path.relative_to(ROOT)}:{node.lineno}", node.args[0]


def _words(arg: ast.expr) -> list[str]:
    """The string constants an argument can be (a plain one or either side of an ``if``)."""
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return [arg.value]
    if isinstance(arg, ast.IfExp):
        return _words(arg.body) + _words(arg.orelse)
    return []


def _compared(attribute: str):
    """(file, line, word) of every ``x.<attribute> == "word"`` in rtkit/."""
    for path in sorted((ROOT / "rtkit").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare) and getattr(node.left, "attr", None) == attribute:
                for right in node.comparators:
                    for word in _words(right):
                        yield f"{path.relative_to(ROOT)}:{node.lineno}", word


def test_every_control_kind_in_the_source_is_declared():
    used = {(where, w) for where, arg in _calls("Control") for w in _words(arg)}
    used |= set(_compared("kind"))
    assert len(used) > 30  # the adapters' controls were found
    assert not {u for u in used if u[1] not in CONTROL_KINDS}
    assert {w for _, w in used} == set(CONTROL_KINDS)  # and every declared kind is used


def test_every_status_in_the_source_is_declared():
    used = {(where, w) for name in ("Status", "_set_status") for where, arg in _calls(name)
            for w in _words(arg)}
    assert len(used) > 5
    assert not {u for u in used if u[1] not in STATES}
