"""The control panel in plain pytest (``Button.click()`` runs the handlers) and in a real
kernel (widget updates from the refresh thread reach the frontend channel; re-running the
start cell or restarting the kernel leaves one writer at most)."""

import json
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import rtkit
from rtkit import widgets
from rtkit.sim import Simulator
from rtkit.widgets import COUNTERS, Panel, counter_text, price_ticks, time_ticks
from tests.conftest import wait_for

SYMBOLS = ["BTC-USDT", "ETH-USDT"]
#: counters that stay put once a collection is quiet (rates and ages keep moving)
STEADY = [key for key, _ in COUNTERS if key not in ("ticks_per_s", "last_message_age_s")]


@pytest.fixture(autouse=True)
def stop_what_a_failed_test_left(no_thread_leak):
    """Close panels and collectors a failing test left open (the leak check runs after)."""
    yield
    for panel in list(widgets._open_panels.values()):
        panel.close()
    rtkit.stop_all()


def panel_threads():
    return [t for t in threading.enumerate() if t.name.startswith("rtkit-panel-")]


def shown(panel):
    return {key: label.value for key, label in panel.counters.items()}


def assert_buttons(panel, running):
    assert panel.start_button.disabled is running
    assert panel.stop_button.disabled is not running


def test_buttons_drive_the_collector_and_the_counters_follow_its_stats(db):
    with Simulator("binance", rate=3000, count=1500, seed=2) as sim:
        c = rtkit.Collector("binance", SYMBOLS, url=sim.url, db=db, flush_interval_s=0.1)
        panel = c.panel(refresh_s=0.05, rows=5, chart_ticks=80)
        assert_buttons(panel, running=False)
        assert "idle" in panel.status.value and not panel_threads()

        panel.start_button.click()
        assert c.running and len(panel_threads()) == 1
        assert_buttons(panel, running=True)
        wait_for(lambda: panel.counters["stored"].value == "1,500")
        wait_for(lambda: "live" in panel.status.value)
        stats = c.stats
        assert {k: v for k, v in shown(panel).items() if k in STEADY} == {
            key: counter_text(key, stats) for key in STEADY}
        # the collection is over, so every refresh from now on shows its final state
        newest_id = c.tail(1)["trade_id"].iloc[0]
        wait_for(lambda: f"<td>{newest_id}</td>" in panel.table.value)
        assert panel.table.value.count("<tr") == 1 + 5  # header + rows
        # each symbol's own trades of the window (all 1,500 here), thinned to 80 points
        for symbol in SYMBOLS:
            prices = list(c.df.query("symbol == @symbol")["price"])
            assert len(prices) > 80
            # a refresh that began before the last ticks came draws 80 points too: wait for
            # the one that has them all (the collection is over, so one comes)
            wait_for(lambda symbol=symbol, prices=prices: len(panel._lines[symbol].y) == 80
                     and panel._lines[symbol].y[-1] == prices[-1])
            drawn = list(panel._lines[symbol].y)
            assert drawn[0] == prices[0] and drawn[-1] == prices[-1]
            assert set(drawn) <= set(prices)

        panel.stop_button.click()
        assert c.status == "stopped" and not c.running
        assert not panel_threads()  # the refresh thread ended with the collector
        assert_buttons(panel, running=False)
        assert "stopped" in panel.status.value
        panel.close()


def test_start_after_stop_starts_a_fresh_collector_into_the_same_database(db):
    with Simulator("binance", rate=2000, count=600, seed=3) as sim:
        first = rtkit.collect("binance", SYMBOLS, url=sim.url, db=db, flush_interval_s=0.1)
        panel = Panel(first, refresh_s=0.05)
        wait_for(lambda: first.stats["stored"] == 600)
        panel.stop_button.click()
        panel.start_button.click()
        second = panel.collector
        assert second is not first and second.running and not first.running
        assert (second.name, second.db, second.url) == (first.name, first.db, first.url)
        wait_for(lambda: second.stats["connections"] == 1)
        panel.close(stop_collector=True)
        assert not second.running
    runs = sqlite3.connect(db).execute("SELECT name, status FROM runs").fetchall()
    assert runs == [(first.name, "stopped")] * 2


