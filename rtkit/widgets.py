"""The notebook control panel: start, stop and watch a collector with ipywidgets.

``Panel(collector)`` (or ``collector.panel()``) shows Start / Stop buttons, a
status light with ``collector.status``, live counters from ``collector.stats``,
the newest ticks as a table and one live price chart per symbol over the last
``window_s`` seconds. ``Panel()``
without a collector adds venue, symbols and URL inputs and creates the
collector when Start is clicked.

Threading, within what ipywidgets and ipykernel support: the notebook's
thread runs the button handlers; while a collector runs, one daemon thread per
panel (``rtkit-panel-<name>``) refreshes it about once a second. Both only set
widget values, under one lock, and never ``print`` or ``display``: setting a
trait from a thread is supported (ipywidgets' "Asynchronous Widgets" docs;
ipykernel 7.0 broke it, 7.1 fixed it), while output from a thread lands in
whichever cell ran last. The refresh thread ends when the collector stops or
the panel is closed; closing the panel never stops the collector unless
``close(stop_collector=True)`` asks for it.

The charts are bqplot marks: bqplot is built on ipywidgets, so a refresh
assigns new ``x``/``y`` arrays to a ``Lines`` mark from the refresh thread and
the browser moves the line in place (binary buffers over the widget comm, no
re-render of the figure, no image round-trip as with matplotlib or ipympl).
The panel sets each chart's axis range, tick values and tick formats itself
(``time_ticks``, ``price_ticks``): a fixed window with labels that never repeat,
a handful of price labels with as many decimals as their step needs.

A kernel restart cannot tell the browser anything: the views keep the last
values they were sent (``live``). So while a collector runs, the status line
carries a CSS timer that each refresh restarts; if no refresh comes for
``_stale_after_s`` seconds the browser itself greys the state out and says the
view is frozen. Widget state is never stored in the notebooks (``make
notebooks`` passes ``store_widget_state=False``), so a reopened notebook shows
no stale panel either.
"""

from __future__ import annotations

import html
import logging
import math
import re
import threading
import time
from typing import TYPE_CHECKING

import bqplot
import ipywidgets as widgets
import numpy as np
import pandas as pd

from rtkit.store import StoreError
from rtkit.venues import venue_names

if TYPE_CHECKING:  # the panel is handed a collector, or builds one on Start (below)
    from rtkit.collector import Collector

log = logging.getLogger("rtkit")

#: (stats key, label) of the counters, in the order shown
COUNTERS = (
    ("ticks", "ticks"),
    ("ticks_per_s", "ticks/s"),
    ("stored", "stored"),
    ("pending", "pending"),
    ("rejected", "rejected"),
    ("duplicates", "duplicates"),
    ("reconnects", "reconnects"),
    ("gaps", "gaps"),
    ("last_message_age_s", "last message"),
)
_LIGHT_COLOURS = {
    "idle": "#9e9e9e", "connecting": "#f9a825", "live": "#2e7d32", "stale": "#ef6c00",
    "backoff": "#ef6c00", "storage_error": "#ad1457", "stopped": "#757575",
    "failed": "#c62828",
}
_TABLE_COLUMNS = ["time (UTC)", "venue", "symbol", "side", "price", "volume", "trade_id"]
#: how long closing a panel or stopping waits for the refresh thread
_JOIN_TIMEOUT_S = 2.0
#: seconds of trades each chart shows by default, ending at the newest trade
DEFAULT_WINDOW_S = 60.0
#: most points one chart draws; a window with more trades is thinned evenly (newest kept)
DEFAULT_CHART_POINTS = 1_000
#: most rows of the ring one refresh reads for the charts (~10 MB of DataFrame)
MAX_CHART_ROWS = 200_000
#: x tick steps in seconds: the smallest giving at most _X_TICKS ticks is used
_TIME_STEPS_S = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30,
                 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
_X_TICKS = 5
_Y_TICKS = 5
#: price tick steps, times a power of ten
_PRICE_STEPS = (1, 2, 2.5, 5, 10)
#: a CSS animation that each refresh restarts (the status HTML changes): if none comes,
#: the browser itself marks the state as frozen (the kernel restarted or shut down)
_STALE_CSS = (
    "<style>@keyframes rtkit-stale-show {to {opacity: 1}} "
    "@keyframes rtkit-stale-state {to {color: #9e9e9e; text-decoration: line-through}} "
    ".rtkit-stale-note {opacity: 0; animation: rtkit-stale-show 0.01s linear forwards} "
    ".rtkit-watched .rtkit-state {animation: rtkit-stale-state 0.01s linear forwards}"
    "</style>")

