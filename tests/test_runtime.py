"""The runtime's parts on their own: the status table, the configuration, the SQLite sink."""

from __future__ import annotations

import ast
import dataclasses
import os
from pathlib import Path

import pytest

import rtkit
from rtkit.runtime.config import CollectorConfig
from rtkit.runtime.status import (
    FINAL,
    RUNNING,
    STATES,
    TRANSITIONS,
    IllegalTransition,
    Status,
    StatusMachine,
)
from rtkit.sinks import RunEnd, RunInfo, SinkRefused
from rtkit.sinks.sqlite import SQLiteSink

RUN = RunInfo("t", "binance", ["BTC-USDT"], "ws://127.0.0.1:1/ws", {}, 1)


def machine_at(state: str) -> StatusMachine:
    m = StatusMachine()
    m._status = Status(state)  # the table is what is under test, not the way there
    return m


# --- the status machine -----------------------------------------------------------------
def test_the_table_names_every_state_but_the_shown_one():
    assert set(TRANSITIONS) | {"storage_error"} == set(STATES)
    assert all(targets <= set(TRANSITIONS) for targets in TRANSITIONS.values())
    assert all(not TRANSITIONS[s] for s in FINAL)
    assert "stopped" in StatusMachine.table() and "(final)" in StatusMachine.table()


@pytest.mark.parametrize("old", list(TRANSITIONS))
def test_a_move_outside_the_table_fails_loudly(old):
    for new in TRANSITIONS:
        m = machine_at(old)
        if new in TRANSITIONS[old]:
            assert m.move(new, "why") and m.current == new and m.current.reason == "why"
        else:
            with pytest.raises(IllegalTransition, match=f"from '{old}' to '{new}'"):
                m.move(new)
            assert m.current == old


def test_after_a_stop_request_no_running_state_is_entered_and_finish_stops():
    """A thread on its way out may still try to say `live`/`backoff`: ignored, and the
    end of the threads makes it `stopped` (never stuck at `live`)."""
    m = machine_at("live")
    m.request_stop()
    for state in RUNNING:
        assert m.move(state) is False
    assert m.current == "live"
    m.finish()
    assert m.current == "stopped"
    assert m.move("stopping") is False and m.current == "stopped"  # stop() racing the threads
    m.finish()  # twice (stop() and the last thread): still stopped, no error
    assert m.current == "stopped"


def test_failed_is_final_even_for_stop():
    m = machine_at("failed")
    m.request_stop()
    m.finish()
    assert m.current == "failed" and m.move("stopping") is False


def test_reasons_are_redacted():
    m = StatusMachine(redact=lambda text: text.replace("secret", "***"))
    m.move("connecting", "wss://x/?key=secret")
    assert m.current.reason == "wss://x/?key=***"


# --- the configuration ------------------------------------------------------------------
def test_a_misspelt_collector_keyword_is_the_collectors_error_with_a_suggestion(db):
    with pytest.raises(TypeError, match=r"'flush_intervall_s' \(did you mean 'flush_interval_s'"):
        rtkit.Collector("binance", ["BTC-USDT"], db=db, flush_intervall_s=0.5)
    with pytest.raises(TypeError, match=r"'chanel' \(did you mean 'channel'.*venue_options="):
        rtkit.Collector("binance", ["BTC-USDT"], db=db, chanel="aggTrade")


def test_venue_options_travel_as_a_mapping_and_again_rebuilds_from_the_config(db):
    c = rtkit.Collector("binance", ["btcusdt"], db=db, capacity=321,
                        venue_options={"channel": "aggTrade"})
    assert c.adapter.channel == "aggTrade"
    assert dataclasses.is_dataclass(c.config) and isinstance(c.config, CollectorConfig)
    assert c.config.venue_options == {"channel": "aggTrade"} and c.config.capacity == 321
    twin = c.again()
    assert twin.adapter.channel == "aggTrade" and twin.ring.capacity == 321
    assert twin.config == c.config and twin is not c


def test_an_unknown_venue_is_still_named_as_such(db):
    with pytest.raises(ValueError, match="unknown venue 'nyse'"):
        rtkit.Collector("nyse", ["BTC-USDT"], db=db, channel="x")


# --- the SQLite sink --------------------------------------------------------------------
def test_the_sqlite_sink_closes_itself_when_its_file_is_replaced(tmp_path):
    path = tmp_path / "ticks.sqlite"
    sink = SQLiteSink(path)
    sink.open(RUN)
    assert sink.is_open and sink.check() is None
    other = tmp_path / "other.sqlite"
    SQLiteSink(other).probe()
    os.replace(other, path)
    problem = sink.check()
    assert "moved, replaced or deleted" in problem and not sink.is_open
    sink.open(RUN)
    assert sink.write(([], [], []), []) == 0
    sink.close(RunEnd(2, "stopped", {"stored": 0}))
    assert not sink.is_open


def test_the_sqlite_sink_says_why_it_cannot_open(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(SinkRefused, match="StoreError"):
        SQLiteSink(blocker / "ticks.sqlite").open(RUN)


# --- the shape --------------------------------------------------------------------------
def test_no_class_reaches_250_lines():
    """Issue #12: every class under rtkit/ stays under 250 lines (one concern each)."""
    root = Path(rtkit.__file__).parent
    too_long = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 >= 250:
                too_long.append((str(path.relative_to(root)), node.name,
                                 node.end_lineno - node.lineno + 1))
    assert not too_long, too_long