def test_panel_without_collector_builds_one_from_its_inputs(db):
    with Simulator("binance", rate=2000, count=400, seed=4) as sim:
        panel = Panel(db=db, flush_interval_s=0.1, name="from-inputs", refresh_s=0.05)
        assert panel.collector is None and set(panel.inputs) == {"venue", "symbols", "url"}
        assert "binance" in panel.inputs["venue"].options

        panel.inputs["symbols"].value = "BTC-USDT, nonsense!"
        panel.start_button.click()
        assert panel.collector is None
        assert "cannot start" in panel.status.value and "BTC-USDT" in panel.status.value

        panel.inputs["symbols"].value = "btcusdt ETH-USDT"
        panel.inputs["url"].value = sim.url
        panel.start_button.click()
        c = panel.collector
        assert c.running and c.symbols == SYMBOLS and c.name == "from-inputs"
        assert all(w.disabled for w in panel.inputs.values())
        assert set(panel._lines) == set(SYMBOLS)
        wait_for(lambda: panel.counters["stored"].value == "400")
        panel.stop_button.click()
        assert not c.running and not any(w.disabled for w in panel.inputs.values())
        panel.close()


def test_closing_the_panel_stops_refreshing_but_not_collecting(db):
    with Simulator("binance", rate=400, seed=5) as sim:
        c = rtkit.collect("binance", SYMBOLS, url=sim.url, db=db, flush_interval_s=0.1)
        panel = c.panel(refresh_s=0.05)
        wait_for(lambda: panel.counters["ticks"].value not in ("–", "0"))
        panel.close()
        assert not panel_threads()
        frozen = panel.counters["ticks"].value
        ticks = c.stats["ticks"]
        wait_for(lambda: c.stats["ticks"] > ticks + 20)  # still collecting
        assert c.running and panel.counters["ticks"].value == frozen
        c.stop()


def test_refreshing_ends_when_the_collector_is_stopped_elsewhere(db):
    with Simulator("binance", rate=400, seed=6) as sim:
        c = rtkit.collect("binance", SYMBOLS, url=sim.url, db=db, flush_interval_s=0.1)
        panel = c.panel(refresh_s=0.05)
        wait_for(lambda: "live" in panel.status.value)
        rtkit.stop_all()
        wait_for(lambda: not panel_threads())
        assert "stopped" in panel.status.value
        assert_buttons(panel, running=False)
        stats = c.stats
        assert shown(panel) == {key: counter_text(key, stats, running=False) for key, _ in COUNTERS}
        assert panel.counters["ticks_per_s"].value == "–"  # no rate once stopped
        panel.close()


def test_a_new_panel_for_the_same_collector_replaces_the_old_one(db):
    with Simulator("binance", rate=400, seed=7) as sim:
        c = rtkit.collect("binance", SYMBOLS, url=sim.url, db=db, flush_interval_s=0.1)
        old = c.panel(refresh_s=0.05)
        new = c.panel(refresh_s=0.05)  # the panel cell run again
        assert old._updater is None and len(panel_threads()) == 1
        assert c.running
        new.close(stop_collector=True)
        assert not c.running


def test_bad_options_say_what_to_do(db):
    c = rtkit.Collector("binance", SYMBOLS, db=db)
    with pytest.raises(TypeError, match="pass them to rtkit.collect"):
        Panel(c, db=db)
    with pytest.raises(ValueError, match="refresh_s must be > 0"):
        c.panel(refresh_s=0)


# --- the charts: a time window per symbol, legible axes ---------------------------------------

def d3_labels(values, fmt: str) -> list[str]:
    """What bqplot shows for tick ``values`` with a d3 format (the subset rtkit uses)."""
    if fmt.startswith("%"):
        stamps = pd.to_datetime(values)
        return [t.strftime(fmt.replace("%L", "{ms}")).format(ms=f"{t.microsecond // 1000:03d}")
                for t in stamps]
    decimals = int(fmt[2:-1])  # ",.Nf"
    return [f"{v:,.{decimals}f}" for v in values]


@pytest.mark.parametrize("window_s", [0.004, 0.03, 0.3, 1, 2.5, 7, 30, 60, 90, 600, 3600,
                                      6 * 3600])
def test_time_labels_never_repeat_and_stay_few_for_any_window(window_s):
    end = np.datetime64("2026-12-01T17:58:34.567", "ns")
    start = end - np.timedelta64(int(window_s * 1e9), "ns")
    ticks, fmt = time_ticks(start, end)
    labels = d3_labels(ticks, fmt)
    assert 2 <= len(labels) <= 6 and len(set(labels)) == len(labels), labels
    assert ticks.min() >= start and ticks.max() <= end