#: counters that describe a running collection only
_LIVE_ONLY = ("ticks_per_s", "last_message_age_s")
_TABLE_STYLE = ("<style>.rtkit-table th, .rtkit-table td {padding: 1px 10px; "
                "text-align: right; font-variant-numeric: tabular-nums}</style>")

_open_panels: dict[str, Panel] = {}  # collector name → the panel showing it
_open_panels_lock = threading.Lock()


def counter_text(key: str, stats: dict, running: bool = True) -> str:
    """How the panel shows one counter of ``Collector.stats`` ("–" for none, and for
    rates and ages once the collector has stopped)."""
    value = stats.get(key)
    if value is None or (not running and key in _LIVE_ONLY):
        return "–"
    if key == "last_message_age_s":
        return f"{value:.1f} s"
    if key == "ticks_per_s":
        return f"{value:,.0f}"
    return f"{value:,}"


class Panel(widgets.VBox):
    """A live ipywidgets view of one collector, with Start and Stop.

    ``collector``: the collector to show and control. Without one, the panel
    has venue / symbols / URL inputs and Start creates the collector, passing
    ``collector_options`` (``db=``, ``name=``, ``flush_interval_s=``…) on.
    Start after Stop starts a fresh collector of the same venue, symbols,
    endpoint, database and name (SQLite keeps what the first one stored).

    ``rows``: ticks in the table; ``window_s``: seconds of trades each
    symbol's chart shows, ending at the newest trade; ``chart_ticks``: most
    points one chart draws (more trades in the window are thinned evenly);
    ``refresh_s``: seconds between refreshes.

    The counters are those of the collector shown: Start after Stop starts a
    new run, whose counters begin at 0 (the line under them says so); what
    earlier runs stored stays in the database.

    One panel per collector name: a new panel for the same name (re-running
    the cell) closes the previous panel, never the collector.
    """

    collector: Collector | None = None
    #: the refresh thread and the event that halts it, while one runs
    _updater: tuple[threading.Thread, threading.Event] | None = None

    def __init__(
        self,
        collector: Collector | None = None,
        *,
        venue: str = "binance",
        symbols: str | list[str] = "BTC-USDT",
        url: str | None = None,
        rows: int = 10,
        window_s: float = DEFAULT_WINDOW_S,
        chart_ticks: int = DEFAULT_CHART_POINTS,
        refresh_s: float = 1.0,
        **collector_options,
    ) -> None:
        if collector is not None and collector_options:
            raise TypeError(
                f"options {', '.join(sorted(collector_options))} only apply when the panel "
                "creates the collector; pass them to rtkit.collect(...) instead")
        if not refresh_s > 0:
            raise ValueError(f"refresh_s must be > 0 seconds (e.g. 1.0), not {refresh_s!r}")
        if not window_s > 0:
            raise ValueError(f"window_s must be > 0 seconds (e.g. 60), not {window_s!r}")
        if not chart_ticks >= 2:
            raise ValueError(f"chart_ticks must be >= 2 points (e.g. 1000), not {chart_ticks!r}")
        self.rows = int(rows)
        self.window_s = float(window_s)
        self.chart_ticks = int(chart_ticks)
        self.refresh_s = float(refresh_s)
        #: seconds without a refresh after which the browser shows the view as frozen
        self._stale_after_s = max(5.0, 3 * self.refresh_s)
        self._collector_options = collector_options
        self._ui_lock = threading.RLock()
        self._charts: dict[str, PriceChart] = {}
        self._refreshes = 0
        self._restarted = False  # Start began a second run: its counters restarted

        # buttons first, at a fixed width: a status text that grows cannot move them
        button_layout = widgets.Layout(width="90px", flex="0 0 auto")
        self.status = widgets.HTML(layout=widgets.Layout(flex="1 1 auto", min_width="0")
                                   ).add_class("rtkit-status")
        self.title = widgets.HTML()
        self.run_note = widgets.HTML().add_class("rtkit-run")
        self.start_button = widgets.Button(description="Start", icon="play",
                                           button_style="success", layout=button_layout,
                                           ).add_class("rtkit-start")
        self.stop_button = widgets.Button(description="Stop", icon="stop",
                                          button_style="danger", layout=button_layout,
                                          ).add_class("rtkit-stop")
        self.start_button.on_click(self._on_start)
        self.stop_button.on_click(self._on_stop)
        self.inputs: dict[str, widgets.Widget] = {}
        if collector is None:
            names = venue_names()
            self.inputs = {
                "venue": widgets.Dropdown(options=names, value=venue if venue in names else None,
                                          description="venue"),
                "symbols": widgets.Text(
                    value=symbols if isinstance(symbols, str) else ", ".join(symbols),
                    description="symbols", placeholder="BTC-USDT, ETH-USDT"),
                "url": widgets.Text(value=url or "", description="url",
                                    placeholder="the venue's public endpoint"),
            }
        self.counters = {key: widgets.Label("–").add_class(f"rtkit-{key}")
                         for key, _ in COUNTERS}
        counter_boxes = [
            widgets.VBox([widgets.HTML(f"<small>{label}</small>"), self.counters[key]],
                         layout=widgets.Layout(min_width="90px"))
            for key, label in COUNTERS
        ]
        self.charts = widgets.HBox(layout=widgets.Layout(flex_flow="row wrap"))
        self.table = widgets.HTML().add_class("rtkit-table")
        header = widgets.HBox([self.start_button, self.stop_button, self.status],
                              layout=widgets.Layout(align_items="flex-start"))
        parts = [header, self.title]
        if self.inputs:
            parts.append(widgets.HBox(list(self.inputs.values())))
        parts += [widgets.HBox(counter_boxes, layout=widgets.Layout(flex_flow="row wrap")),
                  self.run_note, self.charts, self.table]
        super().__init__(parts)
        self.add_class("rtkit-panel")
        if collector is not None:
            self._attach(collector)
            if collector.running:
                self._start_updater(collector)
        else:
            self.refresh()

    # --- what the buttons do (notebook thread) ---------------------------------------
    def _on_start(self, _button=None) -> None:
        if self.collector is not None and self.collector.running:
            return
        earlier_run = self.collector is not None and self.collector.started_at_ns is not None
        try:
            collector = self._next_collector().start()
        except (ValueError, TypeError, RuntimeError, StoreError) as exc:
            self._show_problem(f"cannot start: {exc}")
            return
        self._restarted = self._restarted or earlier_run
        self._attach(collector)
        self._start_updater(collector)

    def _on_stop(self, _button=None) -> None:
        if self.collector is None:
            return
        self.collector.stop()
        self._stop_updater()
        self.refresh()

    def _next_collector(self) -> Collector:
        """The collector Start should start: the given one if it never ran, else a new one."""
        if self.inputs:
            symbols = [s for s in re.split(r"[,\s]+", self.inputs["symbols"].value) if s]
            venue = self.inputs["venue"].value
            if venue is None:
                raise ValueError("choose a venue first")
            # here, not at the top: the collector module imports this one for panel()
            from rtkit.collector import Collector

            return Collector(venue, symbols, url=self.inputs["url"].value.strip() or None,
                             **self._collector_options)
        old = self.collector
        assert old is not None  # a panel without inputs was given its collector
        if old.started_at_ns is None:
            return old
        return old.again()

    def _attach(self, collector: Collector) -> None:
        """Show ``collector`` from now on, replacing any other panel of the same name."""
        with _open_panels_lock:
            previous = _open_panels.get(collector.name)
            _open_panels[collector.name] = self
        if previous is not None and previous is not self:
            previous.close()
        if self.collector is not None and self.collector.name != collector.name:
            self._forget(self.collector.name)
        self.collector = collector
        with self._ui_lock:
            if list(self._charts) != collector.symbols:
                old_charts = self.charts.children
                self._charts = {s: PriceChart(s) for s in collector.symbols}
                self.charts.children = [chart.figure for chart in self._charts.values()]
                for chart in old_charts:
                    _close_tree(chart)
        self.refresh()

    @property
    def _lines(self) -> dict[str, bqplot.Lines]:
        """Each symbol's price line."""
        return {symbol: chart.line for symbol, chart in self._charts.items()}

    def _forget(self, name: str) -> None:
        with _open_panels_lock:
            if _open_panels.get(name) is self:
                del _open_panels[name]

    # --- refreshing --------------------------------------------------------------------
    def refresh(self) -> None:
        """Set every widget from the collector's current state (any thread)."""
        with self._ui_lock:
            collector = self.collector
            if collector is None:
                self._set_controls(running=False)
                self._set_status("idle", "choose a venue and symbols, then Start")
                return
            running = collector.running
            stats = collector.stats
            status = collector.status
            self._set_controls(running)
            self._set_status(str(status), status.reason, watched=running)
            self.title.value = (f"<code>{html.escape(collector.name)}</code> → "
                                f"<code>{html.escape(str(collector.db))}</code>")
            for key, label in self.counters.items():
                label.value = counter_text(key, stats, running)
            self.run_note.value = self._run_text(collector)
            newest = collector.tail(self._rows_to_read(stats))
            self.table.value = _tick_table(newest.tail(self.rows))
            self._draw_charts(newest)

    def _rows_to_read(self, stats: dict) -> int:
        """Enough of the newest rows for the table and a chart window at the current rate."""
        rate = stats.get("ticks_per_s") or 0.0
        if not rate:  # starting, or stopped: whatever the ring holds, up to the cap
            return MAX_CHART_ROWS
        return max(self.rows, min(MAX_CHART_ROWS, int(rate * self.window_s * 1.5) + 1_000))

    def _draw_charts(self, ticks: pd.DataFrame) -> None:
        """Each symbol's prices over the same window, ending at the newest trade (of any
        symbol, so the charts share their time axis)."""
        if ticks.empty:
            for chart in self._charts.values():
                chart.draw_nothing()
            return
        times = ticks["timestamp"].dt.tz_localize(None).to_numpy()
        end = times.max()
        # the last window_s seconds; a collection younger than that fills the whole width
        start = max(end - np.timedelta64(int(self.window_s * 1e9), "ns"), times.min())
        recent = times >= start
        symbols = ticks["symbol"].to_numpy()
        prices = ticks["price"].to_numpy()
        for symbol, chart in self._charts.items():
            mine = recent & (symbols == symbol)
            chart.draw(times[mine], prices[mine], start, end, self.chart_ticks,
                       self.window_s)

    def _run_text(self, collector: Collector) -> str:
        if collector.started_at_ns is None:
            return ""
        since = pd.Timestamp(collector.started_at_ns, unit="ns").strftime("%H:%M:%S")
        text = f"counters of this run, since {since} UTC"
        if self._restarted:
            text += (": Start began a new run, so they started again from 0; "
                     "what earlier runs stored is still in the database")
        return f"<small>{html.escape(text)}</small>"

    def _set_controls(self, running: bool) -> None:
        self.start_button.disabled = running
        self.stop_button.disabled = not running
        for widget in self.inputs.values():
            widget.disabled = running

    def _set_status(self, state: str, reason: str = "", watched: bool = False) -> None:
        """The light, the state and its reason; ``watched`` (a refresh thread runs) adds the
        timer that marks the view frozen in the browser if the next refreshes never come."""
        colour = _LIGHT_COLOURS.get(state, _LIGHT_COLOURS["failed"])
        detail = f" <small>{html.escape(reason)}</small>" if reason else ""
        text = (f'<span style="color:{colour};font-size:1.4em">●</span> '
                f'<b class="rtkit-state">{html.escape(state)}</b>{detail}')
        if watched:
            self._refreshes += 1  # a new value each refresh: the browser restarts the timer
            delay = f"animation-delay: {self._stale_after_s:g}s"
            since = time.strftime("%H:%M:%S", time.gmtime())
            text = (f'{_STALE_CSS}<span class="rtkit-watched" data-refresh="{self._refreshes}">'
                    f'<style>.rtkit-watched .rtkit-state, .rtkit-stale-note {{{delay}}}</style>'
                    f'{text} <small class="rtkit-stale-note" style="color:#c62828">no update '
                    f'from the kernel since {since} UTC: if it was restarted or shut down, '
                    f'this view is frozen (run the cell again); if it is busy, wait</small>'
                    f'</span>')
        self.status.value = text

    def _show_problem(self, message: str) -> None:
        with self._ui_lock:
            self._set_status("failed", message)

    def _start_updater(self, collector: Collector) -> None:
        self._stop_updater()
        halt = threading.Event()
        thread = threading.Thread(target=self._update_loop, args=(collector, halt),
                                  daemon=True, name=f"rtkit-panel-{collector.name}")
        self._updater = (thread, halt)
        thread.start()

    def _stop_updater(self) -> None:
        updater, self._updater = self._updater, None
        if updater is None:
            return
        thread, halt = updater
        halt.set()
        if thread is not threading.current_thread():
            thread.join(_JOIN_TIMEOUT_S)

    def _update_loop(self, collector: Collector, halt: threading.Event) -> None:
        """The refresh thread: about every ``refresh_s`` until halted or the collector stops."""
        while not halt.wait(self.refresh_s):
            finished = not collector.running  # read first, so the last refresh shows the end
            try:
                self.refresh()
            except Exception as exc:  # a bug: show it in the panel rather than die silently
                log.exception("rtkit: refreshing the panel of %s failed", collector.name)
                self._show_problem(f"panel refresh failed: {type(exc).__name__}: {exc}")
                return
            if finished:
                return

    def __repr__(self) -> str:
        """What a notebook shows where widgets cannot render (GitHub, plain text)."""
        if self.collector is None:
            return "<rtkit panel: no collector yet>"
        return f"<rtkit panel of {self.collector.name!r}: {self.collector.status}>"

    # --- closing ---------------------------------------------------------------------
    def close(self, stop_collector: bool = False) -> None:
        """Stop refreshing and close every widget of the panel.

        The collector keeps collecting unless ``stop_collector=True``.
        """
        self._stop_updater()
        collector = self.collector
        if collector is not None:
            if stop_collector:
                collector.stop()
            self._forget(collector.name)
        for child in self.children:
            _close_tree(child)
        super().close()