@pytest.mark.parametrize(("low", "high"), [(65_012.37, 65_031.9), (64_990.0, 65_790.0),
                                           (65_000.0, 65_000.0), (3_199.87, 3_200.02),
                                           (0.59981, 0.60034), (0.1499, 0.1499)])
def test_price_labels_are_few_round_and_distinct(low, high):
    axis_min, axis_max, ticks, fmt = price_ticks(low, high)
    labels = d3_labels(ticks, fmt)
    assert 2 <= len(labels) <= 5 and len(set(labels)) == len(labels), labels
    assert axis_min <= low and axis_max >= high
    assert (axis_min, axis_max) == (ticks[0], ticks[-1])
    if high - low >= 5:  # a 65k price moving by dollars: whole numbers, not 65,012.37
        assert fmt == ",.0f" and all("." not in label for label in labels)


def test_charts_show_each_symbols_last_seconds_with_set_axes(db):
    with Simulator("binance", rate=4000, count=4000, seed=9) as sim:
        c = rtkit.collect("binance", SYMBOLS, url=sim.url, db=db, flush_interval_s=0.1)
        panel = c.panel(refresh_s=0.05, window_s=0.4, chart_ticks=100_000)
        wait_for(lambda: c.stats["stored"] == 4000)
        c.stop()
        wait_for(lambda: not panel_threads())
        ticks = c.df
        end = ticks["timestamp"].max()
        start = end - pd.Timedelta(seconds=0.4)
        assert ticks["timestamp"].min() < start  # the collection outlasted the window
        for symbol in SYMBOLS:
            chart = panel._charts[symbol]
            mine = ticks[(ticks["symbol"] == symbol) & (ticks["timestamp"] >= start)]
            assert list(chart.line.y) == list(mine["price"])  # its own ticks, all of them
            x_scale = chart.line.scales["x"]
            assert (pd.Timestamp(x_scale.min, tz="UTC"), pd.Timestamp(x_scale.max, tz="UTC")
                    ) == (start, end)
            labels = d3_labels(chart.x_axis.tick_values, chart.x_axis.tick_format)
            assert len(set(labels)) == len(labels) >= 2
            y_labels = d3_labels(chart.y_axis.tick_values, chart.y_axis.tick_format)
            assert 2 <= len(y_labels) <= 5 and len(set(y_labels)) == len(y_labels)
            assert chart.x_axis.visible and chart.y_axis.visible and chart.figure.title == symbol
        panel.close()


def test_an_empty_chart_hides_its_axes_and_says_no_ticks_yet(db):
    c = rtkit.Collector("binance", SYMBOLS, db=db)
    panel = c.panel()
    for symbol, chart in panel._charts.items():
        assert not chart.x_axis.visible and not chart.y_axis.visible  # no 0-1 at 00:00:00
        assert chart.figure.title == f"{symbol}: no ticks yet"
    panel.close()


# --- the header, the counters' run, a frozen view ---------------------------------------------

def test_the_buttons_come_first_at_a_fixed_width_so_a_longer_status_cannot_move_them(db):
    panel = rtkit.Collector("binance", SYMBOLS, db=db).panel()
    header = panel.children[0]
    assert header.children == (panel.start_button, panel.stop_button, panel.status)
    for button in (panel.start_button, panel.stop_button):
        assert button.layout.width.endswith("px") and button.layout.flex == "0 0 auto"
    panel.close()


def test_start_after_stop_says_the_counters_began_again(db):
    with Simulator("binance", rate=2000, count=300, seed=10) as sim:
        first = rtkit.collect("binance", SYMBOLS, url=sim.url, db=db, flush_interval_s=0.1)
        panel = Panel(first, refresh_s=0.05)
        wait_for(lambda: "counters of this run, since" in panel.run_note.value)
        assert "started again from 0" not in panel.run_note.value
        wait_for(lambda: first.stats["stored"] == 300)
        panel.stop_button.click()
        panel.start_button.click()
        assert "started again from 0" in panel.run_note.value
        assert "earlier runs stored is still in the database" in panel.run_note.value
        panel.close(stop_collector=True)