class PriceChart:
    """One symbol's price over a time window, as a bqplot figure.

    The panel sets the axes itself rather than letting the browser pick: the x range
    is the window (so the axis does not jump as trades arrive), the tick values come
    from :func:`time_ticks` and :func:`price_ticks` (labels that never repeat, a few
    price labels with the decimals their step needs), and with no trades in the
    window the axes are hidden and the title says so (no 0-1 axis at 00:00:00).
    """

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.line = bqplot.Lines(x=np.array([], "datetime64[ns]"), y=np.array([], float),
                                 scales={"x": bqplot.DateScale(), "y": bqplot.LinearScale()})
        self.x_axis = bqplot.Axis(scale=self.line.scales["x"], side="bottom", visible=False)
        self.y_axis = bqplot.Axis(scale=self.line.scales["y"], side="left", visible=False,
                                  tick_format=",.2f")
        self.figure = bqplot.Figure(
            marks=[self.line], axes=[self.x_axis, self.y_axis], title=self._empty_title(),
            animation_duration=0,
            fig_margin={"top": 40, "bottom": 30, "left": 80, "right": 35},
            layout=widgets.Layout(width="420px", height="240px"),
        ).add_class("rtkit-chart")

    def _empty_title(self, window_s: float | None = None) -> str:
        if window_s is None:
            return f"{self.symbol}: no ticks yet"
        return f"{self.symbol}: no ticks in the last {window_s:g} s"

    def draw_nothing(self, window_s: float | None = None) -> None:
        with self.figure.hold_sync(), self.line.hold_sync():
            self.line.x = np.array([], "datetime64[ns]")
            self.line.y = np.array([], float)
            self.x_axis.visible = self.y_axis.visible = False
            self.figure.title = self._empty_title(window_s)

    def draw(self, times: np.ndarray, prices: np.ndarray, start: np.datetime64,
             end: np.datetime64, most_points: int, window_s: float) -> None:
        """``times`` (datetime64[ns], UTC, oldest first) and ``prices`` within
        ``start``..``end``, thinned evenly to ``most_points`` (the newest kept)."""
        if len(times) == 0:
            self.draw_nothing(window_s)
            return
        if len(times) > most_points:
            keep = np.unique(np.linspace(0, len(times) - 1, most_points).round().astype(int))
            times, prices = times[keep], prices[keep]
        x_ticks, x_format = time_ticks(start, end)
        y_min, y_max, y_ticks, y_format = price_ticks(float(prices.min()),
                                                      float(prices.max()))
        x_scale, y_scale = self.line.scales["x"], self.line.scales["y"]
        with self.figure.hold_sync(), self.line.hold_sync(), x_scale.hold_sync(), \
                y_scale.hold_sync(), self.x_axis.hold_sync(), self.y_axis.hold_sync():
            x_scale.min, x_scale.max = start, end
            y_scale.min, y_scale.max = y_min, y_max
            self.x_axis.tick_values, self.x_axis.tick_format = x_ticks, x_format
            self.y_axis.tick_values, self.y_axis.tick_format = y_ticks, y_format
            self.x_axis.visible = self.y_axis.visible = True
            self.line.x, self.line.y = times, prices
            self.figure.title = self.symbol


def time_ticks(start: np.datetime64, end: np.datetime64,
               most: int = _X_TICKS) -> tuple[np.ndarray, str]:
    """Tick times for an axis from ``start`` to ``end``: at most ``most`` + 1, on a round
    step (1 s, 15 s, 5 min...), with a d3 time format as fine as that step and no finer,
    so no two labels read the same."""
    start_ns, end_ns = np.asarray([start, end], dtype="datetime64[ns]").astype(np.int64).tolist()
    span_s = max(end_ns - start_ns, 1) / 1e9
    step_s = next((s for s in _TIME_STEPS_S if span_s / s <= most), _TIME_STEPS_S[-1])
    step_ns = round(step_s * 1e9)
    first = -(-start_ns // step_ns) * step_ns
    ticks = np.arange(first, end_ns + 1, step_ns, dtype=np.int64).astype("datetime64[ns]")
    fmt = "%H:%M:%S.%L" if step_s < 1 else "%H:%M:%S" if step_s < 60 else "%H:%M"
    return ticks, fmt


def price_ticks(low: float, high: float,
                most: int = _Y_TICKS) -> tuple[float, float, np.ndarray, str]:
    """An axis range around ``low``..``high`` with at most ``most`` ticks on a round step
    (1, 2, 2.5 or 5 times a power of ten) and a d3 format with the decimals that step
    needs: a 65,000 price moving by 20 gets ``65,005 65,010 ...``, not ``65,004.87``.
    Returns (axis min, axis max, tick values, format)."""
    if not high > low:  # one price: a small range around it
        pad = max(abs(low) * 1e-4, 1e-9)
        low, high = low - pad, high + pad
    raw = (high - low) / max(most - 1, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    for multiple in (*_PRICE_STEPS, 20, 25, 50, 100):
        step = multiple * power
        first, last = math.floor(low / step), math.ceil(high / step)
        if last - first + 1 <= most:
            break
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    if round(step / 10 ** -decimals, 6) % 1:  # 2.5 x 10^k needs one more decimal
        decimals += 1
    ticks = np.round(np.arange(first, last + 1) * step, decimals)
    return float(ticks[0]), float(ticks[-1]), ticks, f",.{decimals}f"


def _tick_table(ticks: pd.DataFrame) -> str:
    """The newest ticks first, as a small HTML table."""
    if ticks.empty:
        return "<i>no ticks yet</i>"
    times = ticks["timestamp"].dt.strftime("%H:%M:%S.%f").str[:-3]
    view = ticks.iloc[::-1].assign(**{_TABLE_COLUMNS[0]: times})
    return _TABLE_STYLE + view[_TABLE_COLUMNS].to_html(
        index=False, border=0, na_rep="", float_format=lambda v: f"{v:,.10g}")


def _close_tree(widget: widgets.Widget) -> None:
    """Close a widget and every widget it holds (children, marks, axes, scales, layouts),
    so nothing stays in ipywidgets' global registry after the panel is gone."""
    seen: set[int] = set()
    todo = [widget]
    while todo:
        w = todo.pop()
        if id(w) in seen:
            continue
        seen.add(id(w))
        for name in w.keys:
            value = getattr(w, name, None)
            items = value.values() if isinstance(value, dict) else \
                value if isinstance(value, (list, tuple)) else (value,)
            todo.extend(i for i in items if isinstance(i, widgets.Widget))
        w.close()