def test_a_running_panel_carries_a_timer_each_refresh_restarts_and_a_stopped_one_none(db):
    with Simulator("binance", rate=500, seed=11) as sim:
        c = rtkit.collect("binance", SYMBOLS, url=sim.url, db=db, flush_interval_s=0.1)
        panel = c.panel(refresh_s=0.05)
        wait_for(lambda: "live" in panel.status.value)
        first = panel.status.value
        assert 'class="rtkit-stale-note"' in first and "animation-delay: 5s" in first
        assert "this view is frozen" in first
        wait_for(lambda: panel.status.value != first)  # a new value: the timer restarts
        c.stop()
        wait_for(lambda: not panel_threads())
        assert "stopped" in panel.status.value and "rtkit-stale-note" not in panel.status.value
        panel.close()


def test_the_projects_notebooks_store_no_widget_state():
    """Stored widget state would show a reopened notebook's panel as it was (``live``)."""
    root = Path(__file__).resolve().parent.parent
    tracked = subprocess.run(["git", "ls-files", "notebooks/*.ipynb"], cwd=root,
                             capture_output=True, text=True, timeout=30).stdout.split()
    assert tracked
    for name in tracked:
        assert "widgets" not in json.loads((root / name).read_text())["metadata"], name


# --- in a real kernel -------------------------------------------------------------------

START_CELL = """
import rtkit
from rtkit.sim import Simulator
sim = globals().get("sim") or Simulator("binance", rate=300, seed=8).start()
c = rtkit.collect("binance", ["BTC-USDT"], url=sim.url, db={db!r}, name="kernel-test",
                  flush_interval_s=0.1)
panel = c.panel(refresh_s=0.1)
"""


def run(client, code, timeout_s=20):
    """Execute ``code``; returns the iopub messages it caused (fails on an error)."""
    msg_id = client.execute(code)
    reply = client.get_shell_msg(timeout=timeout_s)
    # a reply to an earlier request (start_new_kernel may ask kernel_info more than once on
    # a slow machine, and its late answers wait on the shell channel) is not this one's
    while reply["parent_header"].get("msg_id") != msg_id:
        assert reply["msg_type"] != "execute_reply", reply  # every execute is awaited
        reply = client.get_shell_msg(timeout=timeout_s)
    assert reply["content"]["status"] == "ok", reply["content"]
    messages = []
    while True:
        msg = client.get_iopub_msg(timeout=timeout_s)
        messages.append(msg)
        if (msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle"
                and msg["parent_header"].get("msg_id") == msg_id):
            return messages


def printed(client, expression):
    out = [m["content"]["text"] for m in run(client, f"print({expression})")
           if m["msg_type"] == "stream"]
    return "".join(out).strip()


def test_in_a_kernel_rerun_and_restart_leave_one_writer_and_the_panel_updates(tmp_path):
    manager_mod = pytest.importorskip("jupyter_client.manager")
    db = str(tmp_path / "kernel.sqlite")
    km, client = manager_mod.start_new_kernel(kernel_name="python3", cwd=str(tmp_path))
    try:
        run(client, START_CELL.format(db=db))
        run(client, START_CELL.format(db=db))  # the start cell run again
        assert printed(client, "sorted(t.name for t in __import__('threading').enumerate() "
                               "if t.name.startswith('rtkit-recv'))") == (
            "['rtkit-recv-kernel-test']")
        label_id = printed(client, "panel.counters['ticks'].model_id")
        # no cell runs now: updates of the counter can only come from the refresh thread
        deadline = time.monotonic() + 10
        values = []
        while len(values) < 2 and time.monotonic() < deadline:
            msg = client.get_iopub_msg(timeout=10)
            content = msg["content"]
            if (msg["msg_type"] == "comm_msg" and content.get("comm_id") == label_id
                    and "value" in content["data"].get("state", {})):
                values.append(int(content["data"]["state"]["value"].replace(",", "")))
        assert len(values) == 2 and values[1] > values[0] > 0
        km.restart_kernel(now=False)
        rows = sqlite3.connect(db).execute("SELECT count(*) FROM ticks").fetchone()[0]
        assert rows > 0
        wait_for(lambda: sqlite3.connect(db).execute(
            "SELECT count(*) FROM runs WHERE status = 'running'").fetchone()[0] == 0, 10)
        time.sleep(0.5)  # an orphan writer would flush within 0.1 s
        assert sqlite3.connect(db).execute("SELECT count(*) FROM ticks").fetchone()[0] == rows
    finally:
        client.stop_channels()
        km.shutdown_kernel(now=True)
